"""Golden tests of the per-packet line, the detail view and the hex dump.

The corpus goldens were checked field by field against ``tshark -V`` on the same
frames (addresses, ports, flags, TTL, lengths, IDs, the IPv4 checksum verdict and
its "should be" value with ``-o ip.check_checksum:TRUE``, TCP options, DNS flags).
"""

from __future__ import annotations

import textwrap

import pytest

from netscope.constants import LINKTYPE_ETHERNET
from netscope.decode import decode_packet
from netscope.display import format_datetime, format_detail, format_summary, format_time, hex_dump

from . import build as b
from .corpus_reader import CORPUS_DIR, Packet, read_packets


def corpus_frame(name: str, frame: int) -> Packet:
    path = CORPUS_DIR / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not available")
    return read_packets(path)[frame - 1]


def summary_of(name: str, frame: int) -> str:
    p = corpus_frame(name, frame)
    return format_summary(p.index, p.ts_ns, p.linktype, decode_packet(p.data, p.linktype))


def detail_of(name: str, frame: int) -> str:
    p = corpus_frame(name, frame)
    pkt = decode_packet(p.data, p.linktype)
    return format_detail(p.index, p.ts_ns, p.linktype, len(p.data), p.wirelen, pkt, p.data)


@pytest.mark.parametrize(
    ("name", "frame", "line"),
    [
        (
            "dpkt-dns_icmp.pcap",
            1,
            "#1      22:45:17.270862 Link: Ethernet | IPv4: 192.168.43.9 -> 192.168.43.1 ttl=64 "
            "len=66 | UDP :51677 -> :53 len=46 | DNS query id=0x528e PTR? 8.8.8.8.in-addr.arpa"
            " | payload: 38 bytes",
        ),
        (
            "dpkt-dns_icmp.pcap",
            2,
            "#2      22:45:17.276645 Link: Ethernet | IPv4: 192.168.43.1 -> 192.168.43.9 ttl=64 "
            "len=110 DF | UDP :53 -> :51677 len=90 | DNS response id=0x528e PTR? "
            "8.8.8.8.in-addr.arpa answers=1 | payload: 82 bytes",
        ),
        (
            "pcpp-VlanPackets.pcap",
            1,
            "#1      19:41:35.135052 Link: Ethernet VLAN:118 VLAN:10 | IPv4: 10.118.10.1 -> "
            "10.118.10.2 ttl=255 len=100 | ICMP type=8 code=0 (echo request id=3 seq=0) | "
            "payload: 72 bytes",
        ),
        (
            "zeek-chrome-34-google.pcap",
            2,
            "#2      18:08:22.703760 Link: Ethernet | IPv4: 74.125.239.152 -> 192.168.4.149 "
            "ttl=53 len=60 | TCP :443 -> :55881 SYN,ACK seq=3845005981 ack=1657358884 win=42540",
        ),
        (
            "zeek-chrome-34-google.pcap",
            4,
            "#4      18:08:22.704084 Link: Ethernet | IPv4: 192.168.4.149 -> 74.125.239.152 "
            "ttl=64 len=261 DF | TCP :55881 -> :443 PSH,ACK seq=1657358884 ack=3845005982 "
            "win=8242 | TLS ClientHello sni=google.de | payload: 209 bytes",
        ),
        (
            "tcpdump-icmpv6.pcap",
            2,
            "#2      04:54:07.748985 Link: Ethernet | IPv6: fe80::215:17ff:fecc:e546 -> ff02::16 "
            "hlim=1 plen=36 ext=hop-by-hop | ICMPv6 type=143 code=0 (multicast listener report"
            " v2) | payload: 20 bytes",
        ),
        (
            "pcpp-ip4_fragments.pcap",
            2,
            "#2      00:58:40.099924 Link: Ethernet | IPv4: 10.118.213.212 -> 10.118.213.211 "
            "ttl=64 len=1500 MF frag=1480 | payload: 1480 bytes",
        ),
        (
            "tcpdump-802.1ad_QinQ.pcap",
            1,
            "#1      21:59:54.599412 Link: Ethernet VLAN:200 VLAN:2001 | ARP",
        ),
        (
            "suricata-decode-too-small.pcap",
            3,
            "#3      02:09:03.117703 Link: Ethernet | IPv4: 1.1.1.1 -> 2.2.2.2 ttl=64 len=24 | UDP"
            " | error: truncated transport header",
        ),
        ("zeek-radiotap.pcap", 1, "#1      13:01:31.705224 Link: Unsupported(127)"),
        (
            "zeek-timeout-with-pings.pcap",
            1,
            "#1      17:58:57.092800 Link: RawIPv4 | IPv4: 192.168.1.10 -> 192.168.1.20 ttl=64 "
            "len=40 | TCP :12345 -> :80 SYN seq=100 ack=0 win=8192",
        ),
        (
            "pcpp-sll.pcap",
            2,
            "#2      21:17:59.622732 Link: SLL | IPv4: 127.0.0.1 -> 127.0.0.1 ttl=64 len=62 DF | "
            "UDP :49725 -> :53 len=42 | DNS query id=0x61ef A? daisy.ubuntu.com | "
            "payload: 34 bytes",
        ),
        (
            "zeek-linux_dlt_sll2.pcap",
            1,
            "#1      03:30:49.872259 Link: SLL2 | IPv4: 192.0.2.1 -> 192.0.2.1 ttl=64 len=84 DF | "
            "ICMP type=8 code=0 (echo request id=8 seq=1) | payload: 56 bytes",
        ),
        (
            "pcpp-four_ipv6_http_streams.pcap",
            1,
            "#1      20:23:15.526632 Link: Raw | IPv6: 2001:618:400::5199:cc70 -> "
            "2001:618:1:8000::5 hlim=64 plen=40 | TCP :35995 -> :80 SYN seq=1793525558 ack=0 "
            "win=5680",
        ),
    ],
)
def test_summary_goldens(name: str, frame: int, line: str) -> None:
    assert summary_of(name, frame) == line


def test_summary_of_snaplen_cut_payload() -> None:
    text = summary_of("zeek-tcp-timestamp.pcap", 5)
    assert text.endswith("| payload: 1448 bytes (30 captured)")


def test_detail_golden_dns_query() -> None:
    expected = """\
        Frame #1
          time:      2013-05-30 22:45:17.270862 UTC
          link type: Ethernet (1)
          captured:  80 bytes
          on wire:   80 bytes
        Ethernet
          destination: 02:1a:11:f0:c8:3b
          source:      60:33:4b:13:c5:58
          type:        0x0800 (IPv4)
        IPv4
          version:         4
          header length:   20 bytes (5)
          DSCP:            0x00
          ECN:             0
          total length:    66
          identification:  0xd0a6 (53414)
          reserved flag:   not set
          don't fragment:  not set
          more fragments:  not set
          fragment offset: 0 bytes (0)
          TTL:             64
          protocol:        17 (UDP)
          checksum:        0xd2a9 [correct]
          source:          192.168.43.9
          destination:     192.168.43.1
        UDP
          source port:      51677
          destination port: 53
          length:           46
          checksum:         0xf268
        DNS
          transaction id:      0x528e
          message type:        query
          opcode:              0 (QUERY)
          authoritative:       not set
          truncated:           not set
          recursion desired:   set
          recursion available: not set
          reserved:            0
          authentic data:      not set
          checking disabled:   not set
          response code:       0 (NOERROR)
          questions:           1
          answers:             0
          authority records:   0
          additional records:  0
          question 1:          PTR 8.8.8.8.in-addr.arpa (IN)
        Payload
          offset: 42
          length: 38 bytes
        0000  02 1a 11 f0 c8 3b 60 33  4b 13 c5 58 08 00 45 00  .....;`3K..X..E.
        0010  00 42 d0 a6 00 00 40 11  d2 a9 c0 a8 2b 09 c0 a8  .B....@.....+...
        0020  2b 01 c9 dd 00 35 00 2e  f2 68 52 8e 01 00 00 01  +....5...hR.....
        0030  00 00 00 00 00 00 01 38  01 38 01 38 01 38 07 69  .......8.8.8.8.i
        0040  6e 2d 61 64 64 72 04 61  72 70 61 00 00 0c 00 01  n-addr.arpa....."""
    assert detail_of("dpkt-dns_icmp.pcap", 1) == textwrap.dedent(expected)


def test_detail_tcp_syn_options_and_bad_checksum() -> None:
    text = detail_of("zeek-chrome-34-google.pcap", 1)
    assert "  checksum:        0x0000 [incorrect, should be 0xfd9a]\n" in text
    assert "  header length:         44 bytes (11)\n" in text
    assert (
        "  options:               24 bytes (MSS=1460, NOP, WS=4, NOP, NOP, "
        "TS val=541082212 ecr=0, SACK_PERM, EOL)\n"
    ) in text
    assert "  flags:                 0x02 (SYN)\n" in text


def test_detail_shows_error_and_truncated_layer() -> None:
    text = detail_of("suricata-decode-too-small.pcap", 1)
    assert "  error:     truncated transport header\n" in text
    assert "\nTCP\n  captured: 0 of 20 bytes\n0000  " in text


def test_detail_icmp_error_quotes_the_datagram() -> None:
    text = detail_of("zeek-icmp-destunreach-udp.pcap", 1)
    assert (
        "  quoted:   IPv4: 192.168.1.1 -> 192.168.1.102 ttl=64 len=163 | UDP :53 -> :59207 "
        "len=143 | DNS response id=0x98a4 A? secure.ed4.net answers=1\n"
    ) in text


def test_unsupported_link_detail() -> None:
    pkt = decode_packet(b"\x00" * 20, 239)
    text = format_detail(7, 0, 239, 20, 20, pkt, b"\x00" * 20)
    assert "  link type: Unsupported(239) (239)\n" in text
    assert format_summary(7, 0, 239, pkt) == "#7      00:00:00.000000 Link: Unsupported(239)"


def test_summary_built_packet_flags_and_fragments() -> None:
    seg = b.tcp(b"data", flags=0x11, seq=5, ack=6, win=7, sport=1, dport=2)
    pkt = decode_packet(b.ethernet(b.ipv4(seg, proto=6, flags_frag=0x4000, ttl=9)), 1)
    assert format_summary(123456, 1_000_000_123_456, LINKTYPE_ETHERNET, pkt) == (
        "#123456 00:16:40.000123 Link: Ethernet | IPv4: 10.0.0.1 -> 10.0.0.2 ttl=9 len=44 DF "
        "| TCP :1 -> :2 FIN,ACK seq=5 ack=6 win=7 | payload: 4 bytes"
    )


def test_time_formatting() -> None:
    assert format_time(0) == "00:00:00.000000"
    assert format_time(-1) == "23:59:59.999999"  # pre-1970 floors, it does not go negative
    assert format_datetime(-1_000) == "1969-12-31 23:59:59.999999 UTC"
    assert format_datetime(10**30).endswith("(outside the calendar)")


def test_hex_dump_layout() -> None:
    data = bytes(range(0x3E, 0x3E + 20))
    assert hex_dump(data) == (
        "0000  3e 3f 40 41 42 43 44 45  46 47 48 49 4a 4b 4c 4d  >?@ABCDEFGHIJKLM\n"
        "0010  4e 4f 50 51" + " " * 39 + "NOPQ"
    )
    # 11 hex characters, padded to the two 23-wide groups and their separators
    assert hex_dump(b"\x00\x7f\x80 ") == "0000  00 7f 80 20" + " " * 39 + "... "


def test_hex_dump_limit_and_empty() -> None:
    assert hex_dump(b"", limit=None) == ""
    text = hex_dump(bytes(40), limit=16)
    assert text.split("\n")[1] == "… 24 more bytes"
    assert hex_dump(memoryview(bytearray(b"AB"))) == "0000  41 42" + " " * 45 + "AB"


def test_detail_hex_limit() -> None:
    data = b.ethernet(b.ipv4(b.udp(bytes(100))))
    pkt = decode_packet(data, LINKTYPE_ETHERNET)
    text = format_detail(1, 0, LINKTYPE_ETHERNET, len(data), 1500, pkt, data, hex_limit=32)
    assert text.endswith("\n… 110 more bytes")
    assert "  on wire:   1500 bytes\n" in text

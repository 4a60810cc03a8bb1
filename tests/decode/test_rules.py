"""The decoding rules shared with the kernel (docs/protocols.md), one hand-built packet each.

Every test pins the error code *and* the columns the rule talks about, because the
kernel-agreement test compares every column and a rule is only useful if it is exact.
"""

from __future__ import annotations

import struct

import pytest

from netscope.columns import COLUMN_SPEC
from netscope.constants import (
    ERR_BAD_IP_HEADER,
    ERR_BAD_IP_VERSION,
    ERR_BAD_TCP_HEADER,
    ERR_IPV6_EXT_LIMIT,
    ERR_OK,
    ERR_TRUNC_IP,
    ERR_TRUNC_IPV6_EXT,
    ERR_TRUNC_L4,
    ERR_TRUNC_LINK,
    ERR_UNSUPPORTED_LINK,
    FRAG_HEADER,
    FRAG_MORE,
    FRAG_NONINITIAL,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPV6_MAX_EXT_HEADERS,
    L3_IPV4,
    L3_IPV6,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_OPENBSD,
)
from netscope.decode import decode_packet
from netscope.decode.base import DEFAULT_COLUMNS

from . import build as b


def cols(data: bytes, linktype: int = LINKTYPE_ETHERNET) -> dict[str, int]:
    return decode_packet(data, linktype).columns()


def test_columns_cover_column_spec_in_order() -> None:
    names = [name for name, _dtype, _doc in COLUMN_SPEC]
    assert list(cols(b.ethernet(b.ipv4(b.udp())))) == names


def test_unsupported_link_is_all_defaults() -> None:
    c = cols(b"\x00" * 60, linktype=239)
    assert c == {**DEFAULT_COLUMNS, "err": ERR_UNSUPPORTED_LINK}


# --- link layer -----------------------------------------------------------------------


def test_plain_ethernet_udp_columns() -> None:
    data = b.ethernet(b.ipv4(b.udp(b"hello", sport=53, dport=4000), ttl=33))
    c = cols(data)
    assert c["err"] == ERR_OK
    assert (c["l3_off"], c["l4_off"], c["payload_off"], c["payload_len"]) == (14, 34, 42, 5)
    assert (c["ethertype"], c["l3"], c["ttl"], c["proto"]) == (0x0800, L3_IPV4, 33, 17)
    assert (c["src_hi"], c["src_lo"], c["dst_lo"]) == (0, 0x0A000001, 0x0A000002)
    assert (c["sport"], c["dport"], c["ip_csum_ok"], c["vlan_id"]) == (53, 4000, 1, -1)


@pytest.mark.parametrize("caplen", [0, 1, 13])
def test_truncated_ethernet_header(caplen: int) -> None:
    assert cols(b.ethernet(b.ipv4(b.udp()))[:caplen]) == {**DEFAULT_COLUMNS, "err": ERR_TRUNC_LINK}


def test_arp_is_not_an_error() -> None:
    c = cols(b.ethernet(bytes(28), ethertype=0x0806))
    assert (c["err"], c["ethertype"], c["l3"], c["l3_off"]) == (ERR_OK, 0x0806, 0, -1)


def test_vlan_outermost_id_and_count() -> None:
    data = b.ethernet(b.ipv4(b.udp()), tags=((0x88A8, 200), (0x8100, 2001)))
    c = cols(data)
    assert (c["vlan_id"], c["vlan_count"], c["ethertype"], c["l3_off"]) == (200, 2, 0x0800, 22)
    assert c["l4_off"] == 42


def test_vlan_tag_cut_keeps_what_was_read() -> None:
    data = b.ethernet(b.ipv4(b.udp()), tags=((0x8100, 5), (0x9100, 6)))[: 14 + 4 + 2]
    c = cols(data)
    assert c["err"] == ERR_TRUNC_LINK
    # one complete tag; ethertype is the TPID of the tag that was cut
    assert (c["vlan_id"], c["vlan_count"], c["ethertype"], c["l3_off"]) == (5, 1, 0x9100, -1)


def test_vlan_walk_is_bounded_at_eight_tags() -> None:
    data = b.ethernet(b.ipv4(b.udp()), tags=tuple((0x8100, i + 1) for i in range(9)))
    c = cols(data)
    assert (c["err"], c["vlan_count"], c["vlan_id"], c["ethertype"], c["l3"]) == (
        ERR_OK, 8, 1, 0x8100, 0
    )  # fmt: skip


def test_vlan_bound_is_the_kernels() -> None:
    from netscope.decode import link
    from netscope.kernels import headers as kernel

    assert link.MAX_VLAN_TAGS == kernel.MAX_VLAN_TAGS


def test_pppoe_session_to_ipv4() -> None:
    ip = b.ipv4(b.udp())
    pppoe = struct.pack("!BBHHH", 0x11, 0, 0x3B1A, len(ip) + 2, 0x0021) + ip
    c = cols(b.ethernet(pppoe, ethertype=0x8864))
    assert (c["err"], c["ethertype"], c["l3_off"], c["l3"]) == (ERR_OK, 0x0800, 22, L3_IPV4)


def test_pppoe_cut_and_non_ip() -> None:
    c = cols(b.ethernet(b"\x11\x00\x00\x01", ethertype=0x8864))
    assert (c["err"], c["ethertype"], c["l3_off"]) == (ERR_TRUNC_LINK, 0x8864, -1)
    lcp = struct.pack("!BBHHH", 0x11, 0, 1, 6, 0xC021) + bytes(4)
    c = cols(b.ethernet(lcp, ethertype=0x8864))
    assert (c["err"], c["ethertype"], c["l3"]) == (ERR_OK, 0x8864, 0)


def test_sll_and_sll2_protocol_fields() -> None:
    ip = b.ipv4(b.udp())
    sll = struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + ip
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, bytes(8)) + ip
    assert cols(sll, LINKTYPE_LINUX_SLL)["l3_off"] == 16
    assert cols(sll2, LINKTYPE_LINUX_SLL2)["l3_off"] == 20
    assert cols(sll[:15], LINKTYPE_LINUX_SLL)["err"] == ERR_TRUNC_LINK
    assert cols(sll2[:19], LINKTYPE_LINUX_SLL2)["err"] == ERR_TRUNC_LINK


@pytest.mark.parametrize(
    ("header", "ethertype"),
    [
        (struct.pack("<I", 2), 0x0800),
        (struct.pack(">I", 2), 0x0800),
        (struct.pack("<I", 24), 0x86DD),
        (struct.pack(">I", 28), 0x86DD),
        (struct.pack("<I", 30), 0x86DD),
        (b"\x00\x00\x86\xdd", 0x86DD),  # an EtherType in the low bytes
        (struct.pack("<I", 17), 0),  # not IP: no error, l3 = 0
    ],
)
def test_null_family_either_byte_order(header: bytes, ethertype: int) -> None:
    payload = b.ipv6(b.udp()) if ethertype == 0x86DD else b.ipv4(b.udp())
    c = cols(header + payload, LINKTYPE_NULL)
    assert (c["err"], c["ethertype"]) == (ERR_OK, ethertype)
    assert c["l3_off"] == (4 if ethertype else -1)


def test_loop_is_network_order_only() -> None:
    assert cols(struct.pack(">I", 2) + b.ipv4(b.udp()), LINKTYPE_LOOP)["l3"] == L3_IPV4
    assert cols(struct.pack("<I", 2) + b.ipv4(b.udp()), LINKTYPE_LOOP)["l3"] == 0
    assert cols(b"\0\0\0", LINKTYPE_LOOP)["err"] == ERR_TRUNC_LINK


@pytest.mark.parametrize(
    "linktype", [LINKTYPE_RAW, LINKTYPE_RAW_OPENBSD, LINKTYPE_IPV4, LINKTYPE_IPV6]
)
def test_raw_version_nibble(linktype: int) -> None:
    assert cols(b.ipv4(b.udp()), linktype)["l3"] == L3_IPV4
    assert cols(b.ipv6(b.udp()), linktype)["l3"] == L3_IPV6
    bad = cols(b"\x50" + bytes(30), linktype)
    assert (bad["err"], bad["ethertype"], bad["l3_off"]) == (ERR_BAD_IP_VERSION, 0, -1)
    empty = cols(b"", linktype)
    assert (empty["err"], empty["l3_off"]) == (ERR_TRUNC_IP, -1)


def test_linktype_ipv4_ipv6_follow_the_version_nibble() -> None:
    # as tcpdump and tshark: the packet's own version wins over the link type's promise
    c = cols(b.ipv6(b.udp()), LINKTYPE_IPV4)
    assert (c["err"], c["l3"], c["ethertype"]) == (ERR_OK, L3_IPV6, 0x86DD)
    c = cols(b.ipv4(b.udp(bytes(20))), LINKTYPE_IPV6)
    assert (c["err"], c["l3"], c["ethertype"]) == (ERR_OK, L3_IPV4, 0x0800)
    c = cols(b"", LINKTYPE_IPV4)
    assert (c["err"], c["l3_off"], c["ethertype"]) == (ERR_TRUNC_IP, -1, 0)


# --- IPv4 -------------------------------------------------------------------------------


def test_ipv4_check_order() -> None:
    # fewer than 20 bytes wins over a wrong version nibble
    assert cols(b.ethernet(b.ipv4(b"", version=6)[:19]))["err"] == ERR_TRUNC_IP
    assert cols(b.ethernet(b.ipv4(b"", version=6)))["err"] == ERR_BAD_IP_VERSION
    assert cols(b.ethernet(b.ipv4(b"", ihl=4)))["err"] == ERR_BAD_IP_HEADER
    assert cols(b.ethernet(b.ipv4(b.udp(), total_length=19)))["err"] == ERR_BAD_IP_HEADER
    # options announced (IHL 6) but cut, while total length is also too small:
    # the header-length check comes first
    assert cols(b.ethernet(b.ipv4(b"", ihl=6, total_length=20)))["err"] == ERR_BAD_IP_HEADER
    cut = b.ethernet(b.ipv4(b"", ihl=6, total_length=24))
    c = cols(cut)
    assert (c["err"], c["l3_off"], c["l3"], c["ttl"]) == (ERR_TRUNC_IP, 14, 0, 0)


def test_ipv4_bad_header_leaves_l3_columns_at_defaults() -> None:
    c = cols(b.ethernet(b.ipv4(b.udp(), ihl=4)))
    assert {k: c[k] for k in ("l3", "ttl", "src_lo", "proto", "ip_csum_ok")} == dict.fromkeys(
        ("l3", "ttl", "src_lo", "proto", "ip_csum_ok"), 0
    )


def test_ipv4_checksum_and_options() -> None:
    good = decode_packet(b.ethernet(b.ipv4(b.udp(), options=b"\x94\x04\x00\x00")), 1)
    bad = decode_packet(b.ethernet(b.ipv4(b.udp(), good_checksum=False)), 1)
    assert good.columns()["ip_csum_ok"] == 1 and good.columns()["l4_off"] == 38
    assert bad.columns()["ip_csum_ok"] == 0 and bad.error == ERR_OK
    fields = dict(bad.layers[1].fields)
    assert fields["checksum"].startswith("0xbeef [incorrect, should be 0x")
    assert "[correct]" in dict(good.layers[1].fields)["checksum"]
    assert "Router Alert" in dict(good.layers[1].fields)["options"]


def test_ipv4_fragments() -> None:
    first = cols(b.ethernet(b.ipv4(b.udp(b"x" * 8), flags_frag=0x2000)))
    assert (first["frag"], first["l4_off"], first["payload_len"]) == (FRAG_MORE, 34, 8)
    later = cols(b.ethernet(b.ipv4(b"y" * 16, flags_frag=0x2000 | 185)))
    assert later["frag"] == FRAG_MORE | FRAG_NONINITIAL
    assert (later["l4_off"], later["sport"], later["payload_off"], later["payload_len"]) == (
        -1, 0, 34, 16
    )  # fmt: skip


def test_ethernet_padding_is_not_payload() -> None:
    c = cols(b.ethernet(b.ipv4(b.udp(b"ab")) + bytes(16)))
    assert c["payload_len"] == 2


def test_other_ip_protocol_payload() -> None:
    c = cols(b.ethernet(b.ipv4(b"\x00\x00\x08\x00" + bytes(20), proto=47)))
    assert (c["err"], c["proto"], c["l4_off"], c["payload_off"], c["payload_len"]) == (
        ERR_OK, 47, -1, 34, 24
    )  # fmt: skip


def test_payload_len_never_negative() -> None:
    # IP says 20 + 8 bytes, but the TCP header alone is 20
    c = cols(b.ethernet(b.ipv4(b.tcp(), proto=6, total_length=28)))
    assert (c["err"], c["payload_off"], c["payload_len"]) == (ERR_OK, 54, 0)


# --- transport --------------------------------------------------------------------------


def test_tcp_columns_and_flags() -> None:
    seg = b.tcp(b"GET /", sport=40000, dport=80, seq=7, ack=9, flags=0x18, win=512)
    c = cols(b.ethernet(b.ipv4(seg, proto=6)))
    assert (c["sport"], c["dport"], c["seq"], c["ack"], c["win"]) == (40000, 80, 7, 9, 512)
    assert (c["tcp_flags"], c["payload_off"], c["payload_len"]) == (0x18, 54, 5)


def test_tcp_truncated_fixed_header() -> None:
    c = cols(b.ethernet(b.ipv4(b.tcp(), proto=6))[: 14 + 20 + 19])
    assert (c["err"], c["l3"], c["l4_off"], c["sport"]) == (ERR_TRUNC_L4, L3_IPV4, -1, 0)


def test_tcp_bad_data_offset_keeps_fixed_header_columns() -> None:
    c = cols(b.ethernet(b.ipv4(b.tcp(sport=9, data_offset=4), proto=6)))
    assert (c["err"], c["l4_off"], c["sport"], c["tcp_flags"]) == (ERR_BAD_TCP_HEADER, 34, 9, 2)
    assert (c["payload_off"], c["payload_len"]) == (-1, 0)


def test_tcp_options_cut_by_snaplen_is_not_an_error() -> None:
    options = b"\x02\x04\x05\xb4\x01\x03\x03\x07" + bytes(12)  # MSS, NOP, WS, padding
    data = b.ethernet(b.ipv4(b.tcp(options=options), proto=6))[: 54 + 4]
    pkt = decode_packet(data, LINKTYPE_ETHERNET)
    c = pkt.columns()
    assert (c["err"], c["l4_off"], c["payload_off"], c["payload_len"]) == (ERR_OK, 34, 74, 0)
    assert "4 captured (MSS=1460)" in dict(pkt.layers[-1].fields)["options"]


def test_udp_and_icmp_need_eight_bytes() -> None:
    assert cols(b.ethernet(b.ipv4(b.udp()))[: 14 + 20 + 7])["err"] == ERR_TRUNC_L4
    echo = b.ethernet(b.ipv4(b.icmp_echo(), proto=1))
    assert cols(echo[: 14 + 20 + 7])["err"] == ERR_TRUNC_L4
    c = cols(echo)
    assert (c["icmp_type"], c["icmp_code"], c["l4_off"], c["sport"], c["dport"]) == (8, 0, 34, 0, 0)
    assert (c["payload_off"], c["payload_len"]) == (42, 4)


def test_icmpv6_by_protocol_number() -> None:
    c = cols(b.ethernet(b.ipv6(b.icmp_echo(128), next_header=58), ethertype=0x86DD))
    assert (c["icmp_type"], c["l4_off"], c["payload_len"]) == (128, 54, 4)


# --- IPv6 -------------------------------------------------------------------------------


def v6(payload: bytes, nh: int, **kw: int) -> dict[str, int]:
    return cols(b.ethernet(b.ipv6(payload, nh, **kw), ethertype=0x86DD))


def test_ipv6_addresses_as_halves() -> None:
    c = v6(b.udp(), 17)
    assert (c["src_hi"], c["src_lo"]) == (0x20010DB800000000, 1)
    assert (c["dst_hi"], c["dst_lo"], c["ip_csum_ok"], c["ttl"]) == (0x20010DB800000000, 2, 1, 64)


def test_ipv6_ext_walk_then_transport() -> None:
    chain = b.ext_options(IPPROTO_DSTOPTS) + b.ext_options(17, 1)
    c = v6(chain + b.udp(b"abc"), IPPROTO_HOPOPTS)
    assert (c["err"], c["proto"], c["l4_off"], c["payload_len"]) == (ERR_OK, 17, 14 + 40 + 24, 3)


def test_ipv6_atomic_fragment_decodes_transport() -> None:
    c = v6(b.ext_fragment(6) + b.tcp(), IPPROTO_FRAGMENT)
    assert (c["frag"], c["proto"], c["l4_off"]) == (FRAG_HEADER, 6, 62)


def test_ipv6_non_initial_fragment() -> None:
    c = v6(b.ext_fragment(17, offset_units=3, more=True) + b"z" * 24, IPPROTO_FRAGMENT)
    assert c["frag"] == FRAG_HEADER | FRAG_MORE | FRAG_NONINITIAL
    assert (c["proto"], c["l4_off"], c["payload_off"], c["payload_len"]) == (17, -1, 62, 24)


def test_ipv6_ext_limit() -> None:
    def chain(n: int) -> bytes:
        return (
            b"".join(b.ext_options(IPPROTO_DSTOPTS if i < n - 1 else 17) for i in range(n))
            + b.udp()
        )

    assert v6(chain(IPV6_MAX_EXT_HEADERS), IPPROTO_DSTOPTS)["err"] == ERR_OK
    c = v6(chain(IPV6_MAX_EXT_HEADERS + 1), IPPROTO_DSTOPTS)
    assert (c["err"], c["proto"], c["l3"], c["l4_off"]) == (
        ERR_IPV6_EXT_LIMIT, IPPROTO_DSTOPTS, L3_IPV6, -1
    )  # fmt: skip


def test_ipv6_ext_truncated_keeps_walk_state() -> None:
    data = b.ethernet(
        b.ipv6(b.ext_fragment(IPPROTO_DSTOPTS, more=True) + b.ext_options(17, 2) + b.udp(), 44),
        ethertype=0x86DD,
    )
    c = cols(data[: 14 + 40 + 8 + 10])
    assert (c["err"], c["proto"], c["frag"]) == (
        ERR_TRUNC_IPV6_EXT, IPPROTO_DSTOPTS, FRAG_HEADER | FRAG_MORE
    )  # fmt: skip
    assert cols(data[: 14 + 40 + 1])["err"] == ERR_TRUNC_IPV6_EXT


def test_ipv6_payload_length_zero_means_to_end_of_capture() -> None:
    c = v6(b.udp(b"12345"), 17, plen=0)
    assert c["payload_len"] == 5


@pytest.mark.parametrize(("rtype", "final_index"), [(0, -1), (2, -1), (4, 0)])
def test_routing_header_final_destination(rtype: int, final_index: int) -> None:
    hops = [bytes(15) + bytes([0xA0 + i]) for i in range(1 if rtype == 2 else 3)]
    c = v6(b.ext_routing(17, rtype, 1, hops) + b.udp(), IPPROTO_ROUTING)
    assert (c["dst_hi"], c["dst_lo"]) == (0, hops[final_index][-1])
    untouched = v6(b.ext_routing(17, rtype, 0, hops) + b.udp(), IPPROTO_ROUTING)
    assert untouched["dst_lo"] == 2


def test_truncated_ipv6_fixed_header() -> None:
    c = cols(b.ethernet(b.ipv6(b.udp()), ethertype=0x86DD)[: 14 + 39])
    assert (c["err"], c["l3_off"], c["l3"]) == (ERR_TRUNC_IP, 14, 0)


def test_ipv4_total_length_zero_means_the_captured_bytes() -> None:
    # Captured on a host with TCP segmentation offload: the stack leaves the length to the
    # NIC. Like Wireshark, the packet then runs to the end of the captured bytes.
    payload = bytes(3000)
    frame = b.ethernet(b.ipv4(b.tcp(payload, flags=0x18), proto=6, total_length=0))
    c = cols(frame)
    assert c["err"] == 0
    assert (c["l3"], c["proto"], c["sport"], c["dport"]) == (4, 6, 1234, 80)
    assert c["payload_len"] == len(payload)
    # a snaplen-cut frame: the payload ends where the capture ends
    c = cols(frame[:200])
    assert (c["err"], c["payload_len"]) == (0, 200 - 14 - 20 - 20)
    # a UDP datagram the same way, and the detail view says what happened
    udp = b.ethernet(b.ipv4(b.udp(b"x" * 100), total_length=0))
    assert cols(udp)["payload_len"] == 100
    detail = decode_packet(udp, LINKTYPE_ETHERNET).layers[1].extra
    assert any("segmentation offload" in text for _label, text in detail)

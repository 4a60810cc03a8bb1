"""The decode kernel (``engine.decode`` → ``kernels.decode.decode_batch``) on hand-built packets.

Packets come from :mod:`netscope.gen.packets`, whose builders fill lengths and checksums, so
each test states only what differs. The expected values are written out literally (offsets,
integers) rather than recomputed, so a test reads as the rule it checks.

The last tests run the same kernel as plain Python (``NUMBA_DISABLE_JIT=1``) in a subprocess:
numba's integer semantics (wrap-around, unsigned/signed mixing) can differ from numpy's, and a
kernel that only works compiled is hard to debug.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from netscope import engine
from netscope.batch import PacketBatch, batch_from_packets
from netscope.columns import DecodedColumns
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
    IPV6_MAX_EXT_HEADERS,
    L3_IPV4,
    L3_IPV6,
)
from netscope.gen import packets as pk

V4A, V4B = "10.0.0.1", "192.168.200.7"
V4A_INT, V4B_INT = 0x0A000001, 0xC0A8C807
V6A, V6B = "2001:db8::1", "fe80::abcd:2"
V6A_HI, V6A_LO = 0x20010DB800000000, 1
V6B_HI, V6B_LO = 0xFE80000000000000, 0xABCD0002

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58


def decode_all(packets: Sequence[bytes], linktypes: Sequence[int] | int = 1) -> DecodedColumns:
    """Decode ``packets`` as one batch (link type per packet or one for all)."""
    batch = batch_from_packets(list(packets))
    if isinstance(linktypes, int):
        batch.linktypes[:] = linktypes
    else:
        batch.linktypes[:] = np.asarray(linktypes, dtype=np.int32)
    cols = DecodedColumns.allocate(max(len(packets), 1))
    engine.decode(batch, cols)
    return cols


def decode_one(packet: bytes, linktype: int = 1) -> dict[str, int]:
    return decode_all([packet], linktype).row(0)


def tcp4(payload: bytes = b"", flags: str = "S", **kw: object) -> bytes:
    return pk.tcp(V4A, V4B, 40000, 443, 1000, 0, flags, payload=payload, **kw)  # type: ignore[arg-type]


def tcp6(payload: bytes = b"", flags: str = "PA") -> bytes:
    return pk.tcp(V6A, V6B, 50000, 80, 0xFFFFFFF0, 7, flags, payload=payload)


def eth(ethertype: int, payload: bytes, vlans: Sequence[int] = ()) -> bytes:
    return pk.ethernet("02:00:00:00:00:01", "02:00:00:00:00:02", ethertype, payload, vlans)


# ------------------------------------------------------------------ link layers


def test_ethernet_ipv4_tcp_all_columns() -> None:
    """One ordinary packet, every column checked: the reference for the other tests."""
    payload = b"hello world"
    seg = pk.tcp(V4A, V4B, 40000, 443, 123456789, 987654321, "PA", window=5000, payload=payload)
    row = decode_one(eth(0x0800, pk.ipv4(V4A, V4B, TCP, seg, ttl=33)))
    assert row == {
        "err": ERR_OK,
        "l3_off": 14,
        "vlan_id": -1,
        "vlan_count": 0,
        "ethertype": 0x0800,
        "l3": L3_IPV4,
        "ip_csum_ok": 1,
        "ttl": 33,
        "src_hi": 0,
        "src_lo": V4A_INT,
        "dst_hi": 0,
        "dst_lo": V4B_INT,
        "proto": TCP,
        "frag": 0,
        "l4_off": 34,
        "sport": 40000,
        "dport": 443,
        "tcp_flags": 0x18,
        "seq": 123456789,
        "ack": 987654321,
        "win": 5000,
        "icmp_type": 0,
        "icmp_code": 0,
        "payload_off": 54,
        "payload_len": len(payload),
    }


def test_vlan_and_qinq() -> None:
    ip = pk.ipv4(V4A, V4B, TCP, tcp4())
    cols = decode_all([eth(0x0800, ip, [100]), eth(0x0800, ip, [3000, 42])])
    assert cols.vlan_id.tolist() == [100, 3000]  # outermost tag
    assert cols.vlan_count.tolist() == [1, 2]
    assert cols.l3_off.tolist() == [18, 22]
    assert cols.l4_off.tolist() == [38, 42]
    assert cols.err.tolist() == [0, 0]
    assert cols.ethertype.tolist() == [0x0800, 0x0800]


def test_old_qinq_tpid_and_deep_tag_stack() -> None:
    """0x9100 (pre-standard QinQ) is a tag too; a tag stack deeper than the bounded walk is
    left undecoded (non-IP) rather than walked forever."""
    ip = pk.ipv4(V4A, V4B, UDP, pk.udp(V4A, V4B, 1, 2, b"x"))
    old = eth(0x9100, struct.pack("!HH", 7, 0x0800) + ip)
    deep = eth(0x8100, b"".join(struct.pack("!HH", 5, 0x8100) for _ in range(20)) + ip)
    cols = decode_all([old, deep])
    assert cols.row(0)["vlan_id"] == 7 and cols.row(0)["l3"] == L3_IPV4
    assert cols.row(1)["l3"] == 0 and cols.row(1)["err"] == ERR_OK


def pppoe(ppp_proto: int, payload: bytes) -> bytes:
    return struct.pack("!BBHHH", 0x11, 0, 0x1234, len(payload) + 2, ppp_proto) + payload


def test_pppoe_session() -> None:
    v4 = eth(0x8864, pppoe(0x0021, pk.ipv4(V4A, V4B, TCP, tcp4())))
    v6 = eth(0x8864, pppoe(0x0057, pk.ipv6(V6A, V6B, TCP, tcp6())), [9])
    lcp = eth(0x8864, pppoe(0xC021, b"\x01\x01\x00\x04"))
    cut = eth(0x8864, pppoe(0x0021, b"")[:5])
    cols = decode_all([v4, v6, lcp, cut])
    assert cols.l3.tolist() == [L3_IPV4, L3_IPV6, 0, 0]
    assert cols.l3_off.tolist() == [22, 26, -1, -1]
    assert cols.sport.tolist()[:2] == [40000, 50000]
    assert cols.err.tolist() == [0, 0, 0, ERR_TRUNC_LINK]


def test_non_ip_ethertype_is_not_an_error() -> None:
    arp = eth(0x0806, bytes(28))
    row = decode_one(arp)
    assert (row["err"], row["l3"], row["l3_off"], row["ethertype"]) == (0, 0, -1, 0x0806)


def test_sll_and_sll2() -> None:
    ip4 = pk.ipv4(V4A, V4B, UDP, pk.udp(V4A, V4B, 5353, 53, b"q"))
    ip6 = pk.ipv6(V6A, V6B, TCP, tcp6())
    cols = decode_all(
        [pk.sll(0x0800, ip4), pk.sll(0x86DD, ip6), pk.sll2(0x0800, ip4), pk.sll2(0x86DD, ip6)],
        [113, 113, 276, 276],
    )
    assert cols.err.tolist() == [0, 0, 0, 0]
    assert cols.l3_off.tolist() == [16, 16, 20, 20]
    assert cols.l3.tolist() == [L3_IPV4, L3_IPV6, L3_IPV4, L3_IPV6]
    assert cols.sport.tolist() == [5353, 50000, 5353, 50000]
    # Shorter than the cooked header itself:
    short = decode_all([pk.sll(0x0800, b"")[:15], pk.sll2(0x0800, b"")[:19]], [113, 276])
    assert short.err.tolist() == [ERR_TRUNC_LINK, ERR_TRUNC_LINK]


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize(
    ("af", "l3"),
    [(2, L3_IPV4), (24, L3_IPV6), (28, L3_IPV6), (30, L3_IPV6)],
    ids=["inet", "inet6-bsd", "inet6-freebsd", "inet6-darwin"],
)
def test_null_loopback_both_byte_orders(byteorder: str, af: int, l3: int) -> None:
    """LINKTYPE_NULL stores the family in the capturing host's byte order: accept both."""
    inner = pk.ipv4(V4A, V4B, TCP, tcp4()) if l3 == L3_IPV4 else pk.ipv6(V6A, V6B, TCP, tcp6())
    row = decode_one(pk.null_loopback(af, inner, byteorder), linktype=0)
    assert (row["err"], row["l3"], row["l3_off"]) == (0, l3, 4)
    assert row["dport"] == (443 if l3 == L3_IPV4 else 80)


def test_null_loopback_unknown_family_and_short() -> None:
    cols = decode_all([pk.null_loopback(99, bytes(40)), b"\x02\x00\x00"], 0)
    assert cols.err.tolist() == [ERR_OK, ERR_TRUNC_LINK]
    assert cols.l3.tolist() == [0, 0]


def test_loop_is_network_byte_order() -> None:
    """LINKTYPE_LOOP (108) always uses network order; a little-endian family is not IPv4."""
    inner = pk.ipv4(V4A, V4B, TCP, tcp4())
    cols = decode_all(
        [pk.null_loopback(2, inner, "big"), pk.null_loopback(2, inner, "little")], 108
    )
    assert cols.l3.tolist() == [L3_IPV4, 0]
    assert cols.l3_off.tolist() == [4, -1]


@pytest.mark.parametrize("linktype", [12, 101, 228, 229])
def test_raw_ip_by_version_nibble(linktype: int) -> None:
    v4 = pk.ipv4(V4A, V4B, TCP, tcp4())
    v6 = pk.ipv6(V6A, V6B, TCP, tcp6())
    cols = decode_all([v4, v6, b"\x50" + bytes(39), b""], linktype)
    assert cols.err.tolist() == [0, 0, ERR_BAD_IP_VERSION, ERR_TRUNC_IP]
    assert cols.l3.tolist() == [L3_IPV4, L3_IPV6, 0, 0]
    assert cols.l3_off.tolist()[:2] == [0, 0]
    assert cols.ethertype.tolist()[:2] == [0x0800, 0x86DD]


def test_raw_ipv4_and_ipv6_link_types_follow_the_packet() -> None:
    """228 and 229 dispatch on the version nibble like tcpdump/tshark: an IPv6 packet in a
    LINKTYPE_IPV4 file is IPv6 (not an error), and a short IPv4 packet under 229 is IPv4."""
    v4 = pk.ipv4(V4A, V4B, UDP, pk.udp(V4A, V4B, 7, 9, b"long enough for a v6 header"))
    v6 = pk.ipv6(V6A, V6B, UDP, pk.udp(V6A, V6B, 7, 9))
    short_v4 = pk.ipv4(V4A, V4B, UDP, pk.udp(V4A, V4B, 7, 9))  # 28 bytes < an IPv6 header
    cols = decode_all([v4, v6, v6, v4, short_v4], [228, 229, 228, 229, 229])
    assert cols.err.tolist() == [0, 0, 0, 0, 0]
    assert cols.l3.tolist() == [L3_IPV4, L3_IPV6, L3_IPV6, L3_IPV4, L3_IPV4]
    assert cols.ethertype.tolist() == [0x0800, 0x86DD, 0x86DD, 0x0800, 0x0800]


@pytest.mark.parametrize("linktype", [127, 239, 147, 65535, 2**31 - 1])
def test_unsupported_link_type(linktype: int) -> None:
    row = decode_one(eth(0x0800, pk.ipv4(V4A, V4B, TCP, tcp4())), linktype)
    assert row["err"] == ERR_UNSUPPORTED_LINK
    assert (row["l3"], row["l3_off"], row["l4_off"], row["payload_off"]) == (0, -1, -1, -1)


# ------------------------------------------------------------------ IPv4


def test_ipv4_options_shift_the_transport_header() -> None:
    opts = [b"\x01\x01\x01\x00", bytes([0x44, 12, 5, 0]) + bytes(8), b"\x01" * 40]
    pkts = [eth(0x0800, pk.ipv4(V4A, V4B, TCP, tcp4(b"abc"), options=o)) for o in opts]
    cols = decode_all(pkts)
    assert cols.err.tolist() == [0, 0, 0]
    assert cols.ip_csum_ok.tolist() == [1, 1, 1]
    assert cols.l4_off.tolist() == [14 + 24, 14 + 32, 14 + 60]
    assert cols.payload_len.tolist() == [3, 3, 3]


def test_ipv4_bad_checksum_is_flagged_not_an_error() -> None:
    good = pk.ipv4(V4A, V4B, TCP, tcp4())
    bad = good[:10] + bytes([good[10] ^ 0xFF, good[11]]) + good[12:]
    zero = good[:10] + b"\x00\x00" + good[12:]  # checksum offload: captured before NIC fills it
    cols = decode_all([eth(0x0800, good), eth(0x0800, bad), eth(0x0800, zero)])
    assert cols.ip_csum_ok.tolist() == [1, 0, 0]
    assert cols.err.tolist() == [0, 0, 0]
    assert cols.sport.tolist() == [40000, 40000, 40000]


@pytest.mark.parametrize(
    ("first_byte", "total_len"), [(0x44, 40), (0x40, 40), (0x45, 19), (0x46, 20)]
)
def test_ipv4_bad_header_lengths(first_byte: int, total_len: int) -> None:
    ip = bytearray(pk.ipv4(V4A, V4B, TCP, tcp4()))
    ip[0] = first_byte
    ip[2:4] = total_len.to_bytes(2, "big")
    assert decode_one(eth(0x0800, bytes(ip)))["err"] == ERR_BAD_IP_HEADER


def test_ipv4_version_mismatch() -> None:
    v6 = pk.ipv6(V6A, V6B, TCP, tcp6())
    assert decode_one(eth(0x0800, v6))["err"] == ERR_BAD_IP_VERSION
    assert decode_one(eth(0x86DD, pk.ipv4(V4A, V4B, TCP, tcp4()) + bytes(20)))["err"] == (
        ERR_BAD_IP_VERSION
    )


def test_ipv4_fragments() -> None:
    seg = tcp4(b"x" * 100, "PA")
    first = pk.ipv4(V4A, V4B, TCP, seg, more_fragments=True, flags_df=False)
    middle = pk.ipv4(V4A, V4B, TCP, b"y" * 64, frag_offset=15, more_fragments=True, flags_df=False)
    last = pk.ipv4(V4A, V4B, TCP, b"z" * 9, frag_offset=23, flags_df=False)
    cols = decode_all([eth(0x0800, p) for p in (first, middle, last)])
    assert cols.frag.tolist() == [FRAG_MORE, FRAG_MORE | FRAG_NONINITIAL, FRAG_NONINITIAL]
    assert cols.err.tolist() == [0, 0, 0]
    assert cols.l4_off.tolist() == [34, -1, -1]
    assert cols.sport.tolist() == [40000, 0, 0]  # no transport header past offset 0
    assert cols.payload_off.tolist() == [54, 34, 34]
    assert cols.payload_len.tolist() == [100, 64, 9]
    assert cols.proto.tolist() == [TCP, TCP, TCP]


def test_ethernet_padding_is_not_payload() -> None:
    """A 60-byte minimum frame around a 40-byte IP packet: the IP length rules."""
    frame = eth(0x0800, pk.ipv4(V4A, V4B, TCP, tcp4(flags="A")))
    frame += bytes(60 - len(frame))
    row = decode_one(frame)
    assert (row["err"], row["payload_off"], row["payload_len"]) == (0, 54, 0)


def test_udp_icmp_and_other_protocols() -> None:
    udp = pk.ipv4(V4A, V4B, UDP, pk.udp(V4A, V4B, 5353, 53, b"d" * 30))
    icmp = pk.ipv4(V4A, V4B, ICMP, pk.icmp_echo(7, 1, b"ping" * 8))
    unreach = pk.ipv4(V4A, V4B, ICMP, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + bytes(28))
    gre = pk.ipv4(V4A, V4B, 47, b"\x00\x00\x08\x00" + bytes(20))
    cols = decode_all([eth(0x0800, p) for p in (udp, icmp, unreach, gre)])
    assert cols.err.tolist() == [0, 0, 0, 0]
    assert cols.proto.tolist() == [UDP, ICMP, ICMP, 47]
    assert cols.sport.tolist() == [5353, 0, 0, 0]
    assert cols.dport.tolist() == [53, 0, 0, 0]
    assert cols.icmp_type.tolist() == [0, 8, 3, 0]
    assert cols.icmp_code.tolist() == [0, 0, 3, 0]
    assert cols.l4_off.tolist() == [34, 34, 34, -1]
    assert cols.payload_off.tolist() == [42, 42, 42, 34]
    assert cols.payload_len.tolist() == [30, 32, 28, 24]


@pytest.mark.parametrize("offset_words", [0, 1, 4])
def test_tcp_data_offset_below_five(offset_words: int) -> None:
    """docs/protocols.md: the fixed-header columns are kept, there is no payload."""
    seg = bytearray(tcp4(b"abc"))
    seg[12] = offset_words << 4
    row = decode_one(eth(0x0800, pk.ipv4(V4A, V4B, TCP, bytes(seg))))
    assert row["err"] == ERR_BAD_TCP_HEADER
    assert (row["l4_off"], row["sport"], row["dport"], row["seq"]) == (34, 40000, 443, 1000)
    assert (row["payload_off"], row["payload_len"]) == (-1, 0)


def test_tcp_options_need_not_be_captured() -> None:
    """docs/protocols.md: a snaplen that cuts the TCP options still yields every TCP column;
    ``payload_off`` may then lie beyond caplen, and ``payload_len`` follows the IP length."""
    opts = pk.tcp_options(mss=1460, sack_perm=True, timestamps=(1, 2), wscale=7)
    seg = pk.tcp(V4A, V4B, 40000, 443, 5, 6, "SA", options=opts, payload=b"p" * 10)
    frame = eth(0x0800, pk.ipv4(V4A, V4B, TCP, seg))[:54]  # 54-byte snaplen
    row = decode_one(frame)
    assert row["err"] == ERR_OK
    assert (row["sport"], row["tcp_flags"], row["win"]) == (40000, 0x12, 65535)
    assert row["payload_off"] == 34 + 20 + len(opts) > 54
    assert row["payload_len"] == 10


def test_tcp_data_offset_beyond_segment() -> None:
    """A data offset pointing past the IP payload leaves no payload (never a negative one)."""
    seg = bytearray(tcp4())
    seg[12] = 15 << 4
    row = decode_one(eth(0x0800, pk.ipv4(V4A, V4B, TCP, bytes(seg))))
    assert (row["err"], row["payload_off"], row["payload_len"]) == (ERR_OK, 34 + 60, 0)


# ------------------------------------------------------------------ IPv6


def test_ipv6_extension_chain_then_tcp() -> None:
    exts = [
        pk.hop_by_hop(b"\x05\x02\x00\x00"),  # router alert
        pk.routing_header([V6B], segments_left=0),
        pk.dest_options(),
        pk.fragment_header(offset=0, more=True, ident=99),
    ]
    ip = pk.ipv6(V6A, V6B, TCP, tcp6(b"data!"), ext_headers=exts)
    row = decode_one(eth(0x86DD, ip))
    ext_len = 8 + (8 + 16) + 8 + 8
    assert row["err"] == ERR_OK
    assert row["l3"] == L3_IPV6 and row["l3_off"] == 14
    assert (row["src_hi"], row["src_lo"], row["dst_hi"], row["dst_lo"]) == (
        V6A_HI, V6A_LO, V6B_HI, V6B_LO
    )  # fmt: skip
    assert row["proto"] == TCP
    assert row["frag"] == FRAG_HEADER | FRAG_MORE
    assert row["l4_off"] == 54 + ext_len
    assert (row["sport"], row["dport"], row["seq"], row["ack"]) == (50000, 80, 0xFFFFFFF0, 7)
    assert row["payload_off"] == 54 + ext_len + 20
    assert row["payload_len"] == 5
    assert row["ip_csum_ok"] == 1 and row["ttl"] == 64


def test_ipv6_fragments_initial_noninitial_atomic() -> None:
    seg = tcp6(b"p" * 40)
    initial = pk.ipv6(V6A, V6B, TCP, seg, ext_headers=[pk.fragment_header(0, True, 5)])
    later = pk.ipv6(V6A, V6B, TCP, b"q" * 24, ext_headers=[pk.fragment_header(8, False, 5)])
    atomic = pk.ipv6(V6A, V6B, TCP, seg, ext_headers=[pk.fragment_header(0, False, 6)])
    cols = decode_all([eth(0x86DD, p) for p in (initial, later, atomic)])
    assert cols.err.tolist() == [0, 0, 0]
    assert cols.frag.tolist() == [
        FRAG_HEADER | FRAG_MORE,
        FRAG_HEADER | FRAG_NONINITIAL,
        FRAG_HEADER,
    ]
    assert cols.proto.tolist() == [TCP, TCP, TCP]
    assert cols.l4_off.tolist() == [62, -1, 62]
    assert cols.sport.tolist() == [50000, 0, 50000]
    assert cols.payload_off.tolist() == [82, 62, 82]
    assert cols.payload_len.tolist() == [40, 24, 40]


def ah(payload_words: int = 4) -> pk.ExtHeader:
    """Authentication Header: its length field counts 4-byte words minus 2 (unlike the others)."""
    body_len = (payload_words + 2) * 4 - 1
    return pk.ExtHeader(51, bytes([payload_words]) + bytes(body_len - 1))


def test_ipv6_authentication_header() -> None:
    ip = pk.ipv6(V6A, V6B, UDP, pk.udp(V6A, V6B, 500, 4500, b"ike"), ext_headers=[ah(4)])
    ip2 = pk.ipv6(V6A, V6B, UDP, pk.udp(V6A, V6B, 500, 4500), ext_headers=[pk.hop_by_hop(), ah(7)])
    cols = decode_all([eth(0x86DD, ip), eth(0x86DD, ip2)])
    assert cols.err.tolist() == [0, 0]
    assert cols.proto.tolist() == [UDP, UDP]
    assert cols.l4_off.tolist() == [54 + 24, 54 + 8 + 36]
    assert cols.dport.tolist() == [4500, 4500]


def test_ipv6_esp_and_no_next_header_end_the_walk() -> None:
    esp = pk.ipv6(V6A, V6B, 50, bytes(40), ext_headers=[pk.dest_options()])
    none = pk.ipv6(V6A, V6B, 59, b"", ext_headers=[pk.hop_by_hop()])
    cols = decode_all([eth(0x86DD, esp), eth(0x86DD, none)])
    assert cols.err.tolist() == [0, 0]
    assert cols.proto.tolist() == [50, 59]
    assert cols.l4_off.tolist() == [-1, -1]
    assert cols.payload_off.tolist() == [62, 62]
    assert cols.payload_len.tolist() == [40, 0]


def test_ipv6_routing_header_final_destination() -> None:
    """With segments left, the flow's destination is the final one in the routing header."""
    final, hop = "2001:db8::99", "2001:db8::55"
    srh = pk.routing_header([final, hop], routing_type=4, segments_left=1)
    ip = pk.ipv6(V6A, hop, UDP, pk.udp(V6A, final, 1, 2), ext_headers=[srh])
    done = pk.routing_header([final, hop], routing_type=4, segments_left=0)
    ip_done = pk.ipv6(V6A, final, UDP, pk.udp(V6A, final, 1, 2), ext_headers=[done])
    cols = decode_all([eth(0x86DD, ip), eth(0x86DD, ip_done)])
    assert cols.err.tolist() == [0, 0]
    assert cols.dst_lo.tolist() == [0x99, 0x99]
    assert cols.dst_hi.tolist() == [0x20010DB800000000] * 2


@pytest.mark.parametrize("count", [IPV6_MAX_EXT_HEADERS, IPV6_MAX_EXT_HEADERS + 1])
def test_ipv6_extension_header_limit(count: int) -> None:
    ip = pk.ipv6(V6A, V6B, TCP, tcp6(), ext_headers=[pk.dest_options()] * count)
    row = decode_one(eth(0x86DD, ip))
    if count <= IPV6_MAX_EXT_HEADERS:
        assert (row["err"], row["sport"]) == (ERR_OK, 50000)
    else:
        assert row["err"] == ERR_IPV6_EXT_LIMIT
        assert row["l3"] == L3_IPV6  # addresses were decoded before the walk gave up
        assert row["src_lo"] == V6A_LO


def test_ipv6_jumbo_payload_length_zero_trusts_capture() -> None:
    ip = bytearray(pk.ipv6(V6A, V6B, UDP, pk.udp(V6A, V6B, 9, 9, b"j" * 20)))
    ip[4:6] = b"\x00\x00"
    row = decode_one(eth(0x86DD, bytes(ip)))
    assert (row["err"], row["payload_len"]) == (ERR_OK, 20)


def test_icmpv6() -> None:
    echo = pk.ipv6(V6A, V6B, ICMPV6, pk.icmpv6_echo(V6A, V6B, 1, 2, b"abcd"))
    ra = pk.ipv6("fe80::1", "ff02::1", ICMPV6, bytes([134, 0, 0, 0]) + bytes(12),
                 ext_headers=[pk.hop_by_hop(b"\x05\x02\x00\x00")])  # fmt: skip
    cols = decode_all([eth(0x86DD, echo), eth(0x86DD, ra)])
    assert cols.err.tolist() == [0, 0]
    assert cols.proto.tolist() == [ICMPV6, ICMPV6]
    assert cols.icmp_type.tolist() == [128, 134]
    assert cols.payload_len.tolist() == [4, 8]


# ------------------------------------------------------------------ truncation sweeps


def _expected_truncation_error(cut: int, l3: int, ip_fixed: int, l4: int, l4_min: int) -> int:
    """The layer whose header the cut lands in decides the error (SPEC: truncation is a parse
    error of that layer, earlier layers stay decoded)."""
    if cut < l3:
        return ERR_TRUNC_LINK
    if cut < l3 + ip_fixed:
        return ERR_TRUNC_IP
    if cut < l4:
        return ERR_TRUNC_IPV6_EXT
    if cut < l4 + l4_min:
        return ERR_TRUNC_L4
    return ERR_OK


SWEEP_PACKETS = {
    "eth-ipv6-ext-tcp": (
        eth(0x86DD, pk.ipv6(V6A, V6B, TCP, tcp6(b"0123456789"),
                            ext_headers=[pk.hop_by_hop(), pk.routing_header([V6B], segments_left=0),
                                         pk.fragment_header(0, False, 1), ah(3)])),
        1, 14, 40, 14 + 40 + 8 + 24 + 8 + 20, 20,
    ),
    "vlan-ipv4-opts-tcp": (
        eth(0x0800, pk.ipv4(V4A, V4B, TCP, tcp4(b"xyz"), options=b"\x01" * 8), [12]),
        1, 18, 28, 18 + 28, 20,
    ),
    "sll2-ipv6-udp": (
        pk.sll2(0x86DD, pk.ipv6(V6A, V6B, UDP, pk.udp(V6A, V6B, 53, 53, b"dns"))),
        276, 20, 40, 60, 8,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SWEEP_PACKETS))
def test_every_truncation_point(name: str) -> None:
    """Cut a packet at every length 0..len: never raises, the error names the layer the cut
    falls in, and the error code never goes back to an earlier layer as the cut grows."""
    packet, linktype, l3, ip_fixed, l4, l4_min = SWEEP_PACKETS[name]
    if ip_fixed == 28:  # IPv4 with options: the fixed-size check is 20, the IHL check 28
        ip_fixed = 20
    cuts = list(range(len(packet) + 1))
    cols = decode_all([packet[:c] for c in cuts], linktype)
    errors = cols.err.tolist()
    for c, e in zip(cuts, errors, strict=True):
        want = _expected_truncation_error(c, l3, ip_fixed, l4, l4_min)
        if name.startswith("vlan-ipv4") and l3 + 20 <= c < l3 + 28:
            want = ERR_TRUNC_IP  # inside the IPv4 options: still the IP header
        assert e == want, f"cut at {c}: err {e}, expected {want}"
    full = cols.row(len(packet))
    assert full["err"] == ERR_OK
    # Once the IP header is in, addresses are decoded whatever happens later.
    for c in cuts:
        if c >= l4 and errors[c] in (ERR_OK, ERR_TRUNC_L4):
            assert cols.src_lo[c] == full["src_lo"]
            assert cols.dst_lo[c] == full["dst_lo"]
            assert cols.l3[c] == full["l3"]


@pytest.mark.parametrize("name", list(SWEEP_PACKETS))
def test_no_read_past_captured_length(name: str) -> None:
    """Bytes after a packet's caplen must not influence its decode: decode each cut packet
    followed by 0x00 filler and by 0xFF filler (in one buffer) and compare."""
    packet, linktype = SWEEP_PACKETS[name][0], SWEEP_PACKETS[name][1]
    n = len(packet) + 1
    results = []
    for filler in (0x00, 0xFF):
        stride = len(packet) + 64
        buf = np.full(n * stride, filler, dtype=np.uint8)
        for c in range(n):
            buf[c * stride : c * stride + c] = np.frombuffer(packet[:c], dtype=np.uint8)
        batch = PacketBatch(
            buf=buf,
            offsets=np.arange(n, dtype=np.int64) * stride,
            caplens=np.arange(n, dtype=np.int32),
            wirelens=np.full(n, len(packet), dtype=np.int32),
            ts_ns=np.zeros(n, dtype=np.int64),
            linktypes=np.full(n, linktype, dtype=np.int32),
            count=n,
        )
        cols = DecodedColumns.allocate(n)
        engine.decode(batch, cols)
        results.append([cols.row(i) for i in range(n)])
    assert results[0] == results[1]


def test_garbage_never_raises() -> None:
    """Random bytes under every supported link type decode to *something* without raising."""
    rng = np.random.default_rng(1234)
    pkts = [rng.integers(0, 256, size=int(rng.integers(0, 120)), dtype=np.uint8).tobytes()
            for _ in range(3000)]  # fmt: skip
    # Bias some toward IP so deeper layers get fuzzed too.
    for i in range(0, len(pkts), 3):
        pkts[i] = b"\x45" + pkts[i][1:] if pkts[i] else pkts[i]
    for i in range(1, len(pkts), 3):
        pkts[i] = b"\x60" + pkts[i][1:] if pkts[i] else pkts[i]
    linktypes = [(0, 1, 12, 101, 108, 113, 228, 229, 276)[i % 9] for i in range(len(pkts))]
    cols = decode_all(pkts, linktypes)
    caplens = np.array([len(p) for p in pkts])
    for name in ("l3_off", "l4_off", "payload_off"):
        col = getattr(cols, name)[: len(pkts)]
        # an offset points inside the captured bytes (== caplen: an empty rest), or is -1
        assert ((col == -1) | ((col >= 0) & (col <= caplens))).all(), name
    # payload_len follows the IP length fields (it may exceed what was captured), so its
    # bound is the largest IP payload: 65535 bytes (a v6 jumbogram is not decoded as such)
    payload_len = cols.payload_len[: len(pkts)]
    assert ((payload_len >= 0) & (payload_len <= 65535)).all()


# ------------------------------------------------------------------ batch contract


def test_reused_columns_do_not_leak_values() -> None:
    """Every column of every packet is written, so a second batch decoded into the same arrays
    equals a fresh decode."""
    rich = [eth(0x86DD, pk.ipv6(V6A, V6B, TCP, tcp6(b"z" * 50), ext_headers=[pk.hop_by_hop()]),
                [7, 8])] * 4  # fmt: skip
    poor = [b"", eth(0x0806, bytes(28)), b"\x45" + bytes(10), bytes(3)]
    cols = DecodedColumns.allocate(4)
    engine.decode(batch_from_packets(rich), cols)
    batch = batch_from_packets(poor)
    engine.decode(batch, cols)
    fresh = decode_all(poor)
    assert [cols.row(i) for i in range(4)] == [fresh.row(i) for i in range(4)]


def test_only_count_packets_are_written() -> None:
    """The kernel honours ``count``: arrays longer than the batch are left alone."""
    batch = batch_from_packets([eth(0x0800, pk.ipv4(V4A, V4B, TCP, tcp4()))] * 3).sliced(2)
    cols = DecodedColumns.allocate(3)
    cols.sport[2] = 4242
    engine.decode(batch, cols)
    assert cols.sport.tolist() == [40000, 40000, 4242]


def test_column_capacity_is_checked() -> None:
    batch = batch_from_packets([b"a", b"b"])
    with pytest.raises(ValueError):
        engine.decode(batch, DecodedColumns.allocate(1))


# ------------------------------------------------------------------ pure-Python semantics

_PURE_PYTHON_SCRIPT = r"""
import json, sys
import numpy as np
from netscope import engine
from netscope.batch import batch_from_packets
from netscope.columns import DecodedColumns
from netscope.kernels.decode import decode_batch

assert not hasattr(decode_batch, "signatures"), "kernel was compiled despite NUMBA_DISABLE_JIT"
spec = json.load(sys.stdin)
batch = batch_from_packets([bytes.fromhex(h) for h in spec["packets"]])
batch.linktypes[:] = np.asarray(spec["linktypes"], dtype=np.int32)
cols = DecodedColumns.allocate(len(spec["packets"]))
engine.decode(batch, cols)
json.dump([cols.row(i) for i in range(batch.count)], sys.stdout)
"""


def _interpreter_cases() -> tuple[list[bytes], list[int]]:
    """A small, varied set: every link family, both IP versions, errors and truncations."""
    pkts: list[bytes] = []
    lts: list[int] = []
    for packet, lt, *_ in SWEEP_PACKETS.values():
        for cut in (len(packet), len(packet) - 1, 60, 40, 21, 13, 3):
            pkts.append(packet[:cut])
            lts.append(lt)
    big_seq = pk.tcp(V4A, V4B, 65535, 1, 0xFFFFFFFF, 0x80000000, 0xFF, window=65535)
    more = [
        (eth(0x0800, pk.ipv4("255.255.255.255", "128.0.0.1", TCP, big_seq), [4095, 1]), 1),
        (pk.null_loopback(30, pk.ipv6("ffff::ffff", V6B, UDP, pk.udp(V6A, V6B, 1, 2)), "big"), 0),
        (pk.null_loopback(2, pk.ipv4(V4A, V4B, ICMP, pk.icmp_echo(1, 1))), 108),
        (pk.sll(0x0800, pk.ipv4(V4A, V4B, TCP, tcp4(), options=b"\x01" * 4)), 113),
        (eth(0x8864, pppoe(0x0057, pk.ipv6(V6A, V6B, TCP, tcp6()))), 1),
        (pk.ipv6(V6A, V6B, TCP, tcp6(), ext_headers=[pk.dest_options()] * 9), 229),
        (pk.ipv4(V4A, V4B, 47, bytes(8), frag_offset=3), 228),
        (eth(0x0800, bytes(20)), 1),
        (bytes(30), 127),
    ]
    for packet, lt in more:
        pkts.append(packet)
        lts.append(lt)
    return pkts, lts


def test_compiled_and_pure_python_agree(tmp_path: Path) -> None:
    """Run the kernel uncompiled (NUMBA_DISABLE_JIT=1) on varied packets; results must match
    the compiled kernel column for column."""
    pkts, lts = _interpreter_cases()
    compiled = decode_all(pkts, lts)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_SCRIPT],
        input=json.dumps({"packets": [p.hex() for p in pkts], "linktypes": lts}),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    interpreted = json.loads(proc.stdout)
    names = [f.name for f in fields(DecodedColumns)]
    for i, row in enumerate(interpreted):
        want = compiled.row(i)
        diff = {k: (row[k], want[k]) for k in names if row[k] != want[k]}
        assert not diff, f"packet {i} (linktype {lts[i]}): python vs compiled {diff}"


# ------------------------------------------------------------------ columns left on errors


def test_columns_on_link_errors_match_the_documented_rules() -> None:
    """docs/protocols.md "Link layer": what stays set when decoding stops early."""
    ip = pk.ipv4(V4A, V4B, TCP, tcp4())
    cut_in_second_tag = eth(0x0800, ip, [3000, 42])[:20]
    nine_tags = eth(0x8100, b"".join(struct.pack("!HH", 5, 0x8100) for _ in range(8)) + ip)
    cut_pppoe = eth(0x8864, pppoe(0x0021, ip))[:19]
    cols = decode_all([cut_in_second_tag, nine_tags, cut_pppoe])
    assert cols.row(0)["err"] == ERR_TRUNC_LINK
    assert (cols.row(0)["ethertype"], cols.row(0)["vlan_id"], cols.row(0)["vlan_count"]) == (
        0x8100, 3000, 1
    )  # fmt: skip
    assert (cols.row(1)["err"], cols.row(1)["l3"], cols.row(1)["vlan_count"]) == (0, 0, 8)
    assert cols.row(1)["ethertype"] == 0x8100
    assert (cols.row(2)["err"], cols.row(2)["ethertype"]) == (ERR_TRUNC_LINK, 0x8864)
    raw = decode_all([b"\x50" + bytes(39), b""], 101)
    assert raw.ethertype.tolist() == [0, 0]
    assert raw.l3_off.tolist() == [-1, -1]


def test_columns_on_ip_errors_match_the_documented_rules() -> None:
    """IPv4 errors leave every L3 column at its default; IPv6 extension errors keep the
    fixed-header columns, ``proto`` where the walk stopped and the fragment bits so far."""
    bad = bytearray(pk.ipv4(V4A, V4B, TCP, tcp4()))
    bad[0] = 0x44
    limit = pk.ipv6(V6A, V6B, TCP, tcp6(), ext_headers=[pk.fragment_header(0, True)]
                    + [pk.dest_options()] * 8)  # fmt: skip
    cut = pk.ipv6(V6A, V6B, TCP, tcp6(), ext_headers=[pk.fragment_header(0, True), ah(6)])[:60]
    cols = decode_all([eth(0x0800, bytes(bad)), eth(0x86DD, limit), eth(0x86DD, cut)])
    v4 = cols.row(0)
    assert v4["err"] == ERR_BAD_IP_HEADER
    assert (v4["l3"], v4["ttl"], v4["src_lo"], v4["dst_lo"], v4["proto"]) == (0, 0, 0, 0, 0)
    assert v4["l3_off"] == 14  # a link-layer fact: the IP header starts there
    for i, err, proto in ((1, ERR_IPV6_EXT_LIMIT, 60), (2, ERR_TRUNC_IPV6_EXT, 51)):
        row = cols.row(i)
        assert (row["err"], row["proto"], row["l3"]) == (err, proto, L3_IPV6)
        assert row["frag"] == FRAG_HEADER | FRAG_MORE
        assert (row["src_hi"], row["dst_lo"], row["ttl"]) == (V6A_HI, V6B_LO, 64)
        assert (row["l4_off"], row["payload_off"]) == (-1, -1)


def test_ipv4_total_length_zero_agrees_with_the_readable_decoder_and_is_tracked() -> None:
    """TSO captures (IPv4 total length 0) decode to the end of the captured bytes in the
    kernel exactly as in the readable decoder, and the flow table counts them."""
    from netscope.decode import decode_packet
    from netscope.flows.table import FlowOptions, FlowTable

    ip = bytearray(pk.ipv4(V4A, V4B, 6, tcp4(bytes(2800), flags="PA")))
    ip[2:4] = b"\x00\x00"
    frames = [eth(0x0800, bytes(ip)), eth(0x0800, bytes(ip))[:300]]
    cols = decode_all(frames)
    for k, frame in enumerate(frames):
        assert cols.row(k) == decode_packet(frame, 1).columns()
    assert cols.row(0)["err"] == 0 and cols.row(0)["payload_len"] == 2800
    assert cols.row(1)["payload_len"] == 300 - 14 - 20 - 20

    batch = batch_from_packets(frames)
    table = FlowTable(FlowOptions())
    table.observe(batch.ts_ns, batch.wirelens, cols, batch.count)
    assert table.active == 1

"""Per-frame oracle columns of a corpus capture, from tshark and from NetScope.

A *column* is one yes/no question asked of every frame ("is it an IPv4 frame?", "a SYN
without ACK?", "a DNS response?"). :func:`tshark_columns` answers them from tshark's per-frame
fields (tests/flows/frames.py runs tshark with the oracle's options and caches the result);
:func:`our_columns` from the decode kernel's columns and the readable decoder. The test in
tests/test_corpus_oracle_fields.py compares the two frame sets of every column.

The tshark side is checked against the stored oracle first (``*.expected.json``), so a change
in the tshark run (version, options) cannot quietly change what is compared: each column's
frame count equals the oracle's count, and its frame list where the oracle keeps one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.frames import TsharkFrame
from netscope.analysis import Analyzer
from netscope.constants import (
    ERR_BAD_IP_HEADER,
    ERR_BAD_IP_VERSION,
    ERR_BAD_TCP_HEADER,
    ERR_IPV6_EXT_LIMIT,
    ERR_TRUNC_IP,
    ERR_TRUNC_IPV6_EXT,
    ERR_TRUNC_L4,
    ERR_TRUNC_LINK,
    FRAG_MORE,
    FRAG_NONINITIAL,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    L3_IPV4,
    L3_IPV6,
    TCP_ACK,
    TCP_RST,
    TCP_SYN,
)
from netscope.decode import decode_packet
from netscope.sources import open_capture_file

# column -> (oracle count key or protocol_frames key, oracle frame_lists key or None)
COLUMNS: dict[str, tuple[str, str | None]] = {
    "ipv4": ("protocol_frames.ipv4", None),
    "ipv6": ("protocol_frames.ipv6", None),
    "vlan": ("protocol_frames.vlan", None),
    "tcp": ("protocol_frames.tcp", None),
    "udp": ("protocol_frames.udp", None),
    "icmp": ("protocol_frames.icmp", None),
    "icmpv6": ("protocol_frames.icmpv6", None),
    "syn": ("counts.tcp_syn_only", "tcp_syn_only"),
    "syn_ack": ("counts.tcp_syn_ack", None),
    "rst": ("counts.tcp_rst", None),
    "dns_query": ("counts.dns_queries", "dns_queries"),
    "dns_response": ("counts.dns_responses", None),
    "ipv4_fragment": ("counts.ipv4_fragment", "ipv4_fragment"),
    "ipv6_fragment": ("counts.ipv6_fragment_header", None),
    "short": ("counts.short_frames", "short_frames"),
    "malformed": ("counts.malformed_exception", "malformed_exception"),
}

# column -> layer name of the readable decoder (netscope.decode)
READABLE_LAYERS = {
    "ipv4": "IPv4",
    "ipv6": "IPv6",
    "tcp": "TCP",
    "udp": "UDP",
    "icmp": "ICMP",
    "icmpv6": "ICMPv6",
}

MALFORMED_ERRORS = {ERR_BAD_IP_VERSION, ERR_BAD_IP_HEADER, ERR_BAD_TCP_HEADER, ERR_IPV6_EXT_LIMIT}
SHORT_ERRORS = {ERR_TRUNC_LINK, ERR_TRUNC_IP, ERR_TRUNC_IPV6_EXT, ERR_TRUNC_L4}


def _tcp_flags(f: TsharkFrame) -> list[int]:
    return [int(v, 16) for v in f.fields.get("tcp.flags", [])]


def tshark_columns(frames: dict[int, TsharkFrame], exp: dict[str, Any]) -> dict[str, set[int]]:
    """Each column's frame set: the oracle's frame list where it keeps one, otherwise tshark's
    per-frame fields as its display filter would select them (a match in any layer). Checked
    against the oracle's count (and list) of every column."""
    out = live_columns(frames)
    for column, (count_key, list_key) in COLUMNS.items():
        section, key = count_key.split(".")
        want = exp.get(section, {}).get(key, 0)
        if list_key is not None:
            listed = set(exp["frame_lists"][list_key])
            assert len(listed) == want, column
            if column != "malformed":  # tshark's _ws.malformed also has reassembly errors
                assert out[column] == listed, column
            out[column] = listed
        assert len(out[column]) == want, (column, len(out[column]), want)
    return out


def live_columns(frames: dict[int, TsharkFrame]) -> dict[str, set[int]]:
    """Each column's frame set as tshark's display filters would select it (any layer)."""
    out: dict[str, set[int]] = {c: set() for c in COLUMNS}
    for n, f in frames.items():
        protos = set(f.protocols)
        flags = _tcp_flags(f)
        dns = f.fields.get("dns.flags.response", [])
        checks = {
            "ipv4": "ip" in protos,
            "ipv6": "ipv6" in protos,
            "vlan": "vlan" in protos,
            "tcp": "tcp" in protos,
            "udp": "udp" in protos,
            "icmp": "icmp" in protos,
            "icmpv6": "icmpv6" in protos,
            "syn": any(x & TCP_SYN and not x & TCP_ACK for x in flags),
            "syn_ack": any(x & TCP_SYN and x & TCP_ACK for x in flags),
            "rst": any(x & TCP_RST for x in flags),
            "dns_query": any(v in ("0", "False") for v in dns),
            "dns_response": any(v in ("1", "True") for v in dns),
            "ipv4_fragment": any(v in ("1", "True") for v in f.fields.get("ip.flags.mf", []))
            or any(v != "0" for v in f.fields.get("ip.frag_offset", [])),
            "ipv6_fragment": f.flag("ipv6.fragment"),
            "short": f.flag("_ws.short"),
            "malformed": f.flag("_ws.malformed"),
        }
        for column, hit in checks.items():
            if hit:
                out[column].add(n)
    return out


@dataclass
class OurFrame:
    number: int
    linktype: int
    columns: set[str]
    dns_name: str | None  # question name of a DNS query we decode
    err: int  # the decode kernel's error code
    layers: set[str]  # protocol columns by the readable decoder's (complete) layers


@functools.cache
def our_columns(path: Path) -> list[OurFrame]:
    """Each frame's columns by the decode kernel (flags, fragments, errors, layer 3) and the
    readable decoder (DNS, which the kernel does not parse)."""
    out: list[OurFrame] = []
    analyzer = Analyzer()
    reader = open_capture_file(path)
    try:
        for batch in reader.batches():
            cols = analyzer.process(batch)
            for i in range(batch.count):
                l3, err = int(cols.l3[i]), int(cols.err[i])
                flags = int(cols.tcp_flags[i])
                tcp = cols.proto[i] == IPPROTO_TCP and cols.l4_off[i] >= 0
                frag = int(cols.frag[i]) & (FRAG_MORE | FRAG_NONINITIAL)
                columns = {
                    name
                    for name, hit in {
                        "ipv4": l3 == L3_IPV4,
                        "ipv6": l3 == L3_IPV6,
                        "vlan": cols.vlan_count[i] > 0,
                        "tcp": tcp,
                        "udp": cols.proto[i] == IPPROTO_UDP and cols.l4_off[i] >= 0,
                        "icmp": l3 == L3_IPV4
                        and cols.proto[i] == IPPROTO_ICMP
                        and cols.l4_off[i] >= 0,
                        "icmpv6": l3 == L3_IPV6
                        and cols.proto[i] == IPPROTO_ICMPV6
                        and cols.l4_off[i] >= 0,
                        "syn": tcp and flags & TCP_SYN and not flags & TCP_ACK,
                        "syn_ack": tcp and flags & TCP_SYN and flags & TCP_ACK,
                        "rst": tcp and flags & TCP_RST,
                        "ipv4_fragment": l3 == L3_IPV4 and frag,
                        "ipv6_fragment": l3 == L3_IPV6 and frag,
                        "short": err in SHORT_ERRORS,
                        "malformed": err in MALFORMED_ERRORS,
                    }.items()
                    if hit
                }
                linktype = int(batch.linktypes[i])
                pkt = decode_packet(batch.packet_bytes(i), linktype)
                dns = pkt.layer("DNS")
                name = None
                if dns is not None:
                    columns.add("dns_response" if dns.values["qr"] else "dns_query")
                    if not dns.values["qr"]:
                        name = dns.values.get("qname")
                layers = {
                    column
                    for column, layer in READABLE_LAYERS.items()
                    if any(x.name == layer and not x.values.get("truncated") for x in pkt.layers)
                }
                out.append(OurFrame(batch.first_index + i, linktype, columns, name, err, layers))
    finally:
        reader.close()
    return out

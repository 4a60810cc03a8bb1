"""Flow table vs tshark's conversation tables, for every capture of the shared corpus.

tshark's ``-z conv,tcp`` / ``-z conv,udp`` rows (``conversations`` in each ``*.expected.json``)
count packets and bytes per direction, like NetScope's flows. Its definition of a conversation
differs from ours in a few principled ways; the functions below map tshark's figures onto our
definition, one documented rule each, so the comparison itself is exact equality (no
tolerances):

(a) :func:`tshark_flows` -- tshark keeps one row per TCP *stream*; we keep one flow per
    5-tuple. Rows of one 5-tuple are summed, oriented A/B the way we orient them.
(b) :func:`fragment_adjustments` -- tshark reassembles IP fragments and counts only the frame
    that completes a datagram (with that frame's length); we count the offset-0 fragment (the
    one carrying the transport header) with its own length and skip the others.
(c) :func:`tcp_header_exception_adjustments` -- a TCP header tshark cannot dissect (header
    longer than the segment, broken options) raises before its conversation tap runs, so
    tshark counts nothing for that frame; we only need the fixed header and count it.
(d) :data:`TUNNEL_INNER` -- tshark also reports conversations inside tunnels; we key every
    packet on its outer headers only.
(e) :func:`tracks_nothing` -- link types we do not decode give no flows at all.

Retransmission / out-of-order labels and RTT samples are compared frame by frame with
tshark's TCP analysis in tests/flows/test_tshark_frames.py.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netscope.analysis import Analyzer
from netscope.columns import DecodedColumns
from netscope.constants import (
    ERR_OK,
    FRAG_MORE,
    FRAG_NONINITIAL,
    IPPROTO_TCP,
    IPPROTO_UDP,
    L3_IPV4,
    SUPPORTED_LINKTYPES,
)
from netscope.flows.records import format_ip
from netscope.flows.table import FlowTable
from netscope.sources import open_capture_file

from .conftest import KEEP_ALL, flow_records

# (protocol, endpoint A ip, A port, endpoint B ip, B port), A the smaller (version, ip, port)
FlowKey = tuple[str, str, int, str, int]
# [packets a->b, bytes a->b, packets b->a, bytes b->a]
Counts = list[int]

PROTO_NAMES = {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp"}


# ---------------------------------------------------------------------------- keys


def canonical_key(proto: str, ip1: str, port1: int, ip2: str, port2: int) -> tuple[FlowKey, int]:
    """Our flow key for a packet/row from (ip1, port1) to (ip2, port2), and its direction.

    Direction 0 means ip1 is endpoint A (a->b), 1 means ip1 is endpoint B (b->a). Addresses are
    normalised through :mod:`ipaddress`, so tshark's text and ours compare equal.
    """
    a1, a2 = ipaddress.ip_address(ip1), ipaddress.ip_address(ip2)
    if (a1.version, int(a1), port1) <= (a2.version, int(a2), port2):
        return (proto, str(a1), port1, str(a2), port2), 0
    return (proto, str(a2), port2, str(a1), port1), 1


def add(
    flows: dict[FlowKey, Counts], key: FlowKey, direction: int, packets: int, nbytes: int
) -> None:
    counts = flows.setdefault(key, [0, 0, 0, 0])
    counts[2 * direction] += packets
    counts[2 * direction + 1] += nbytes


# ---------------------------------------------------------------------------- (a) tshark rows


def tshark_flows(exp: dict[str, Any]) -> dict[FlowKey, Counts]:
    """tshark's conversation rows, summed per 5-tuple and oriented like our flows.

    tshark starts a new row (a new TCP stream index) when a 4-tuple is reused after a closed
    session, and its A side is the source of the conversation's first frame; we keep one flow per
    5-tuple with A the smaller endpoint.
    """
    flows: dict[FlowKey, Counts] = {}
    for proto in ("tcp", "udp"):
        for row in exp.get("conversations", {}).get(proto, []):
            key, d = canonical_key(
                proto, row["addr_a"], row["port_a"], row["addr_b"], row["port_b"]
            )
            add(flows, key, d, row["packets_a_to_b"], row["bytes_a_to_b"])
            add(flows, key, 1 - d, row["packets_b_to_a"], row["bytes_b_to_a"])
    return flows


# ---------------------------------------------------------------------------- (d) tunnels

# Conversations tshark finds *inside* a tunnel. NetScope keys every packet on its outer IP and
# transport headers (SPEC §6), so these are not flows for us; the outer conversation (when the
# tunnel runs over UDP) is one, and is compared normally. Each entry was identified in the file
# itself (``tshark -T fields -e frame.protocols``).
TUNNEL_INNER: dict[str, dict[FlowKey, str]] = {
    # GRE (IP protocol 47) carrying IPv4: the outer packets have no TCP/UDP header at all, so we
    # track no flow here; all five of tshark's rows are the inner conversations.
    "zeek-gre-sample.pcap": {
        ("tcp", "66.59.111.190", 40264, "172.28.2.3", 22): "eth:ip:gre:ip:tcp:ssh",
        ("udp", "18.26.4.105", 123, "66.59.111.190", 123): "eth:ip:gre:ip:udp:ntp",
        ("udp", "66.59.111.182", 123, "66.59.111.190", 123): "eth:ip:gre:ip:udp:ntp",
        ("udp", "66.59.111.190", 123, "129.170.17.4", 123): "eth:ip:gre:ip:udp:ntp",
        ("udp", "66.59.111.190", 37675, "172.28.2.3", 53): "eth:ip:gre:ip:udp:dns",
    },
    # PPPoE -> IPv4 -> UDP/1701 (L2TP) -> PPP -> IPv6 -> TCP (frames 53-55 and on): we count
    # these frames in the outer L2TP UDP flow, which matches tshark's outer row.
    "dpkt-nb6-http.pcap": {
        (
            "tcp",
            "2606:f200:0:7:bad:f00d:d00d:1",
            80,
            "2a00:5e80:101:212d:504:7b1:2572:db22",
            37034,
        ): "eth:pppoes:ppp:ip:udp:l2tp:ppp:ipv6:tcp",
    },
    # Not listed because nothing to drop: zeek-Teredo.pcap (the Teredo-encapsulated IPv6 carries
    # only ICMPv6, no inner TCP/UDP), zeek-ping6-in-ipv4.pcap (IPv6-in-IPv4 carrying ICMPv6),
    # tcpdump-pptp.pcap (the GRE/PPP payload is not IP; the PPTP control connection is plain TCP).
}


def without_tunnel_inner(name: str, flows: dict[FlowKey, Counts]) -> dict[FlowKey, Counts]:
    """``flows`` minus tshark's inner-tunnel conversations of capture ``name``."""
    inner = TUNNEL_INNER.get(name, {})
    missing = set(inner) - set(flows)
    assert not missing, f"stale TUNNEL_INNER entries (tshark has no such row): {missing}"
    return {k: v for k, v in flows.items() if k not in inner}


# ---------------------------------------------------------------------------- (e) link types


def tracks_nothing(exp: dict[str, Any]) -> bool:
    """True for captures whose every link type is outside the ones we decode.

    zeek-radiotap.pcap (127, 802.11 radiotap) and pcpp-nflogPacket.pcap (239, NFLOG): tshark
    digs the IP packets out, we count those frames as "unsupported link type" (SPEC §3) and
    track no flow. A capture mixing supported and unsupported link types would need a per-frame
    rule; the corpus has none, and this function refuses to guess.
    """
    kinds = set(exp.get("link_types", []))
    supported = kinds & SUPPORTED_LINKTYPES
    assert not (supported and kinds - supported), "mixed link types: needs a per-frame rule"
    return bool(kinds) and not supported


# ---------------------------------------------------------------------------- one pass


@dataclass
class Frame:
    """What the mapping rules need to know about one frame (1-based ``number``)."""

    number: int
    wirelen: int
    data: bytes
    l3: int
    l3_off: int
    l4_off: int
    flow: tuple[FlowKey, int] | None  # (our key, direction) when we track this frame


@dataclass
class Scan:
    """Our flows for a capture plus the frames the mapping rules look at."""

    table: FlowTable
    flows: dict[FlowKey, Counts]
    fragments: list[Frame] = field(default_factory=list)  # IP fragments (not atomic ones)
    frames: dict[int, Frame] = field(default_factory=dict)  # frames asked for by number


def frame_flow(cols: DecodedColumns, i: int) -> tuple[FlowKey, int] | None:
    """(key, direction) of packet ``i`` if it creates/updates a flow, per our decoded columns.

    The same condition the observe kernel applies: decoded without error, IP, a transport header
    present (so never a non-initial fragment), TCP or UDP.
    """
    proto = int(cols.proto[i])
    if not (
        cols.err[i] == ERR_OK and cols.l3[i] != 0 and cols.l4_off[i] >= 0 and proto in PROTO_NAMES
    ):
        return None
    version = int(cols.l3[i])
    src = format_ip(version, int(cols.src_hi[i]), int(cols.src_lo[i]))
    dst = format_ip(version, int(cols.dst_hi[i]), int(cols.dst_lo[i]))
    return canonical_key(PROTO_NAMES[proto], src, int(cols.sport[i]), dst, int(cols.dport[i]))


def scan(path: Path, want: set[int]) -> Scan:
    """Run the capture through the analyzer and a fresh table; keep fragments and ``want``."""
    table = FlowTable(KEEP_ALL)
    analyzer = Analyzer()
    fragments: list[Frame] = []
    frames: dict[int, Frame] = {}
    reader = open_capture_file(path)
    try:
        for batch in reader.batches():
            cols = analyzer.process(batch)
            table.observe(batch.ts_ns, batch.wirelens, cols, batch.count)
            for i in range(batch.count):
                number = batch.first_index + i
                fragment = cols.l3[i] != 0 and cols.frag[i] & (FRAG_MORE | FRAG_NONINITIAL)
                if not fragment and number not in want:
                    continue
                frame = Frame(
                    number,
                    int(batch.wirelens[i]),
                    bytes(batch.packet_bytes(i)),
                    int(cols.l3[i]),
                    int(cols.l3_off[i]),
                    int(cols.l4_off[i]),
                    frame_flow(cols, i),
                )
                if fragment:
                    fragments.append(frame)
                if number in want:
                    frames[number] = frame
    finally:
        reader.close()
    flows: dict[FlowKey, Counts] = {}
    for r in flow_records(table):
        flows[(r.protocol, r.a_ip, r.a_port, r.b_ip, r.b_port)] = [
            r.packets_a_to_b,
            r.bytes_a_to_b,
            r.packets_b_to_a,
            r.bytes_b_to_a,
        ]
    return Scan(table, flows, fragments, frames)


# ---------------------------------------------------------------------------- (b) fragments


@dataclass
class Fragment:
    """One IP fragment: which datagram, which bytes of it."""

    datagram: tuple[Any, ...]  # (version, src, dst, id[, protocol]): the reassembly key
    protocol: int  # protocol of the fragmented payload (IPv4 header / IPv6 fragment header)
    offset: int  # bytes
    length: int  # fragment data bytes
    more: bool


def parse_fragment(f: Frame) -> Fragment:
    """Fragment fields straight from the frame's IPv4 header or IPv6 fragment header."""
    b, ip = f.data, f.l3_off
    if f.l3 == L3_IPV4:
        ihl = (b[ip] & 0x0F) * 4
        total, ident, flags_off = struct.unpack_from("!HHH", b, ip + 2)
        proto = b[ip + 9]
        key = (4, b[ip + 12 : ip + 16], b[ip + 16 : ip + 20], ident, proto)
        return Fragment(key, proto, (flags_off & 0x1FFF) * 8, total - ihl, bool(flags_off & 0x2000))
    # IPv6: walk hop-by-hop / routing / destination options / AH to the fragment header
    payload_len = struct.unpack_from("!H", b, ip + 4)[0]
    nh, pos = b[ip + 6], ip + 40
    while nh != 44:
        assert nh in (0, 43, 60, 51), f"frame {f.number}: no IPv6 fragment header"
        length = (b[pos + 1] + 2) * 4 if nh == 51 else (b[pos + 1] + 1) * 8
        nh, pos = b[pos], pos + length
    off_m, ident = struct.unpack_from("!HI", b, pos + 2)
    data_len = ip + 40 + payload_len - (pos + 8)
    key = (6, b[ip + 8 : ip + 24], b[ip + 24 : ip + 40], ident)
    return Fragment(key, b[pos], (off_m >> 3) * 8, data_len, bool(off_m & 1))


def covered(pieces: list[tuple[int, int]], total: int) -> bool:
    """Do the (offset, length) pieces cover bytes [0, total)?"""
    reach = 0
    for off, length in sorted(pieces):
        if off > reach:
            return False
        reach = max(reach, off + length)
    return reach >= total


def fragment_adjustments(fragments: list[Frame]) -> list[tuple[FlowKey, int, int, int, str]]:
    """Per fragmented TCP/UDP datagram: undo tshark's count, add ours.

    tshark (reassembly on) counts a datagram once, when its last missing fragment arrives, with
    that completing frame's wire length; a datagram that never completes is in no conversation.
    We count the offset-0 fragment, which carries the transport header, with its own length
    (SPEC §3: non-initial fragments are skipped for flow tracking) -- every copy of it, since we
    cannot tell a duplicated fragment from a new packet (pcpp-ip4_fragments.pcap sends several
    offset-0 fragments twice). The completing frame is the first one after which the fragments
    seen cover the whole datagram (end known from the fragment without "more fragments");
    copies arriving after that (frame 30 there) are counted by neither tool.

    Returns (key, direction, packets, bytes, reason) to add to tshark's figures.
    """
    datagrams: dict[tuple[Any, ...], list[tuple[Frame, Fragment]]] = {}
    for f in fragments:
        frag = parse_fragment(f)
        datagrams.setdefault(frag.datagram, []).append((f, frag))
    out = []
    for parts in datagrams.values():
        if parts[0][1].protocol not in PROTO_NAMES:
            continue  # not TCP/UDP: in no conversation of either tool
        firsts = [f for f, frag in parts if frag.offset == 0]  # duplicates happen
        completing = None
        pieces: list[tuple[int, int]] = []
        total = None
        for f, frag in parts:
            pieces.append((frag.offset, frag.length))
            if not frag.more:
                total = frag.offset + frag.length
            if total is not None and covered(pieces, total):
                completing = f
                break
        if not firsts:
            # no transport header anywhere: we skip every fragment, tshark cannot complete it
            assert completing is None
            continue
        flow = firsts[0].flow
        assert flow is not None, f"frame {firsts[0].number}: offset-0 fragment not tracked"
        key, d = flow
        if completing is not None:
            out.append(
                (
                    key,
                    d,
                    -1,
                    -completing.wirelen,
                    f"tshark counted reassembly completed by frame {completing.number}",
                )
            )
        for f in firsts:
            assert f.flow == flow
            out.append((key, d, 1, f.wirelen, f"we count offset-0 fragment {f.number}"))
    return out


# ---------------------------------------------------------------------------- (c) bad TCP header


def tcp_header_broken(f: Frame) -> bool:
    """Would tshark's TCP dissector throw inside this frame's header or options?

    Our decoder only needs the fixed 20 bytes; tshark dissects the whole header first and only
    then queues its conversation tap, so an exception there drops the frame from its tables.
    Broken means: the data offset reaches past the segment the IP header declares or past the
    captured bytes, an option runs past the header or has a length below 2, or a SACK option
    carries no complete block (an "empty SACK").
    """
    b, ip, l4 = f.data, f.l3_off, f.l4_off
    if f.l3 == L3_IPV4:
        ip_end = ip + struct.unpack_from("!H", b, ip + 2)[0]
    else:
        ip_end = ip + 40 + struct.unpack_from("!H", b, ip + 4)[0]
    hlen = (b[l4 + 12] >> 4) * 4
    end = l4 + hlen
    if end > ip_end or end > len(b):
        return True
    pos = l4 + 20
    while pos < end:
        kind = b[pos]
        if kind == 0:  # end of option list
            break
        if kind == 1:  # NOP
            pos += 1
            continue
        if pos + 1 >= end or b[pos + 1] < 2 or pos + b[pos + 1] > end:
            return True
        if kind == 5 and (b[pos + 1] < 10 or (b[pos + 1] - 2) % 8):
            return True
        pos += b[pos + 1]
    return False


def tcp_header_exception_adjustments(
    exp: dict[str, Any], frames: dict[int, Frame]
) -> list[tuple[FlowKey, int, int, int, str]]:
    """Frames tshark reports as malformed (an exception) in the TCP header: add our count.

    Only ``frame_lists.malformed_exception`` frames are considered, and only those whose TCP
    header is broken (:func:`tcp_header_broken`). A malformed frame whose exception is further
    in -- e.g. a bad DNS label in tcpdump-dns-badlabel.pcap frame 1 -- was already counted by
    tshark's UDP/TCP tap, which runs before the payload is dissected, and needs nothing.
    Occurrences: suricata-tcp-empty-sack.pcap frame 24 (SACK option of length 2) and
    ndpi-fuzz-2006-09-29-28586.pcap frames 27, 80 (data offset 40 in a 20-byte segment) and 111
    (IP total length leaves 15 bytes for a 20-byte TCP header).
    """
    out = []
    for number in exp.get("frame_lists", {}).get("malformed_exception", []):
        f = frames[number]
        if f.flow is None or f.flow[0][0] != "tcp" or not tcp_header_broken(f):
            continue
        key, d = f.flow
        out.append((key, d, 1, f.wirelen, f"frame {number}: exception in the TCP header"))
    return out


# ---------------------------------------------------------------------------- the mapping


def expected_flows(name: str, exp: dict[str, Any], ours: Scan) -> dict[FlowKey, Counts]:
    """tshark's conversations mapped onto our flow definition (rules (a)-(e) above)."""
    if tracks_nothing(exp):
        return {}
    flows = without_tunnel_inner(name, tshark_flows(exp))
    adjustments = fragment_adjustments(ours.fragments)
    adjustments += tcp_header_exception_adjustments(exp, ours.frames)
    for key, d, packets, nbytes, why in adjustments:
        add(flows, key, d, packets, nbytes)
        assert min(flows[key]) >= 0, f"{key}: negative after '{why}'"
    return {k: v for k, v in flows.items() if any(v)}


def malformed_frames(exp: dict[str, Any]) -> set[int]:
    return set(exp.get("frame_lists", {}).get("malformed_exception", []))


def test_flow_counts_equal_tshark_conversations(
    corpus_capture: Path, oracle: Callable[[Path], dict[str, Any]]
) -> None:
    """Per flow, packets and bytes in each direction equal tshark's mapped figures exactly."""
    exp = oracle(corpus_capture)
    if not exp["readable"]:
        # tshark refused the file and so does our reader (tests/test_corpus.py checks that)
        assert not tshark_flows(exp)
        return
    ours = scan(corpus_capture, malformed_frames(exp))
    want = expected_flows(corpus_capture.name, exp, ours)
    only_ours = {k: ours.flows[k] for k in ours.flows.keys() - want.keys()}
    only_theirs = {k: want[k] for k in want.keys() - ours.flows.keys()}
    differ = {
        k: (ours.flows[k], want[k])
        for k in ours.flows.keys() & want.keys()
        if ours.flows[k] != want[k]
    }
    assert not (only_ours or only_theirs or differ), (
        f"only ours: {only_ours}\nonly tshark: {only_theirs}\n(ours, tshark) differ: {differ}"
    )


# ---------------------------------------------------------------------------- the mapping itself

# Files where a rule changes something, and what it must change: a guard against a rule that
# silently stops applying (e.g. a decoder change that stops flagging fragments).
RULES_APPLY = {
    "pcpp-frag_http_req.pcap": "fragments",
    "pcpp-ip4_fragments.pcap": "fragments",
    "pcpp-ip6_fragments.pcap": "fragments",
    "zeek-dns-edns-ecs.pcap": "fragments",
    "suricata-tcp-empty-sack.pcap": "tcp-header",
    "ndpi-fuzz-2006-09-29-28586.pcap": "tcp-header",
    "zeek-gre-sample.pcap": "tunnel",
    "dpkt-nb6-http.pcap": "tunnel",
    "zeek-radiotap.pcap": "link-type",
    "pcpp-nflogPacket.pcap": "link-type",
}


@pytest.mark.parametrize("name", sorted(RULES_APPLY))
def test_mapping_rules_are_exercised(
    name: str, corpus: Callable[[str], Path], oracle: Callable[[Path], dict[str, Any]]
) -> None:
    path = corpus(name)
    exp = oracle(path)
    ours = scan(path, malformed_frames(exp))
    rule = RULES_APPLY[name]
    if rule == "fragments":
        assert any(n for _, _, n, _, _ in fragment_adjustments(ours.fragments))
    elif rule == "tcp-header":
        assert tcp_header_exception_adjustments(exp, ours.frames)
    elif rule == "tunnel":
        assert TUNNEL_INNER[name].keys() <= tshark_flows(exp).keys()
    else:
        assert tracks_nothing(exp) and tshark_flows(exp) and not ours.flows
    # and without the rule the comparison would fail: the rule is not a no-op
    assert tshark_flows(exp) != ours.flows


def test_fragment_rule_on_known_datagrams(
    corpus: Callable[[str], Path], oracle: Callable[[Path], dict[str, Any]]
) -> None:
    """pcpp-frag_with_padding.pcap: the offset-0 fragment arrives last and completes the
    datagram, so both tools count that same frame (the adjustments cancel out)."""
    path = corpus("pcpp-frag_with_padding.pcap")
    ours = scan(path, set())
    adj = fragment_adjustments(ours.fragments)
    assert len(adj) == 2
    assert sum(a[2] for a in adj) == 0 and sum(a[3] for a in adj) == 0
    assert ours.flows == tshark_flows(oracle(path))


def test_malformed_payload_is_counted_by_both(
    corpus: Callable[[str], Path], oracle: Callable[[Path], dict[str, Any]]
) -> None:
    """tcpdump-dns-badlabel.pcap frame 1 is malformed in its DNS payload: tshark still counts it
    in the UDP conversation, and so do we (no adjustment)."""
    path = corpus("tcpdump-dns-badlabel.pcap")
    exp = oracle(path)
    assert malformed_frames(exp) == {1}
    ours = scan(path, {1})
    assert ours.frames[1].flow is not None
    assert not tcp_header_exception_adjustments(exp, ours.frames)
    assert ours.flows == tshark_flows(exp)

"""The rest of the tshark oracle, frame by frame, on every corpus capture.

Each ``*.expected.json`` holds more than conversations: layer-3 frame counts, SYN / SYN-ACK /
RST counts, DNS queries (with their names) and responses, IPv4 / IPv6 fragment frames, short
(snaplen-cut) and malformed frames. Each is a *column* of :mod:`corpus_columns`: one yes/no
question per frame, answered by tshark (its frame lists in the oracle, or its per-frame fields
from a live run whose counts must equal the oracle's) and by NetScope (decode kernel columns;
the readable decoder for DNS).

Every frame where the two answers differ is sorted into a class by :func:`classify`, whose rules
are checks on the frame itself (tshark's protocol stack, our link type and decode error); a
frame no rule explains is class ``"unexplained"``, which no capture may have. The classes found
must equal :data:`PINNED` exactly, per (column, class): a new difference or a vanished one fails.
Exclusions are therefore per frame and per column, never per file. The one column left out
entirely is tshark's ``malformed_reassembly_error`` (TCP reassembly errors; NetScope reassembles
no TCP stream), and the one file is the one neither tool can open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corpus_columns import (
    COLUMNS,
    READABLE_LAYERS,
    SHORT_ERRORS,
    OurFrame,
    live_columns,
    our_columns,
    tshark_columns,
)
from flows.frames import TSHARK, F, TsharkFrame, prefetch_tshark, tshark_frames
from netscope.constants import ERR_BAD_IP_VERSION, ERR_OK, ERR_TRUNC_L4, SUPPORTED_LINKTYPES

pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")

CLASSES = {
    "link_type": "a link type we do not decode (SPEC §3): tshark digs out IP, we count the frame "
    "as unsupported",
    "tunnel": "the layer is inside a tunnel (IP-in-IP, GRE, Teredo, L2TP); we decode and key on "
    "the outer headers",
    "icmp_quote": "a header quoted inside an ICMP/ICMPv6 error: tshark dissects the quote "
    "(TCP/UDP/DNS), we decode a packet's own headers (the quote is shown, never counted)",
    "not_udp53": "DNS over TCP, mDNS (5353) or LLMNR (5355): tshark's DNS dissector, our DNS "
    "parser is for UDP port 53 only (the oracle's own dns_queries_udp53 says the same)",
    "fragment": "a fragmented datagram: tshark dissects its transport header (and DNS) in the "
    "frame that completes reassembly, we in the offset-0 fragment (the one that carries it)",
    "cut_transport": "a transport header cut short: tshark still shows the layer, for us it is "
    "a truncated header (ERR_TRUNC_L4), not a TCP/UDP frame",
    "bad_version": "IPv4 with a wrong version nibble (fuzzed): tshark still dissects it as IP and "
    "flags an expert warning, we reject it (ERR_BAD_IP_VERSION, which we count as malformed)",
    "beyond_our_headers": "tshark's exception lies past what we decode: TCP options (empty "
    "SACK), a TCP data offset or IP length the fixed 20-byte header does not need, a DNS label, "
    "an MLDv2 body, a GRE header (a protocol we do not decode)",
    "cut_vs_malformed": "headers cut by the IP length or the frame end (not by the snaplen): "
    "tshark raises a malformed-packet exception, we report a truncated header (short)",
    "no_transport": "the IP header ends the frame although its length promises a transport "
    "header: we report the transport header truncated, tshark silently dissects nothing more",
    "payload_cut": "snaplen cut inside a payload tshark dissects (TLS, X11, ...); we read no "
    "payload, so nothing is short for us",
    "reassembly_field": "the oracle's ipv6_fragment_header filter (`ipv6.fragment`) is tshark's "
    "reassembled-fragment list, set only in the frame completing a reassembly; we flag every "
    "frame with a fragment header",
}


def _tunnelled(f: TsharkFrame, layer: str) -> bool:
    """Two IP layers before ``layer`` (and before any ICMP error) in tshark's protocol stack."""
    stack = f.protocols
    if layer in stack:
        stack = stack[: stack.index(layer) + 1]
    for quote in ("icmp", "icmpv6"):  # an IP header quoted in an ICMP error is no tunnel
        if quote in stack:
            stack = stack[: stack.index(quote)]
    ips = [p for p in stack if p in ("ip", "ipv6")]
    return len(ips) > 1


LAYER_OF = {"ipv4": "ip", "syn": "tcp", "syn_ack": "tcp", "rst": "tcp"}
LAYER_COLUMNS = ("ipv4", "ipv6", "vlan", "tcp", "udp", "icmp", "icmpv6", "syn", "syn_ack", "rst")
TRANSPORT = ("tcp", "udp", "icmp", "icmpv6", "syn", "syn_ack", "rst")


def _after_icmp(stack: tuple[str, ...], layer: str) -> bool:
    """Does ``layer`` first occur after an ICMP/ICMPv6 layer (in a quoted datagram)?"""
    if layer not in stack:
        return False
    before = stack[: stack.index(layer)]
    return "icmp" in before or "icmpv6" in before


def classify(column: str, side: str, t: TsharkFrame | None, ours: OurFrame, err: int) -> str:
    """Why ``column`` differs on this frame; ``side`` says who has it ("tshark" / "ours")."""
    stack = t.protocols if t else ()
    fragment = bool({"ipv4_fragment", "ipv6_fragment"} & ours.columns)
    if side == "tshark":
        if ours.linktype not in SUPPORTED_LINKTYPES:
            return "link_type"
        if column in LAYER_COLUMNS and t is not None:
            layer = LAYER_OF.get(column, column)
            if column in ("ipv4", "ipv6") and err == ERR_BAD_IP_VERSION:
                return "bad_version"
            if _tunnelled(t, layer):
                return "tunnel"
            if _after_icmp(stack, layer):
                return "icmp_quote"
            if column in TRANSPORT and fragment:
                return "fragment"
            if column in TRANSPORT and err in SHORT_ERRORS:
                return "cut_transport"
        if column.startswith("dns_") and t is not None:
            dns_layer = next((p for p in ("dns", "mdns", "llmnr") if p in stack), "dns")
            before = stack[: stack.index(dns_layer)] if dns_layer in stack else stack
            if _tunnelled(t, dns_layer):
                return "tunnel"
            if "icmp" in before or "icmpv6" in before:
                return "icmp_quote"
            if dns_layer != "dns" or "tcp" in before:
                return "not_udp53"
            if fragment:
                return "fragment"
        if column == "malformed":
            if err in SHORT_ERRORS:
                return "cut_vs_malformed"
            return "beyond_our_headers" if err == ERR_OK else "unexplained"
        if column == "short" and err == ERR_OK:
            return "payload_cut"
    else:
        if column == "malformed" and err == ERR_BAD_IP_VERSION:
            return "bad_version"
        if column == "short" and t is not None and t.flag("_ws.malformed"):
            return "cut_vs_malformed"
        if column == "short" and err == ERR_TRUNC_L4 and t and t.protocols[-1] in ("ip", "ipv6"):
            return "no_transport"
        if column == "ipv6_fragment":
            return "reassembly_field"
        if (column.startswith("dns_") or column in TRANSPORT) and fragment:
            return "fragment"
    return "unexplained"


# (column, side that has the frame, class) -> frames, per capture
Pin = dict[tuple[str, str, str], frozenset[int]]
# The class of every frame is computed by classify() from the frame itself; this table pins
# which frames there are, so a change on either side shows. Notable files: dpkt-nb6-http
# (PPPoE -> IPv4 -> L2TP -> PPP -> IPv6 in frames 19, 53-62; frame 34 an ICMP error quoting
# DNS), zeek-gre-sample (everything inside GRE), pcpp-ip4_fragments (offset-0 fragments sent
# twice: we count each copy), suricata-decode-too-small (headers cut by the frame end, GRE in
# frames 4 and 8), ndpi-fuzz (IPv4 version nibbles fuzzed in frames 76, 91; TCP data offset or
# IP length wrong in 27, 80, 111).
PINNED: dict[str, Pin] = {
    "dpkt-nb6-http.pcap": {
        ("dns_response", "tshark", "icmp_quote"): F("34"),
        ("icmpv6", "tshark", "tunnel"): F("19"),
        ("ipv6", "tshark", "tunnel"): F("19 53-62"),
        ("syn", "tshark", "tunnel"): F("53"),
        ("syn_ack", "tshark", "tunnel"): F("54"),
        ("tcp", "tshark", "tunnel"): F("53-62"),
        ("udp", "tshark", "icmp_quote"): F("34"),
    },
    "ndpi-fuzz-2006-09-29-28586.pcap": {
        ("ipv4", "tshark", "bad_version"): F("76 91"),
        ("malformed", "ours", "bad_version"): F("76 91"),
        ("malformed", "tshark", "beyond_our_headers"): F("27 80 111"),
    },
    "pcpp-DnsPackets.pcap": {
        ("dns_query", "tshark", "not_udp53"): F("21-25 28-31 34-37 418-420 423-428"),
        ("dns_response", "tshark", "not_udp53"): F("421-422 429-438 463-464"),
    },
    "pcpp-IcmpPackets.pcapng": {
        ("tcp", "tshark", "icmp_quote"): F("13"),
        ("udp", "tshark", "icmp_quote"): F("5-6"),
    },
    "pcpp-frag_http_req.pcap": {
        ("tcp", "ours", "fragment"): F("1"),
        ("tcp", "tshark", "fragment"): F("11"),
    },
    "pcpp-ip4_fragments.pcap": {
        ("udp", "ours", "fragment"): F("1 7 13 19-20 31-32 43-44"),
        ("udp", "tshark", "fragment"): F("6 12 18 28 40 53"),
    },
    "pcpp-ip6_fragments.pcap": {
        ("dns_query", "tshark", "not_udp53"): F("7"),
        ("dns_response", "tshark", "not_udp53"): F("20"),
        ("ipv6_fragment", "ours", "reassembly_field"): F("1-6 8-19 21-28 30-35"),
        ("udp", "ours", "fragment"): F("1 8 21 30"),
        ("udp", "tshark", "fragment"): F("7 20 29 36"),
    },
    "pcpp-nflogPacket.pcap": {
        ("dns_query", "tshark", "link_type"): F("1"),
        ("ipv4", "tshark", "link_type"): F("1"),
        ("udp", "tshark", "link_type"): F("1"),
    },
    "pcpp-pcapng-example.pcapng": {
        ("short", "tshark", "payload_cut"): F(
            "61-62 66 70-71 74 76 89 92 97-98 105-106 108 110 112-114 116 120 122 125 127 131"
            " 134 137 139 143 146 159"
        ),
    },
    "pcpp-sll.pcap": {
        ("dns_query", "tshark", "not_udp53"): F("13-14"),
    },
    "suricata-decode-too-small.pcap": {
        ("malformed", "tshark", "beyond_our_headers"): F("4 8"),
        ("malformed", "tshark", "cut_vs_malformed"): F("3 5-7"),
        ("short", "ours", "cut_vs_malformed"): F("3 5-7"),
        ("short", "ours", "no_transport"): F("1-2"),
        ("tcp", "tshark", "cut_transport"): F("5"),
        ("udp", "tshark", "cut_transport"): F("3 6-7"),
    },
    "suricata-tcp-empty-sack.pcap": {
        ("malformed", "tshark", "beyond_our_headers"): F("24"),
    },
    "tcpdump-dns-badlabel.pcap": {
        ("malformed", "tshark", "beyond_our_headers"): F("1"),
    },
    "tcpdump-dns_tcp.pcap": {
        ("dns_query", "tshark", "not_udp53"): F("4"),
        ("dns_response", "tshark", "not_udp53"): F("6"),
    },
    "tcpdump-ipv6-srh-ext-header.pcap": {
        ("icmpv6", "tshark", "tunnel"): F("1"),
    },
    "zeek-Teredo.pcap": {
        ("icmpv6", "tshark", "tunnel"): F("6-7 30"),
        ("ipv6", "tshark", "tunnel"): F("6-7 30-31"),
    },
    "zeek-communityid-icmp6.pcap": {
        ("dns_response", "tshark", "icmp_quote"): F("35"),
        ("udp", "tshark", "icmp_quote"): F("11-22 35"),
    },
    "zeek-dns-edns-ecs.pcap": {
        ("dns_query", "tshark", "not_udp53"): F("88"),
        ("dns_response", "ours", "fragment"): F("53 58 62 84"),
        ("dns_response", "tshark", "fragment"): F("54 59 63 85"),
        ("dns_response", "tshark", "not_udp53"): F("11 13 15 18 25-27 89"),
        ("udp", "ours", "fragment"): F("53 58 62 84"),
        ("udp", "tshark", "fragment"): F("54 59 63 85"),
    },
    "zeek-dns-mdns.pcap": {
        ("dns_query", "tshark", "not_udp53"): F("1-2 9-14 17-18 21-22"),
        ("dns_response", "tshark", "not_udp53"): F("3-4 19-20 23-24"),
    },
    "zeek-gre-sample.pcap": {
        ("dns_query", "tshark", "tunnel"): F("33-36"),
        ("icmp", "tshark", "tunnel"): F("1-8 34 36"),
        ("syn", "tshark", "tunnel"): F("11"),
        ("syn_ack", "tshark", "tunnel"): F("12"),
        ("tcp", "tshark", "tunnel"): F("11-32"),
        ("udp", "tshark", "tunnel"): F("9-10 33-40"),
    },
    "zeek-icmp-destunreach-udp.pcap": {
        ("dns_response", "tshark", "icmp_quote"): F("1"),
        ("udp", "tshark", "icmp_quote"): F("1"),
    },
    "zeek-icmp6-mldv2.pcap": {
        ("malformed", "tshark", "beyond_our_headers"): F("3 5"),
    },
    "zeek-ping6-in-ipv4.pcap": {
        ("icmpv6", "tshark", "tunnel"): F("1-10"),
        ("ipv6", "tshark", "tunnel"): F("1-10"),
    },
    "zeek-radiotap.pcap": {
        ("dns_query", "tshark", "link_type"): F("1"),
        ("dns_response", "tshark", "link_type"): F("2-3"),
        ("ipv4", "tshark", "link_type"): F("1-2"),
        ("ipv6", "tshark", "link_type"): F("3"),
        ("udp", "tshark", "link_type"): F("1-3"),
    },
    "zeek-tcp-timestamp.pcap": {
        ("short", "tshark", "payload_cut"): F("85 119 147"),
    },
}


@pytest.fixture(scope="session")
def tshark_ready() -> None:
    """Run tshark over the whole corpus up front, a few files at a time (or load its cache)."""
    from corpus_support import corpus_files, expected

    prefetch_tshark([p for p in corpus_files() if expected(p)["readable"]])


def differences(path: Path, exp: dict[str, Any]) -> Pin:
    theirs = tshark_frames(path)
    t_cols = tshark_columns(theirs, exp)
    ours = our_columns(path)
    out: dict[tuple[str, str, str], set[int]] = {}
    for column in COLUMNS:
        mine = {f.number for f in ours if column in f.columns}
        for side, frames in (("tshark", t_cols[column] - mine), ("ours", mine - t_cols[column])):
            for n in frames:
                cls = classify(column, side, theirs.get(n), ours[n - 1], ours[n - 1].err)
                out.setdefault((column, side, cls), set()).add(n)
    return {k: frozenset(v) for k, v in out.items()}


def test_oracle_columns_per_frame(
    corpus_capture: Path, oracle: Callable[[Path], dict[str, Any]], tshark_ready: None
) -> None:
    """Every column's frame set equals tshark's, except the pinned, classified frames."""
    exp = oracle(corpus_capture)
    if not exp["readable"]:
        pytest.skip("unreadable for both tools (tests/test_corpus.py checks the error)")
    got = differences(corpus_capture, exp)
    want = PINNED.get(corpus_capture.name, {})
    assert not [k for k in got if k[2] == "unexplained"], got
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    for _column, _side, cls in want:
        assert cls in CLASSES


def test_dns_query_names(
    corpus_capture: Path, oracle: Callable[[Path], dict[str, Any]], tshark_ready: None
) -> None:
    """Per frame, the question name we decode equals tshark's; and our set of names is the
    oracle's ``dns_query_names`` minus the names of the pinned tshark-only query frames."""
    exp = oracle(corpus_capture)
    if not exp["readable"]:
        pytest.skip("unreadable for both tools")
    assert not exp["dns_query_names_truncated"]
    theirs = tshark_frames(corpus_capture)
    queries = live_columns(theirs)["dns_query"]
    t_names = {n: theirs[n].fields["dns.qry.name"][0] for n in queries}
    # the oracle keeps the first question name of every query frame
    assert set(t_names.values()) == set(exp["dns_query_names"])
    # tshark spells the root name "<Root>", our decoder "<root>" (tcpdump-dns-badcookie)
    ours = {
        f.number: "<Root>" if f.dns_name == "<root>" else f.dns_name
        for f in our_columns(corpus_capture)
        if f.dns_name is not None
    }
    for n, name in ours.items():
        assert name == t_names[n], n
    pinned = PINNED.get(corpus_capture.name, {})
    only_theirs = frozenset().union(
        *(v for (c, side, _), v in pinned.items() if c == "dns_query" and side == "tshark")
    )
    assert set(ours) == set(t_names) - only_theirs
    assert set(ours.values()) == {n for f, n in t_names.items() if f not in only_theirs}


def test_malformed_reassembly_is_tcp_reassembly_only(
    corpus_capture: Path, oracle: Callable[[Path], dict[str, Any]]
) -> None:
    """The column left out: tshark's malformed frames that are not exceptions are TCP
    reassembly errors (overlapping retransmitted data), which only a stream reassembler has."""
    exp = oracle(corpus_capture)
    if not exp["readable"]:
        pytest.skip("unreadable for both tools")
    lists = exp["frame_lists"]
    not_exceptions = set(lists["malformed"]) - set(lists["malformed_exception"])
    other = PAYLOAD_DISSECTOR_MALFORMED.get(corpus_capture.name, frozenset())
    assert other <= not_exceptions
    assert len(not_exceptions - other) == exp["counts"]["malformed_reassembly_error"]


# Malformed frames that are neither exceptions nor reassembly errors: a payload dissector
# gave up (pcpp-example2 frame 1203: "HTTP body subdissector failed"). We dissect no HTTP.
PAYLOAD_DISSECTOR_MALFORMED = {"pcpp-example2.pcap": frozenset({1203})}


def test_readable_decoder_layers_equal_the_kernel_columns(
    corpus_capture: Path, oracle: Callable[[Path], dict[str, Any]]
) -> None:
    """The readable decoder (what tests/decode/test_corpus_decode.py counts) finds the same
    IPv4 / IPv6 / TCP / UDP / ICMP / ICMPv6 frames as the decode kernel, frame by frame, so
    the per-frame comparison above covers its protocol counts too. Only the fuzzed IPv4
    version nibbles differ: the readable decoder keeps the header it rejected as a layer."""
    if not oracle(corpus_capture)["readable"]:
        pytest.skip("unreadable for both tools")
    differ = {
        f.number
        for f in our_columns(corpus_capture)
        if f.layers != f.columns & set(READABLE_LAYERS)
    }
    bad_version = {f.number for f in our_columns(corpus_capture) if f.err == ERR_BAD_IP_VERSION}
    assert differ == bad_version
    assert bad_version == (
        F("76 91") if corpus_capture.name.startswith("ndpi-fuzz-2006") else set()
    )

"""A plain dpkt flow-aggregation loop: the Python baseline of the side-by-side comparison.

Reads a pcap (or pcapng) with dpkt, and for every TCP or UDP packet over IPv4 or IPv6 counts
packets and bytes per direction of its canonical 5-tuple, then prints the conversation table
(busiest first). It is what a short script written with a well-known packet library does, so
``benchmarks.compare`` times it against NetScope on the same traces.

Flow keys follow NetScope's rule (docs/flow-tracking.md): endpoint A is the smaller of the two
(IP version, address, port), so both directions of a conversation land in one row; a packet
from A is ``a->b``. Non-initial IP fragments carry no transport header and are skipped, as
NetScope does. Bytes are the captured frame length (dpkt's pcap reader does not expose the
record's original length); on untruncated traces, such as the generated benchmark traces,
that is the wire length NetScope counts.

    python -m benchmarks.dpkt_flows TRACE.pcap [--top N]
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import dpkt

# (protocol, A ip, A port, B ip, B port); A is the smaller (version, address, port)
FlowKey = tuple[str, str, int, str, int]
# [packets a->b, bytes a->b, packets b->a, bytes b->a]
Counts = list[int]

_PROTOS = {dpkt.ip.IP_PROTO_TCP: "tcp", dpkt.ip.IP_PROTO_UDP: "udp"}


def _frames(f: BinaryIO) -> Iterator[bytes]:
    """Ethernet frames of a pcap or pcapng file, in file order."""
    magic = f.read(4)
    f.seek(0)
    pcapng = magic == b"\x0a\x0d\x0d\x0a"  # the section header block's type
    reader = dpkt.pcapng.Reader(f) if pcapng else dpkt.pcap.Reader(f)
    if reader.datalink() != dpkt.pcap.DLT_EN10MB:
        raise ValueError(f"link type {reader.datalink()} is not Ethernet")
    for _ts, buf in reader:
        yield buf


def aggregate(path: str | Path) -> dict[FlowKey, Counts]:
    """Per-flow [packets a->b, bytes a->b, packets b->a, bytes b->a] of a capture."""
    flows: dict[FlowKey, Counts] = {}
    with open(path, "rb") as f:
        for buf in _frames(f):
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except (dpkt.UnpackError, IndexError):
                continue
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP):
                if ip.offset != 0:  # a non-initial fragment: no transport header
                    continue
                family, version = socket.AF_INET, 4
            elif isinstance(ip, dpkt.ip6.IP6):
                family, version = socket.AF_INET6, 6
            else:
                continue
            l4 = ip.data
            proto = _PROTOS.get(ip.p)  # IPv6: dpkt sets p past the extension headers
            if proto is None or not isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP):
                continue
            # bytes compare like the integers they encode (same length, big-endian)
            src = (version, ip.src, l4.sport)
            dst = (version, ip.dst, l4.dport)
            forward = src <= dst
            a, b = (src, dst) if forward else (dst, src)
            key = (
                proto,
                socket.inet_ntop(family, a[1]),
                a[2],
                socket.inet_ntop(family, b[1]),
                b[2],
            )
            counts = flows.get(key)
            if counts is None:
                counts = flows[key] = [0, 0, 0, 0]
            if forward:
                counts[0] += 1
                counts[1] += len(buf)
            else:
                counts[2] += 1
                counts[3] += len(buf)
    return flows


def format_table(flows: dict[FlowKey, Counts], top: int = 0) -> str:
    """The conversation table, busiest (bytes) first; ``top`` > 0 keeps that many rows."""
    rows = sorted(flows.items(), key=lambda kv: kv[1][1] + kv[1][3], reverse=True)
    if top > 0:
        rows = rows[:top]
    lines = [
        f"{'proto':<5} {'endpoint A':<46} {'endpoint B':<46} "
        f"{'pkts A->B':>10} {'bytes A->B':>12} {'pkts B->A':>10} {'bytes B->A':>12}"
    ]
    for (proto, a_ip, a_port, b_ip, b_port), (pab, bab, pba, bba) in rows:
        a = f"{a_ip}:{a_port}" if ":" not in a_ip else f"[{a_ip}]:{a_port}"
        b = f"{b_ip}:{b_port}" if ":" not in b_ip else f"[{b_ip}]:{b_port}"
        lines.append(f"{proto:<5} {a:<46} {b:<46} {pab:>10} {bab:>12} {pba:>10} {bba:>12}")
    packets = sum(c[0] + c[2] for c in flows.values())
    lines.append(f"{len(flows)} conversations, {packets} TCP/UDP packets")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--top", type=int, default=0, help="print only the N busiest flows")
    args = parser.parse_args(argv)
    print(format_table(aggregate(args.trace), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())

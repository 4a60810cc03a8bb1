"""Command line for the trace generator: ``python -m netscope.gen OUT.pcap ...``.

Examples::

    python -m netscope.gen demo.pcap --packets 3000 --flows 150 --seed 7
    python -m netscope.gen bench.pcap --packets 2000000 --flows 20000 --seed 1 --small
    python -m netscope.gen flood.pcap --scenario syn-flood --target 198.18.0.10 \\
        --target-port 80 --sources 300 --syns 5000 --duration 2
    python -m netscope.gen scan.pcap --scenario port-scan --scanner 10.9.9.9 \\
        --targets 198.18.0.10 --ports 1-1024 --rate 2000

Exit codes follow the product's: 0 success, 1 I/O failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from collections.abc import Sequence

from netscope.gen.traffic import (
    BASE_TS_NS,
    generate,
    port_scan,
    syn_flood,
)


def _ports(text: str) -> list[int]:
    """Parse ``"22,80,8000-8100"`` into a list of ports."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            out.extend(range(lo, hi + 1))
        else:
            out.append(int(part))
    if not out or any(not 0 <= p <= 65535 for p in out):
        raise argparse.ArgumentTypeError(f"bad port list {text!r}")
    return out


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not within [0, 1]")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    p = argparse.ArgumentParser(
        prog="python -m netscope.gen",
        description="Write a deterministic synthetic pcap (same arguments, same bytes).",
    )
    p.add_argument("out", metavar="OUT.pcap", help="output file (classic pcap, Ethernet)")
    p.add_argument("--scenario", choices=("traffic", "syn-flood", "port-scan"),
                   default="traffic", help="what to generate (default: mixed traffic)")  # fmt: skip
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")

    g = p.add_argument_group("traffic")
    g.add_argument(
        "--packets",
        type=_positive,
        default=10_000,
        metavar="N",
        help="exact packet count (default 10000)",
    )
    g.add_argument("--flows", type=_positive, default=500, metavar="N",
                   help="number of conversations (default 500)")  # fmt: skip
    g.add_argument("--small", action="store_true", help="1-64 byte payloads (pps benchmarks)")
    g.add_argument("--mss", type=int, metavar="BYTES",
                   help="TCP MSS, 64-1460 (default 1460, 1440 for IPv6)")  # fmt: skip
    g.add_argument(
        "--v6-fraction",
        type=_fraction,
        default=0.2,
        metavar="F",
        help="share of conversations over IPv6 (default 0.2)",
    )
    g.add_argument(
        "--udp-fraction",
        type=_fraction,
        default=0.2,
        metavar="F",
        help="share of conversations over UDP (default 0.2)",
    )
    g.add_argument(
        "--vlan-fraction",
        type=_fraction,
        default=0.02,
        metavar="F",
        help="share of conversations with VLAN tags (default 0.02)",
    )
    g.add_argument(
        "--retrans-rate",
        type=_fraction,
        default=0.01,
        metavar="P",
        help="per data segment retransmission probability (default 0.01)",
    )
    g.add_argument("--ooo-rate", type=_fraction, default=0.01, metavar="P",
                   help="per data segment out-of-order probability (default 0.01)")  # fmt: skip
    g.add_argument("--truth-json", metavar="PATH", help="write the ground truth as JSON")

    a = p.add_argument_group("scenarios (both)")
    a.add_argument("--start-offset", type=float, default=0.0, metavar="SECS",
                   help="first packet this long after 2024-01-01T00:00:00Z")  # fmt: skip
    a.add_argument("--v6", action="store_true", help="IPv6 addresses (defaults change too)")

    f = p.add_argument_group("syn-flood")
    f.add_argument("--target", help="target address (default 198.18.0.10 / 2001:db8:2::10)")
    f.add_argument("--target-port", type=int, default=80)
    f.add_argument("--sources", type=_positive, default=200, help="distinct spoofed sources")
    f.add_argument("--syns", type=_positive, default=2000, help="number of SYNs")
    f.add_argument("--duration", type=float, default=1.0, metavar="SECS")

    s = p.add_argument_group("port-scan")
    s.add_argument("--scanner", help="scanner address (default 10.66.0.1 / 2001:db8:66::1)")
    s.add_argument("--targets", help="comma-separated targets (default: the --target default)")
    s.add_argument("--ports", type=_ports, default=_ports("1-1024"), help="e.g. 1-1024,8080")
    s.add_argument("--udp", action="store_true", help="UDP probes instead of TCP SYNs")
    s.add_argument("--rate", type=float, default=1000.0, metavar="PPS", help="probes/second")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    start_ts = BASE_TS_NS + int(args.start_offset * 1e9)
    default_target = "2001:db8:2::10" if args.v6 else "198.18.0.10"
    try:
        if args.scenario == "traffic":
            truth = generate(
                args.out,
                packets=args.packets,
                flows=args.flows,
                seed=args.seed,
                v6_fraction=args.v6_fraction,
                udp_fraction=args.udp_fraction,
                vlan_fraction=args.vlan_fraction,
                retrans_rate=args.retrans_rate,
                ooo_rate=args.ooo_rate,
                small_packets=args.small,
                mss=args.mss,
            )
            if args.truth_json:
                truth.write_json(args.truth_json)
            count = truth.packets
            what = f"{len(truth.flows)} flows, {truth.bytes} bytes"
        elif args.scenario == "syn-flood":
            target = args.target or default_target
            ipaddress.ip_address(target)
            sc = syn_flood(args.out, target, args.target_port, args.sources, args.syns,
                           args.seed, start_ts, args.duration, args.v6)  # fmt: skip
            count, what = sc.packets, f"SYN flood on {target}:{args.target_port}"
        else:
            scanner = args.scanner or ("2001:db8:66::1" if args.v6 else "10.66.0.1")
            targets = [t.strip() for t in (args.targets or default_target).split(",")]
            sc = port_scan(args.out, scanner, targets, args.ports, args.udp, args.rate,
                           args.seed, args.v6, start_ts)  # fmt: skip
            count, what = sc.packets, f"port scan from {scanner}"
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    rate = count / elapsed if elapsed > 0 else 0.0
    print(
        f"wrote {count} packets ({what}) to {args.out} in {elapsed:.2f}s ({rate:,.0f} pkt/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

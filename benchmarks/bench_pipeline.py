"""Pipeline benchmarks (SPEC §9): shard_routing and inline vs sharded end to end.

- ``shard_routing``: the router kernel (parse headers from raw bytes, canonical hash,
  ``hash % 4``) plus the counting sort into per-shard index lists, on a 32,768-packet
  batch of mixed traffic; best of several repetitions, ns/packet.
- End to end: the library-level processors (the code path the CLI uses after start-up)
  over a trace with deep analysis on: inline, then 1, 2 and 4 workers. Each
  configuration runs ``--reps`` times interleaved (so load changes hit them alike);
  the median wall time is reported with the speed-up over inline from the same run.
  The 1-minute load average before and after is printed: other jobs share the machine.

    python -m benchmarks.bench_pipeline [--trace /work/bench/mixed-2m.pcap] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import traces
from benchmarks.figures import Figure, at_least, at_most, not_measured
from netscope import engine
from netscope.batch import PacketBatch, batch_from_packets
from netscope.flows.table import FlowOptions
from netscope.gen import packets as P
from netscope.pipeline.inline import InlineProcessor
from netscope.pipeline.sharded import PipelineProcessor
from netscope.sources import open_capture_file

BATCH = 32768
DEFAULT_TRACE = str(traces.reference_path())


def routing_batch() -> PacketBatch:
    """4,096 distinct flows (IPv4 and IPv6 TCP/UDP, some VLAN-tagged), both directions."""
    pkts: list[bytes] = []
    for f in range(BATCH // 8):
        a, b = f"10.{f >> 8 & 255}.{f & 255}.1", f"192.168.{f >> 8 & 255}.{f & 255}"
        tcp = P.tcp(a, b, 1024 + f % 50000, 443, 1, 1, "A", payload=b"x" * 64)
        pkts.append(P.ether_ip(a, b, 6, tcp))
        tcp_r = P.tcp(b, a, 443, 1024 + f % 50000, 1, 1, "A")
        pkts.append(P.ether_ip(b, a, 6, tcp_r))
    for k in range(BATCH - len(pkts)):
        pkts.append(pkts[k])
    rng = np.random.default_rng(1)
    order = rng.permutation(len(pkts))
    return batch_from_packets([pkts[i] for i in order])


def bench_routing(shards: int = 4, reps: int = 200) -> tuple[float, ...]:
    """ns/packet of every repetition (the section reports the best)."""
    from netscope.kernels.router import route_batch, split_by_shard

    b = routing_batch()
    n = b.count
    shard = np.zeros(n, dtype=np.int32)
    need = np.zeros(n, dtype=np.int32)
    order = np.zeros(n, dtype=np.int32)
    counts = np.zeros(shards, dtype=np.int64)
    starts = np.zeros(shards + 1, dtype=np.int64)
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        route_batch(b.buf, b.offsets, b.caplens, b.linktypes, 0, n, shards, shard, need, counts)
        split_by_shard(shard, n, counts, starts, order)
        samples.append((time.perf_counter_ns() - t0) / n)
    return tuple(samples)


def run_once(trace: str, workers: int) -> tuple[float, float, int]:
    """Wall and CPU seconds (all threads) to process ``trace`` (0 workers = inline)
    and the flow count."""
    opts = FlowOptions()
    proc: InlineProcessor | PipelineProcessor
    proc = InlineProcessor(opts) if workers == 0 else PipelineProcessor(opts, workers)
    source = open_capture_file(trace)
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        for batch in source.batches():
            proc.feed(batch)
        proc.finish()
        flows = proc.flows.active
    finally:
        source.close()
    return time.perf_counter() - t0, time.process_time() - c0, flows


@dataclass(frozen=True)
class PipelineResult:
    """Routing ns/packet samples and, per configuration (0 = inline), wall/CPU seconds."""

    routing_ns: tuple[float, ...]
    trace: str | None = None
    wall: dict[int, list[float]] = field(default_factory=dict)
    cpu: dict[int, list[float]] = field(default_factory=dict)
    flows: dict[int, int] = field(default_factory=dict)

    def speedup(self, workers: int) -> float | None:
        """Median inline wall time / median wall time with ``workers`` (None: not run)."""
        if workers not in self.wall or 0 not in self.wall:
            return None
        return statistics.median(self.wall[0]) / statistics.median(self.wall[workers])


def main(argv: list[str] | None = None) -> PipelineResult:
    ap = argparse.ArgumentParser(prog="bench_pipeline")
    ap.add_argument("--trace", default=DEFAULT_TRACE)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--routing-reps", type=int, default=200)
    args = ap.parse_args(argv)
    engine.warm_up(announce=False)
    print("Pipeline")
    routing = bench_routing(reps=args.routing_reps)
    print(f"  shard_routing (4 shards):     {min(routing):6.2f} ns/packet")
    if not Path(args.trace).is_file():
        print(f"  (end to end skipped: {args.trace} not found)")
        return PipelineResult(routing)
    configs = [0] + [int(w) for w in args.workers.split(",")]
    times: dict[int, list[float]] = {w: [] for w in configs}
    cpu: dict[int, list[float]] = {w: [] for w in configs}
    flows: dict[int, int] = {}
    load0 = os.getloadavg()[0]
    run_once(args.trace, 0)  # page cache and allocator warm-up
    for _ in range(args.reps):
        for w in configs:
            t, c, f = run_once(args.trace, w)
            times[w].append(t)
            cpu[w].append(c)
            flows[w] = f
    load1 = os.getloadavg()[0]
    base = statistics.median(times[0])
    print(f"  trace: {args.trace} (deep analysis, median of {args.reps})")
    for w in configs:
        med = statistics.median(times[w])
        name = "inline" if w == 0 else f"{w} worker{'s' if w > 1 else ''}"
        print(
            f"  {name:<10} {med * 1000:8.1f} ms   x{base / med:4.2f} vs inline   "
            f"cpu {statistics.median(cpu[w]) * 1000:7.1f} ms   ({flows[w]} flows at end)"
        )
    print(f"  load average (1 min): {load0:.2f} before, {load1:.2f} after; cpus={os.cpu_count()}")
    return PipelineResult(routing, Path(args.trace).name, times, cpu, flows)


ROUTING_TARGET_NS = 4.0
SPEEDUP_TARGET = 1.7


def routing_figure(result: PipelineResult) -> Figure:
    return at_most(
        "shard_routing, 4 shards",
        ROUTING_TARGET_NS,
        min(result.routing_ns),
        "ns/pkt",
        result.routing_ns,
    )


def speedup_figure(result: PipelineResult) -> Figure:
    name, target = "pipeline, 2 workers vs inline", f">= {SPEEDUP_TARGET:g}x"
    speedup = result.speedup(2)
    if speedup is None:
        return not_measured(name, target, "skipped (no trace or no 2-worker run)")
    inline = statistics.median(result.wall[0])
    return at_least(
        name,
        SPEEDUP_TARGET,
        speedup,
        "x",
        [inline / w for w in result.wall[2]],
        measured_text=f"{speedup:.2f}x ({result.trace})",
        target_text=target,
        extra={"inline_s": result.wall[0], "workers2_s": result.wall[2]},
    )


def figures(result: PipelineResult) -> list[Figure]:
    return [routing_figure(result), speedup_figure(result)]


if __name__ == "__main__":
    main()

"""Anomaly detection cost: the kernel under a spoofed SYN flood, and ``--anomalies`` on
normal traffic (in-process and end to end).

1. **Spoofed SYN flood, kernel only.** 1M SYNs towards one ip:port from 1M random IPv4
   sources at 1 Mpps, as decoded columns (exactly what the decode kernel writes for such
   packets; building a million packets in Python would dominate the run), fed to
   ``AnomalyDetector`` in 32 768-packet batches with default settings and the default cap.
   The first pass fills the tables from empty (page faults included); later passes are the
   steady state of a long attack: every SYN pushes the oldest out of the full SYN window and
   every new source evicts the least recently active one. Rows for each sub-detector alone
   and for a flood from only 1 000 sources show where the time goes.
2. **Normal traffic, kernel only.** The detector over the pre-decoded batches of the
   benchmark traces (a fresh detector per repetition, so table pages are faulted in as in a
   real run).
3. **End to end.** ``netscope --read-pcap T --quiet`` with and without ``--anomalies``, runs
   alternated so machine load drifts hit both alike; median of ``--reps`` each, after one
   untimed run of each. The overhead is the ratio of the medians.

Every figure is given as wall time and as CPU time (the thread's CPU time for the kernel,
the child process's user + system time end to end). On a shared machine wall time includes
waiting for a core; CPU time does not, so it is the steadier measure of the work itself (it
still pays for caches that other jobs evict).

Run: ``python -m benchmarks.bench_anomaly [--reps 5] [--small PATH] [--mixed PATH]
[--skip-e2e]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import traces
from benchmarks.common import fmt_row, header
from benchmarks.figures import Figure, at_most, not_measured

SMALL_DEFAULT = traces.small_path()
MIXED_DEFAULT = traces.reference_path()
BATCH = 32768
FLOOD_PACKETS = 1 << 20
T0 = 1_704_067_200 * 1_000_000_000


def _flood_columns(sources: int, n: int = FLOOD_PACKETS) -> tuple[np.ndarray, list[Any]]:
    """Timestamps (1 Mpps) and decoded-column batches of ``n`` SYNs to 198.18.0.16:80."""
    from netscope.columns import DecodedColumns

    rng = np.random.default_rng(7)
    if sources >= n:
        # distinct, scattered over the IPv4 space: an odd multiplier is a bijection mod 2**32
        ids = rng.permutation(n).astype(np.uint64) + np.uint64(1)
        src = (ids * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    else:
        src = rng.integers(1, sources + 1, size=n, dtype=np.uint64) + np.uint64(0x0A000000)
    ts = T0 + np.arange(n, dtype=np.int64) * 1000
    cols = DecodedColumns.allocate(n)
    cols.l3[:] = 4
    cols.proto[:] = 6
    cols.l4_off[:] = 34
    cols.tcp_flags[:] = 0x02
    cols.src_lo[:] = src
    cols.dst_lo[:] = 0xC6120010
    cols.dport[:] = 80
    cols.sport[:] = rng.integers(1024, 65536, size=n)
    names = [f for f in cols.__dataclass_fields__]
    batches = [
        DecodedColumns(**{k: getattr(cols, k)[s : s + BATCH] for k in names})
        for s in range(0, n, BATCH)
    ]
    return ts, batches


@dataclass(frozen=True)
class Samples:
    """Seconds per repetition, wall clock and CPU."""

    wall: tuple[float, ...]
    cpu: tuple[float, ...]

    def best(self, cpu: bool = False) -> float:
        return min(self.cpu if cpu else self.wall)

    def median(self, cpu: bool = False) -> float:
        return statistics.median(self.cpu if cpu else self.wall)


def measure(fn: object, reps: int, warmup: int = 1) -> Samples:
    """Run ``fn`` ``warmup`` times untimed, then ``reps`` times timed (wall and thread CPU)."""
    for _ in range(warmup):
        fn()  # type: ignore[operator]
    wall, cpu = [], []
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()  # type: ignore[operator]
        wall.append(time.perf_counter() - w0)
        cpu.append(time.thread_time() - c0)
    return Samples(tuple(wall), tuple(cpu))


@dataclass(frozen=True)
class FloodRow:
    label: str
    first: Samples  # first pass (tables filling from empty, page faults)
    steady: Samples  # later passes (tables full)


class _FloodPass:
    """One pass of the flood through a detector; each pass continues in time where the
    previous one ended, so repeated passes are one long attack."""

    def __init__(self, det: object, ts: np.ndarray, batches: list[object]) -> None:
        self.det = det
        self.ts = ts
        self.batches = batches
        self.shift = 0

    def __call__(self) -> None:
        det = self.det
        base = self.ts + self.shift
        for k, cols in enumerate(self.batches):
            start = k * BATCH
            det.observe(base[start : start + BATCH], cols, BATCH)  # type: ignore[attr-defined]
        det.drain()  # type: ignore[attr-defined]
        self.shift += len(self.ts) * 1000


def bench_caps(reps: int, caps: list[int]) -> list[FloodRow]:
    """The spoofed flood (both detectors) at other caps: how much is table size (memory)."""
    from netscope.anomaly import AnomalyDetector

    ts, batches = _flood_columns(FLOOD_PACKETS)
    rows = []
    for cap in caps:
        flood = _FloodPass(AnomalyDetector(max_entries=cap), ts, batches)
        first = measure(flood, reps=1, warmup=0)
        rows.append(FloodRow(f"spoofed flood, both, cap {cap}", first, measure(flood, reps)))
    return rows


def bench_flood(reps: int) -> list[FloodRow]:
    from netscope.anomaly import AnomalyDetector
    from netscope.config import AnomaliesConfig, PortScanConfig, SynFloodConfig

    spoofed = _flood_columns(FLOOD_PACKETS)
    few = _flood_columns(1000)
    cases = [
        ("spoofed flood, both detectors", AnomaliesConfig(True), spoofed),
        (
            "spoofed flood, SYN flood only",
            AnomaliesConfig(True, port_scan=PortScanConfig(enabled=False)),
            spoofed,
        ),
        (
            "spoofed flood, port scan only",
            AnomaliesConfig(True, syn_flood=SynFloodConfig(enabled=False)),
            spoofed,
        ),
        ("flood from 1 000 sources, both", AnomaliesConfig(True), few),
    ]
    rows = []
    for label, settings, (ts, batches) in cases:
        flood = _FloodPass(AnomalyDetector(settings), ts, batches)
        first = measure(flood, reps=1, warmup=0)
        rows.append(FloodRow(label, first, measure(flood, reps=reps, warmup=1)))
    return rows


def _decoded_batches(trace: Path) -> list[tuple[np.ndarray, Any, int]]:
    """Copies of the columns the detector reads, batch by batch, for the whole trace."""
    from netscope.analysis import Analyzer
    from netscope.columns import DecodedColumns
    from netscope.sources import open_capture_file

    used = ("err", "l3", "src_hi", "src_lo", "dst_hi", "dst_lo", "proto", "frag", "l4_off",
            "sport", "dport", "tcp_flags")  # fmt: skip
    analyzer = Analyzer()
    out = []
    reader = open_capture_file(trace)
    for batch in reader.batches():
        cols = analyzer.process(batch)
        n = batch.count
        copy = DecodedColumns.allocate(n)
        for name in used:
            getattr(copy, name)[:] = getattr(cols, name)[:n]
        out.append((batch.ts_ns[:n].copy(), copy, n))
    reader.close()
    return out


def bench_normal(trace: Path, reps: int) -> tuple[int, Samples, dict[str, int]]:
    """(packets, timings, final stats) of a fresh detector over the whole trace."""
    from netscope.anomaly import AnomalyDetector

    batches = _decoded_batches(trace)
    packets = sum(n for _, _, n in batches)
    last: list[AnomalyDetector] = []

    def run() -> None:
        det = AnomalyDetector()
        for ts, cols, n in batches:
            det.observe(ts, cols, n)
        last[:] = [det]

    timing = measure(run, reps=reps, warmup=1)
    st = last[0].stats
    stats = {
        "SYN events": st.syn_events,
        "scan events": st.scan_events,
        "alerts": st.alerts,
        "cap hits": st.cap_hits,
    }
    return packets, timing, stats


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's CPU seconds (user + system) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def bench_e2e(trace: Path, reps: int) -> tuple[Samples, Samples]:
    """Runs without and with ``--anomalies``, alternated."""
    base = [sys.executable, "-m", "netscope", "--read-pcap", str(trace), "--quiet"]
    with_anomalies = [*base, "--anomalies"]
    _run(base)  # page cache, kernel cache
    _run(with_anomalies)
    off: list[tuple[float, float]] = []
    on: list[tuple[float, float]] = []
    for _ in range(reps):
        off.append(_run(base))
        on.append(_run(with_anomalies))

    def samples(runs: list[tuple[float, float]]) -> Samples:
        return Samples(tuple(w for w, _ in runs), tuple(c for _, c in runs))

    return samples(off), samples(on)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not Linux
        return "n/a"


@dataclass(frozen=True)
class AnomalyReport:
    """What one run measured: flood rows, normal-traffic kernel runs, end-to-end pairs."""

    flood: list[FloodRow]
    normal: dict[str, tuple[int, Samples]]  # trace name -> (packets, timings)
    e2e: dict[str, tuple[Samples, Samples]]  # trace name -> (off, on)
    small: str  # the small-packet trace's name


def main(argv: list[str] | None = None) -> AnomalyReport:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions (best/median)")
    parser.add_argument("--small", type=Path, default=SMALL_DEFAULT, help="small-packet trace")
    parser.add_argument("--mixed", type=Path, default=MIXED_DEFAULT, help="reference trace")
    parser.add_argument("--skip-e2e", action="store_true", help="kernel figures only")
    parser.add_argument(
        "--caps",
        default="4096,32768",
        help="also run the spoofed flood at these max_entries (comma-separated; '' for none)",
    )
    args = parser.parse_args(argv)

    import netscope.engine

    netscope.engine.warm_up(announce=False)
    header("anomaly detection")
    print(f"   load average at start: {_load()}")
    print("   spoofed SYN flood, kernel only, ns/packet (1M SYNs at 1 Mpps, default cap);")
    print("   wall / CPU, first pass (tables filling) and best / median of the steady state:")
    print(fmt_row("workload", "first", "best", "median", "CPU best", "CPU median"))
    caps = [int(c) for c in args.caps.split(",") if c.strip()]
    flood = bench_flood(args.reps) + bench_caps(args.reps, caps)
    normal: dict[str, tuple[int, Samples]] = {}
    e2e: dict[str, tuple[Samples, Samples]] = {}
    for row in flood:
        per = 1e9 / FLOOD_PACKETS
        print(fmt_row(row.label, f"{row.first.best() * per:.1f}",
                      f"{row.steady.best() * per:.1f}", f"{row.steady.median() * per:.1f}",
                      f"{row.steady.best(True) * per:.1f}",
                      f"{row.steady.median(True) * per:.1f}"))  # fmt: skip
    traces = [t for t in (args.small, args.mixed) if t.is_file()]
    if traces:
        print("   normal traffic, detector only (fresh detector per run), ns/packet:")
        print(fmt_row("trace", "packets", "best", "median", "CPU best", "CPU median"))
        for trace in traces:
            packets, timing, stats = bench_normal(trace, args.reps)
            normal[trace.name] = (packets, timing)
            per = 1e9 / packets
            print(fmt_row(trace.name, str(packets), f"{timing.best() * per:.1f}",
                          f"{timing.median() * per:.1f}", f"{timing.best(True) * per:.1f}",
                          f"{timing.median(True) * per:.1f}"))  # fmt: skip
            print("      " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    if not args.skip_e2e and traces:
        print(f"   end to end, median of {args.reps} runs each (s), runs alternated:")
        print(fmt_row("trace", "wall off", "wall on", "wall +%", "CPU off", "CPU on", "CPU +%"))
        for trace in traces:
            off, on = bench_e2e(trace, args.reps)
            e2e[trace.name] = (off, on)
            w_off, w_on = off.median(), on.median()
            c_off, c_on = off.median(True), on.median(True)
            print(fmt_row(trace.name, f"{w_off:.3f}", f"{w_on:.3f}",
                          f"{(w_on / w_off - 1) * 100:+.1f}%", f"{c_off:.3f}", f"{c_on:.3f}",
                          f"{(c_on / c_off - 1) * 100:+.1f}%"))  # fmt: skip
    print(f"   load average at end: {_load()}")
    return AnomalyReport(flood, normal, e2e, args.small.name)


OVERHEAD_TARGET_PCT = 15.0
PER_PACKET_TARGET_NS = 100.0
FLOOD_ROW = "spoofed flood, both detectors"


def figures(report: AnomalyReport) -> list[Figure]:
    """``--anomalies`` end-to-end overhead (small-packet trace, wall medians; CPU shown
    beside it) and the per-packet cost under a spoofed SYN flood (steady state, best)."""
    out: list[Figure] = []
    name = "anomaly overhead (--anomalies), end to end"
    if report.small in report.e2e:
        off, on = report.e2e[report.small]
        wall = (on.median() / off.median() - 1) * 100
        cpu = (on.median(True) / off.median(True) - 1) * 100
        out.append(
            at_most(
                name,
                OVERHEAD_TARGET_PCT,
                wall,
                "%",
                [(a / b - 1) * 100 for a, b in zip(on.wall, off.wall, strict=True)],
                measured_text=f"{wall:+.1f} % wall ({cpu:+.1f} % CPU, {report.small})",
                extra={"off_wall_s": off.wall, "on_wall_s": on.wall, "cpu_pct": cpu},
            )
        )
    else:
        out.append(not_measured(name, f"<= {OVERHEAD_TARGET_PCT:g} %", "skipped (no trace)"))
    row = next(r for r in report.flood if r.label == FLOOD_ROW)
    per = 1e9 / FLOOD_PACKETS
    out.append(
        at_most(
            "anomaly cost per packet, spoofed SYN flood",
            PER_PACKET_TARGET_NS,
            row.steady.best() * per,
            "ns/pkt",
            [t * per for t in row.steady.wall],
        )
    )
    return out


if __name__ == "__main__":
    main(sys.argv[1:])

"""Flow exports (issue 15): ``to_arrow()`` on 1M flows, ``--export-parquet``'s cost, and
``netscope.analyze(...).to_pandas()`` side by side with NFStream's ``to_pandas()``.

``python -m benchmarks.bench_exports [--trace PATH] [--flows N] [--reps N]``

- **to_arrow**: a 1M-row flow snapshot (80 % IPv4, 20 % IPv6 over 5 000 distinct IPv6
  hosts, TCP and UDP, RTT on TCP) turned into the Arrow table (every column, Community
  ID included). In process, after one warm-up call; best and median of ``--reps``.
- **parquet overhead**: whole-process wall time of ``netscope --read-pcap T --quiet`` with
  and without ``--export-parquet``, runs interleaved (so load drift hits both alike);
  overhead = median(with) / median(without) - 1.
- **vs NFStream**: whole-process time of a Python script that reads the trace into a
  pandas DataFrame with each library (imports included: that is what a user waits for).
  NFStream runs with ``n_dissections=0`` (no nDPI payload inspection, closest to what we
  compute) and with its defaults.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO_ROOT, Timing, header, machine_description, time_reps
from benchmarks.figures import Figure, at_most, not_measured

TO_ARROW = "to_arrow(), 1M flows"
PARQUET = "--export-parquet, whole-process overhead"
NFSTREAM = "analyze().to_pandas() vs NFStream to_pandas()"
ROWS: tuple[tuple[str, str], ...] = (
    (TO_ARROW, "<= 0.3 s"),
    (PARQUET, "<= 10 %"),
    (NFSTREAM, "faster than NFStream (< 1.00x its time)"),
)


@dataclass
class ExportReport:
    flows: int
    to_arrow: Timing
    trace: str = ""
    to_arrow_cpu: list[float] = field(default_factory=list)  # CPU s (both threads)
    load: float = 0.0  # 1-minute load average when the run started
    plain: list[float] = field(default_factory=list)
    parquet: list[float] = field(default_factory=list)
    plain_cpu: list[float] = field(default_factory=list)
    parquet_cpu: list[float] = field(default_factory=list)
    ours_pandas: list[float] = field(default_factory=list)
    nfstream: dict[str, list[float]] = field(default_factory=dict)
    nfstream_error: str = ""


def synthetic_rows(n: int, seed: int = 1) -> Any:
    """A flow snapshot shaped like a busy link's table (see module doc)."""
    from netscope.flows import layout as L
    from netscope.flows.schema import FlowRows

    rng = np.random.default_rng(seed)
    keys = np.zeros((n, L.KEY_WIDTH), dtype=np.uint64)
    v6 = rng.random(n) < 0.2
    keys[:, L.K_A_LO] = rng.integers(0, 2**32, n, dtype=np.uint64)
    keys[:, L.K_B_LO] = rng.integers(0, 2**32, n, dtype=np.uint64)
    hosts = rng.integers(0, 2**63, (5000, 2), dtype=np.uint64)
    pick = rng.integers(0, 5000, (n, 2))
    keys[v6, L.K_A_HI] = hosts[pick[v6, 0], 0]
    keys[v6, L.K_A_LO] = hosts[pick[v6, 0], 1]
    keys[v6, L.K_B_HI] = hosts[pick[v6, 1], 0]
    keys[v6, L.K_B_LO] = hosts[pick[v6, 1], 1]
    tcp = rng.random(n) < 0.8
    proto = np.where(tcp, 6, 17).astype(np.uint64)
    ports = rng.integers(1024, 65536, n).astype(np.uint64)
    version = np.where(v6, 6, 4).astype(np.uint64)
    u64 = np.uint64
    keys[:, L.K_META] = (ports << u64(48)) | (u64(443) << u64(32)) | (proto << u64(8)) | version
    i64 = rng.integers(0, 1_000_000, (n, L.I64_WIDTH)).astype(np.int64)
    start = 1_700_000_000_000_000_000 + rng.integers(0, 3_600 * 10**9, n)
    i64[:, L.I_FIRST_NS] = start
    i64[:, L.I_LAST_NS] = start + rng.integers(0, 60 * 10**9, n)
    i64[:, L.I_RTT_SAMPLES] = np.where(tcp, i64[:, L.I_RTT_SAMPLES] % 20, 0)
    f64 = rng.random((n, L.F64_WIDTH)) * 50
    u8 = np.zeros((n, L.U8_WIDTH), dtype=np.uint8)
    u8[:, L.B_STATE] = rng.integers(0, 7, n)
    u8[:, L.B_CLIENT] = rng.integers(0, 3, n)
    u8[:, L.B_LIVE] = 1
    return FlowRows(keys, i64, f64, u8)


def _wall(cmd: list[str], cpu: list[float] | None = None) -> float:
    """Wall seconds of one run of ``cmd``; its CPU seconds (user + sys) go to ``cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-400:]!r}")
    if cpu is not None:
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        cpu.append(used)
    return elapsed


OURS = "import netscope, sys; df = netscope.analyze(sys.argv[1]).to_pandas(); print(len(df))"
NFS = (
    "import sys; from nfstream import NFStreamer; "
    "df = NFStreamer(source=sys.argv[1]{opts}).to_pandas(); print(len(df))"
)


def main(argv: list[str] | None = None) -> ExportReport:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_exports")
    p.add_argument("--flows", type=int, default=1_000_000)
    p.add_argument("--trace", type=Path, help="pcap for the whole-process rows (else skipped)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--no-nfstream", action="store_true")
    args = p.parse_args(argv)
    import netscope.engine  # noqa: F401  (NUMBA_CACHE_DIR first)

    header(f"flow exports ({machine_description()})")
    rows = synthetic_rows(args.flows)
    load = os.getloadavg()[0]
    timing = time_reps(rows.to_arrow, args.reps, warmup=1)
    report = ExportReport(args.flows, timing, load=load)
    for _ in range(args.reps):
        t0 = time.process_time()
        rows.to_arrow()
        report.to_arrow_cpu.append(time.process_time() - t0)
    print(
        f"   to_arrow, {args.flows} flows: best {timing.best:.3f} s, median {timing.median:.3f}"
        f" s wall; CPU best {min(report.to_arrow_cpu):.3f} s (load average {load:.1f})"
    )
    if args.trace is None:
        return report
    trace = str(args.trace)
    report.trace = trace
    py = sys.executable
    base = [py, "-m", "netscope", "--read-pcap", trace, "--quiet"]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "flows.parquet")
        _wall(base)
        _wall([*base, "--export-parquet", out])  # warm-up: kernel cache, page cache
        for _ in range(args.reps):
            report.plain.append(_wall(base, report.plain_cpu))
            report.parquet.append(_wall([*base, "--export-parquet", out], report.parquet_cpu))
    med = {k: float(np.median(v)) for k, v in vars(report).items() if k.startswith("p")}
    print(
        f"   whole process: {med['plain']:.3f} s (CPU {med['plain_cpu']:.3f} s), "
        f"with --export-parquet {med['parquet']:.3f} s (CPU {med['parquet_cpu']:.3f} s)"
    )
    _wall([py, "-c", OURS, trace])
    for _ in range(args.reps):
        report.ours_pandas.append(_wall([py, "-c", OURS, trace]))
    print(f"   netscope.analyze().to_pandas(): median {np.median(report.ours_pandas):.3f} s")
    if not args.no_nfstream:
        for label, opts in (("n_dissections=0", ", n_dissections=0"), ("defaults", "")):
            try:
                _wall([py, "-c", NFS.format(opts=opts), trace])
                samples = [
                    _wall([py, "-c", NFS.format(opts=opts), trace]) for _ in range(args.reps)
                ]
            except (RuntimeError, OSError) as exc:
                report.nfstream_error = str(exc)[:200]
                break
            report.nfstream[label] = samples
            print(f"   NFStream to_pandas() ({label}): median {np.median(samples):.3f} s")
    return report


def figures(report: ExportReport) -> list[Figure]:
    cpu_text = f", CPU {min(report.to_arrow_cpu):.3f} s" if report.to_arrow_cpu else ""
    out = [
        at_most(
            TO_ARROW,
            0.3,
            report.to_arrow.best,
            "s",
            samples=report.to_arrow.samples,
            measured_text=f"{report.to_arrow.best:.3f} s wall{cpu_text} "
            f"(load average {report.load:.1f})",
        ),
    ]
    if report.plain and report.parquet:
        # medians of the interleaved runs (the best-of pair was dominated by one lucky run:
        # reading a 1.5 GB trace on a shared machine varies by seconds); CPU time beside it
        plain, parquet = float(np.median(report.plain)), float(np.median(report.parquet))
        overhead = (parquet / plain - 1) * 100
        cpu = ""
        if report.plain_cpu and report.parquet_cpu:
            c = float(np.median(report.parquet_cpu)) / float(np.median(report.plain_cpu)) - 1
            cpu = f"; CPU {c * 100:+.1f} %"
        out.append(
            at_most(
                PARQUET,
                10,
                overhead,
                "%",
                measured_text=f"{overhead:+.1f} % wall ({plain:.2f} -> {parquet:.2f} s median"
                f"{cpu}, {Path(report.trace).name})",
            )
        )
    else:
        out.append(not_measured(PARQUET, ROWS[1][1], "no trace given"))
    nfs = report.nfstream.get("n_dissections=0")
    if nfs and report.ours_pandas:
        ratio = float(np.median(report.ours_pandas)) / float(np.median(nfs))
        out.append(
            at_most(
                NFSTREAM,
                1.0,
                ratio,
                "x",
                strict=True,
                target_text=ROWS[2][1],
                measured_text=f"{ratio:.2f}x NFStream's time ({np.median(report.ours_pandas):.2f}"
                f" vs {np.median(nfs):.2f} s)",
            )
        )
    else:
        reason = report.nfstream_error or "no trace given / --no-nfstream"
        out.append(not_measured(NFSTREAM, ROWS[2][1], reason))
    return out


if __name__ == "__main__":
    from benchmarks.figures import format_table

    print(format_table(figures(main()), title="== flow exports"))

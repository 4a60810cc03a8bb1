"""Whole-process figures (SPEC §9): ``--help``, 1M synthetic flows, first run, dashboard.

- ``netscope --help``: median wall time of ``--reps`` runs (target < 0.3 s).
- 1M synthetic scale-mode flows: ``netscope --synthetic-flows 1000000`` as a subprocess;
  its own ``Elapsed:`` (insertion time) and ``RSS (estimated):`` (whole process) lines,
  median of ``--reps`` runs (target < 150 MB RSS and < 1 s).
- first run after install (``--cold`` only, it compiles every kernel the run needs: tens of
  seconds): ``netscope --read-pcap ONE-PACKET --quiet`` with an empty temporary
  ``NUMBA_CACHE_DIR`` (target < 20 s).
- dashboard at tick_ms = 33 (``--dashboard``, when Debian's chromium is installed and we are
  root): ``scripts/perf/dashboard_fps.py --tick-ms 33 --sample-rate 0``, whose line is parsed
  for mean fps and p95 latency (target >= 29 fps, p95 < 50 ms).

Warm start (a one-packet file, whole process) is measured by ``bench_e2e_decode``.

Run: ``python -m benchmarks.bench_process [--reps 5] [--cold] [--dashboard]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.common import REPO_ROOT, Timing, fmt_row, header, time_process
from benchmarks.figures import Figure, at_least, at_most, not_measured

SYNTHETIC_FLOWS = 1_000_000
CHROMIUM = "/usr/bin/chromium"
DASHBOARD_SCRIPT = REPO_ROOT / "scripts" / "perf" / "dashboard_fps.py"


def netscope_argv(*args: str) -> list[str]:
    """The installed ``netscope`` script next to this interpreter (what users run), else
    ``python -m netscope``."""
    script = Path(sys.executable).with_name("netscope")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "netscope", *args]


@dataclass(frozen=True)
class SyntheticRun:
    elapsed_s: float
    rss_mb: float


def parse_synthetic(output: str) -> SyntheticRun:
    """The ``Elapsed:`` and ``RSS (estimated):`` lines of ``--synthetic-flows``."""
    elapsed = re.search(r"^\s*Elapsed:\s*([\d.]+)\s*s", output, re.M)
    rss = re.search(r"^\s*RSS \(estimated\):\s*([\d.]+)\s*MB", output, re.M)
    if not elapsed or not rss:
        raise ValueError(f"no Elapsed/RSS lines in:\n{output}")
    return SyntheticRun(float(elapsed.group(1)), float(rss.group(1)))


def bench_synthetic(reps: int, flows: int = SYNTHETIC_FLOWS) -> list[SyntheticRun]:
    runs = []
    for _ in range(reps):
        out = subprocess.run(
            netscope_argv("--synthetic-flows", str(flows)),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(parse_synthetic(out))
    return runs


def bench_cold_start() -> float:
    """Seconds of a first run: every kernel it needs compiled into an empty cache."""
    from netscope.gen.pcapfile import write_pcap

    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.pcap"
        write_pcap(one, [(0, bytes(60))])
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba-cache"))
        t0 = time.perf_counter()
        subprocess.run(
            netscope_argv("--read-pcap", str(one), "--quiet"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=True,
        )
        return time.perf_counter() - t0


@dataclass(frozen=True)
class DashboardRun:
    fps: float
    p95_ms: float
    line: str


def parse_dashboard(output: str) -> DashboardRun:
    """``fps mean X ... latency p50 A p95 B`` from dashboard_fps.py's result line."""
    m = re.search(r"fps mean ([\d.]+).*?p95 ([\d.]+)", output)
    if not m:
        raise ValueError(f"no fps/p95 in:\n{output}")
    line = next(ln for ln in output.splitlines() if "fps mean" in ln)
    return DashboardRun(float(m.group(1)), float(m.group(2)), line)


def dashboard_unavailable() -> str | None:
    """Why the dashboard figure cannot be measured here (None: it can)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return "n/a: no chromium"
    if os.geteuid() != 0:
        return "n/a: needs root (capture on lo)"
    return None


def bench_dashboard() -> DashboardRun:
    proc = subprocess.run(
        [sys.executable, str(DASHBOARD_SCRIPT), "--tick-ms", "33", "--sample-rate", "0"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=180,
    )
    return parse_dashboard(proc.stdout)


@dataclass(frozen=True)
class ProcessReport:
    help: Timing
    synthetic: list[SyntheticRun]
    cold_s: float | None
    dashboard: DashboardRun | str | None  # a run, the reason it was not run, or not asked


def main(argv: list[str] | None = None) -> ProcessReport:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--cold", action="store_true", help="also time a first run (slow)")
    parser.add_argument("--dashboard", action="store_true", help="also run dashboard_fps.py")
    args = parser.parse_args(argv)

    header("whole-process figures: --help, 1M synthetic flows, first run, dashboard")
    help_t = time_process(netscope_argv("--help"), args.reps, warmup=1)
    print(fmt_row("netscope --help (median s)", f"{help_t.median:.3f}"))
    synthetic = bench_synthetic(args.reps)
    elapsed = statistics.median(r.elapsed_s for r in synthetic)
    rss = statistics.median(r.rss_mb for r in synthetic)
    print(fmt_row(f"--synthetic-flows {SYNTHETIC_FLOWS} (median)", f"{elapsed:.3f} s",
                  f"{rss:.1f} MB RSS"))  # fmt: skip
    cold = None
    if args.cold:
        cold = bench_cold_start()
        print(fmt_row("first run, empty kernel cache (s)", f"{cold:.1f}"))
    dashboard: DashboardRun | str | None = None
    if args.dashboard:
        dashboard = dashboard_unavailable()
        if dashboard is None:
            dashboard = bench_dashboard()
            print(f"   dashboard: {dashboard.line}")
        else:
            print(f"   dashboard: {dashboard}")
    return ProcessReport(help_t, synthetic, cold, dashboard)


def synthetic_figure(report: ProcessReport) -> Figure:
    elapsed = statistics.median(r.elapsed_s for r in report.synthetic)
    rss = statistics.median(r.rss_mb for r in report.synthetic)
    return Figure(
        "1M synthetic scale-mode flows",
        "< 150 MB RSS, < 1 s",
        rss,
        "MB",
        rss < 150 and elapsed < 1.0,
        measured_text=f"{rss:.0f} MB RSS, {elapsed:.2f} s",
        samples=tuple(r.rss_mb for r in report.synthetic),
        extra={"elapsed_s": [r.elapsed_s for r in report.synthetic]},
    )


def help_figure(report: ProcessReport) -> Figure:
    return at_most("netscope --help", 0.3, report.help.median, "s", report.help.samples,
                   strict=True)  # fmt: skip


def cold_figure(report: ProcessReport) -> Figure:
    name, target = "first run after install (compiles)", "< 20 s"
    if report.cold_s is None:
        return not_measured(name, target, "not run (needs --cold)")
    return at_most(name, 20.0, report.cold_s, "s", [report.cold_s], strict=True)


def dashboard_figure(report: ProcessReport, not_run: str = "not run (needs --dashboard)") -> Figure:
    name, target = "dashboard at tick_ms = 33", ">= 29 fps, p95 < 50 ms"
    run = report.dashboard
    if run is None:
        return not_measured(name, target, not_run)
    if isinstance(run, str):
        return not_measured(name, target, run)
    fig = at_least(name, 29.0, run.fps, "fps", [run.fps], target_text=target,
                   measured_text=f"{run.fps:.1f} fps, p95 {run.p95_ms:.1f} ms",
                   extra={"p95_ms": run.p95_ms})  # fmt: skip
    return replace(fig, passed=run.fps >= 29.0 and run.p95_ms < 50.0)


if __name__ == "__main__":
    main(sys.argv[1:])

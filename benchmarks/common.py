"""Timing helpers shared by the benchmark scripts.

Benchmarks report best and median of many repetitions: the best shows what the code can do
when nothing else interferes, the median what a user typically gets. Neither is asserted in
tests — timings on shared machines are too noisy for pass/fail — they are written down in
``docs/performance.md`` together with the machine they were measured on.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Timing:
    """Seconds per repetition: every sample plus the two summaries we report."""

    samples: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def time_reps(fn: Callable[[], object], reps: int, warmup: int = 3) -> Timing:
    """Call ``fn`` ``warmup`` times untimed (JIT, caches, page faults), then ``reps`` timed."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return Timing(tuple(samples))


def time_process(
    cmd: Sequence[str], reps: int = 5, warmup: int = 1, env: dict[str, str] | None = None
) -> Timing:
    """Wall time of a whole process (start-up included), ``reps`` runs after ``warmup``.

    Output goes to /dev/null so terminal speed is not measured; a non-zero exit aborts the
    benchmark rather than timing a failure.
    """

    def once() -> None:
        proc = subprocess.run(
            list(cmd),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-500:]!r}")

    return time_reps(once, reps, warmup)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on (what ``nproc`` prints), not the host's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_description() -> str:
    """One line naming the machine and software the figures were measured with."""
    import numba
    import numpy

    return (
        f"{cpu_model()}, {usable_cpus()} CPUs (nproc), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, numpy {numpy.__version__}, "
        f"numba {numba.__version__}"
    )


def header(title: str) -> None:
    """Print a benchmark's title and the machine line (so pasted output is self-describing)."""
    print(f"== {title}")
    print(f"   machine: {machine_description()}")
    sys.stdout.flush()


def fmt_row(label: str, *cells: str, width: int = 44) -> str:
    return f"   {label:<{width}}" + "  ".join(f"{c:>12}" for c in cells)

"""Start-up (issue 18): a one-packet file, whole process, beside tshark and tcpdump.

Two measurements, both on the same one-packet pcap (a TCP SYN):

- **side by side**: ``netscope --read-pcap ONE`` (the per-packet line on, as a user runs
  it), ``tshark -r ONE``, ``tcpdump -r ONE -w /dev/null``, ``python -c 'import netscope'``,
  ``python -c 'import numba'`` and ``python -c pass``, interleaved (one of each per round,
  so load on the machine hits all alike), ``--reps`` rounds after one warm-up round; median
  wall time and median CPU time (user + system of the child). ``--before SRC`` adds the
  same netscope command run from another ``src/`` directory (e.g. main's, for a before/after).
- **where it goes**: ``benchmarks/startup_stages.py`` in a fresh process per repetition
  (stages in the CLI's order; the median of each stage), for this tree and ``--before``.

The CPU columns are the steadier figure on a shared machine: wall time there is CPU time
plus waiting for a core.

Run: ``python -m benchmarks.bench_startup [--reps 7] [--before /path/to/other/src]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import REPO_ROOT, header
from benchmarks.figures import Figure, not_measured

TARGET_ONE_PACKET_S = 0.25
STAGES_SCRIPT = REPO_ROOT / "benchmarks" / "startup_stages.py"
ONE_PACKET_ROW = "start-up: one-packet file, whole process"


@dataclass(frozen=True)
class Sample:
    """Median wall and CPU seconds of one command over the rounds, with every sample."""

    wall: tuple[float, ...]
    cpu: tuple[float, ...]

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


@dataclass(frozen=True)
class StartupReport:
    commands: dict[str, Sample]
    stages: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)


def write_one_packet(path: Path) -> Path:
    """A pcap holding one Ethernet/IPv4/TCP SYN."""
    from netscope.gen.packets import ether_ip, tcp
    from netscope.gen.pcapfile import write_pcap

    segment = tcp("10.0.0.1", "10.0.0.2", 40000, 443, 1, 0, "S")
    write_pcap(path, [(1_700_000_000_000_000_000, ether_ip("10.0.0.1", "10.0.0.2", 6, segment))])
    return path


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its .pyc files
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def commands(one: Path, before: str | None) -> dict[str, tuple[list[str], str | None]]:
    """Label -> (argv, PYTHONPATH or None for the inherited one)."""
    py = sys.executable
    out: dict[str, tuple[list[str], str | None]] = {
        "netscope --read-pcap ONE": ([py, "-m", "netscope", "--read-pcap", str(one)], None),
    }
    if before is not None:
        out["netscope --read-pcap ONE (before)"] = (
            [py, "-m", "netscope", "--read-pcap", str(one)],
            before,
        )
    for tool, argv in (
        ("tshark", ["tshark", "-r", str(one)]),
        ("tcpdump", ["tcpdump", "-r", str(one), "-w", "/dev/null"]),
    ):
        if shutil.which(tool):
            out[f"{tool} -r ONE" + (" -w /dev/null" if tool == "tcpdump" else "")] = (argv, None)
    out["python -c 'import netscope'"] = ([py, "-c", "import netscope"], None)
    out["python -c 'import numba'"] = ([py, "-c", "import numba"], None)
    out["python -c pass"] = ([py, "-c", "pass"], None)
    return out


def _run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def side_by_side(one: Path, before: str | None, reps: int) -> dict[str, Sample]:
    """Interleaved rounds of every command (one warm-up round first)."""
    cmds = commands(one, before)
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    cpus: dict[str, list[float]] = {k: [] for k in cmds}
    for round_no in range(reps + 1):
        for label, (argv, src) in cmds.items():
            wall, cpu = _run_once(argv, _env(src))
            if round_no:  # round 0 warms the page cache and the kernel cache
                walls[label].append(wall)
                cpus[label].append(cpu)
    return {k: Sample(tuple(walls[k]), tuple(cpus[k])) for k in cmds}


def stages(one: Path, src: str | None, reps: int) -> list[tuple[str, float, float]]:
    """Median wall and CPU per start-up stage over ``reps`` fresh processes."""
    runs = []
    for _ in range(reps):
        proc = subprocess.run(
            [sys.executable, str(STAGES_SCRIPT), "--read-pcap", str(one)],
            capture_output=True,
            text=True,
            env=_env(src),
            check=True,
        )
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out = []
    for i, (name, _, _) in enumerate(runs[0]):
        out.append(
            (
                name,
                statistics.median(r[i][1] for r in runs),
                statistics.median(r[i][2] for r in runs),
            )
        )
    return out


def report(rep: StartupReport) -> None:
    print(f"{'command':44s} {'wall median':>12s} {'CPU median':>11s}")
    for label, s in rep.commands.items():
        print(f"{label:44s} {s.wall_median:11.3f}s {s.cpu_median:10.3f}s")
    for tree, rows in rep.stages.items():
        print(f"\nstart-up stages, {tree} (median; ms):")
        for name, wall, cpu in rows:
            if name == "scipy imported":
                print(f"  SciPy imported: {'yes' if wall else 'no'}")
            else:
                print(f"  {name:70s} wall {wall * 1e3:7.1f}  CPU {cpu * 1e3:7.1f}")


def main(argv: list[str] | None = None) -> StartupReport:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="rounds (median)")
    parser.add_argument("--before", help="another src/ directory to compare with")
    parser.add_argument("--no-stages", action="store_true", help="skip the stage breakdown")
    args = parser.parse_args(argv)
    header("start-up: one-packet file, whole process, beside tshark and tcpdump")
    with tempfile.TemporaryDirectory() as tmp:
        one = write_one_packet(Path(tmp) / "one.pcap")
        rep = StartupReport(side_by_side(one, args.before, args.reps))
        if not args.no_stages:
            rep.stages["this tree"] = stages(one, None, args.reps)
            if args.before is not None:
                rep.stages["before"] = stages(one, args.before, args.reps)
    report(rep)
    return rep


def figures(rep: StartupReport) -> list[Figure]:
    """The suite's start-up row: the one-packet run, <= 0.25 s and <= tshark's time
    (``import netscope`` is printed by ``main``, not a suite row)."""
    ns = rep.commands["netscope --read-pcap ONE"]
    tshark = rep.commands.get("tshark -r ONE")
    target = f"<= {TARGET_ONE_PACKET_S:g} s and <= tshark's time"
    if tshark is None:
        return [not_measured(ONE_PACKET_ROW, target, "tshark not installed")]
    return [
        Figure(
            ONE_PACKET_ROW,
            target,
            ns.wall_median,
            "s",
            ns.wall_median <= TARGET_ONE_PACKET_S and ns.wall_median <= tshark.wall_median,
            measured_text=(
                f"{ns.wall_median:.3f} s (CPU {ns.cpu_median:.3f} s); tshark "
                f"{tshark.wall_median:.3f} s (CPU {tshark.cpu_median:.3f} s)"
            ),
            samples=ns.wall,
            extra={"cpu_s": list(ns.cpu), "tshark_s": list(tshark.wall)},
        )
    ]


if __name__ == "__main__":
    main()

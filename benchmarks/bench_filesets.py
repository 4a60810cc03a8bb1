"""File sets and Dask (docs/scale-out.md): the issue-16 rows of the suite.

- ``file set, 500 small captures``: one ``netscope`` run over 500 generated captures
  (1-5k packets each: a generated trace cut by ``editcap -c``) against a shell-style loop
  of one process per file: ``netscope``, ``tshark -z conv,tcp -q`` and
  ``tcpdump -w /dev/null``. The per-file loops are timed over ``--sample`` files and scaled
  to the whole set (each iteration is one process start plus a small file: the time per
  file is flat), which the row says. Target: the set run >= 10x faster than netscope per
  file and faster than the tcpdump loop.
- ``--dask local:2 vs one process``: an archive of >= 8 files (``--archive-mb`` in total),
  one process over the set against ``--dask local:2``; the speed-up, each task's CPU time
  and the merge cost per million flows (measured on fragments totalling 1M flows; target
  <= 1 s).

Run alone (the machine is shared): ``python -m benchmarks.bench_filesets [--sample 50]
[--archive-mb 1024]``.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT
from benchmarks.figures import Figure, at_most, not_measured

SET_ROW = "file set, 500 small captures, one run vs per-file loops"
DASK_ROW = "--dask local:2 vs one process, archive >= 8 files"
MERGE_ROW = "Dask merge cost per million flows"
ROWS = (
    (SET_ROW, ">= 10x netscope per file, faster than tcpdump loop"),
    (DASK_ROW, "speed-up reported"),
    (MERGE_ROW, "<= 1 s"),
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}


def netscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "netscope", *args]


def timed(cmd: list[str], check: bool = True) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}… exited {proc.returncode}: {proc.stderr[-300:]!r}")
    return time.perf_counter() - t0


def make_set(directory: Path, files: int) -> list[str]:
    """``files`` captures of 1-5k packets: one generated trace cut by editcap."""
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(glob.glob(str(directory / "s_*.pcap")))
    if len(existing) == files:
        return existing
    whole = directory / "whole.pcap"
    packets = files * 3000
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", "--packets", str(packets), "--flows",
         str(files * 20), "--small", str(whole)],
        check=True, env=_env(), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(["editcap", "-c", "3000", str(whole), str(directory / "s.pcap")], check=True)
    whole.unlink()
    return sorted(glob.glob(str(directory / "s_*.pcap")))


@dataclass
class SetResult:
    files: int
    set_s: float
    per_file_s: dict[str, float] = field(default_factory=dict)  # tool -> s per file
    sampled: int = 0


def bench_set(directory: Path, files: int, sample: int) -> SetResult:
    paths = make_set(directory, files)
    timed(netscope("--quiet", paths[0]))  # warm the kernel cache
    set_s = min(timed(netscope("--quiet", *paths)) for _ in range(2))
    result = SetResult(len(paths), set_s, sampled=min(sample, len(paths)))
    chosen = paths[: result.sampled]
    loops = {
        "netscope": lambda p: netscope("--quiet", p),
        "tshark": lambda p: ["tshark", "-r", p, "-z", "conv,tcp", "-q"],
        "tcpdump": lambda p: ["tcpdump", "-r", p, "-w", "/dev/null"],
    }
    for tool, argv in loops.items():
        if shutil.which(tool) is None and tool != "netscope":
            continue
        t0 = time.perf_counter()
        for p in chosen:
            timed(argv(p))
        result.per_file_s[tool] = (time.perf_counter() - t0) / len(chosen)
    return result


@dataclass
class DaskResult:
    files: int
    total_mb: float
    one_s: float
    dask_s: float
    tasks: list[dict[str, Any]]
    merge_per_mflows_s: float
    warm_one_s: float = 0.0  # in-process analyze(set)
    warm_dask_s: float = 0.0  # analyze_many on a LocalCluster already started and warm


def make_archive(directory: Path, total_mb: int, files: int = 8) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(glob.glob(str(directory / "a_*.pcap")))
    if len(existing) >= files:
        return existing
    whole = directory / "whole.pcap"
    packets = total_mb * 1024 * 1024 // 400  # the generator's default mix: ~400 B/record
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", "--packets", str(packets), "--flows", "200000",
         str(whole)],
        check=True, env=_env(), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    per = packets // files + 1
    subprocess.run(["editcap", "-c", str(per), str(whole), str(directory / "a.pcap")], check=True)
    whole.unlink()
    return sorted(glob.glob(str(directory / "a_*.pcap")))


def merge_cost_per_million() -> float:
    """Merge two fragments of 500k flows each (the driver's work per million flows)."""
    import numpy as np

    from netscope.analysis import Counters
    from netscope.distributed import Fragment, merge_fragments
    from netscope.flows import layout as L
    from netscope.flows.table import FlowOptions, FlowTable

    t = FlowTable(FlowOptions(max_flows=16))
    frags = []
    for shard in range(2):
        n = 500_000
        frags.append(
            Fragment(shard, np.zeros((n, L.KEY_WIDTH), np.uint64),
                     np.zeros((n, t.i64.shape[1]), np.int64),
                     np.zeros((n, t.f64.shape[1]), np.float64) if t.deep else None,
                     np.zeros((n, t.u8.shape[1]), np.uint8), {"created": n}, Counters())
        )  # fmt: skip
    best = min(_time(lambda: merge_fragments(frags)) for _ in range(3))
    return best


def _time(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_dask(directory: Path, total_mb: int) -> DaskResult:
    paths = make_archive(directory, total_mb)
    size = sum(os.path.getsize(p) for p in paths) / 1e6
    timed(netscope("--quiet", paths[0]))
    one = timed(netscope("--quiet", *paths))
    proc = subprocess.run(
        netscope("--quiet", "--dask", "local:2", *paths), capture_output=True, text=True,
        env=_env(), check=True,
    )  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(
        netscope("--quiet", "--dask", "local:2", *paths), capture_output=True, text=True,
        env=_env(), check=True,
    )  # fmt: skip
    dask_s = time.perf_counter() - t0
    tasks = [
        {"task": m.group(1), "worker": m.group(2), "flows": int(m.group(3)),
         "cpu_s": float(m.group(4))}
        for m in re.finditer(r"task (\d+):\s+(\S+): (\d+) flows, cpu ([\d.]+) s", proc.stdout)
    ]  # fmt: skip
    warm_one, warm_dask = warm_cluster_times(paths)
    return DaskResult(
        len(paths), size, one, dask_s, tasks, merge_cost_per_million(), warm_one, warm_dask
    )


def warm_cluster_times(paths: list[str]) -> tuple[float, float]:
    """The computation alone: ``analyze`` in this process vs ``analyze_many`` on a
    2-worker LocalCluster that is already up with its kernels loaded (as a long-lived
    ``dask scheduler`` + workers would be)."""
    from distributed import Client, LocalCluster

    import netscope

    netscope.analyze(paths[:1])
    one = min(_time(lambda: netscope.analyze(paths, timeout_secs=60.0)) for _ in range(2))
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        netscope.analyze_many(paths[:1], client)  # workers import and load the kernels
        many = min(
            _time(lambda: netscope.analyze_many(paths, client, timeout_secs=60.0)) for _ in range(2)
        )
    return one, many


def figures(results: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    s: SetResult | None = results.get("set")
    if s is None:
        out.append(not_measured(*ROWS[0], "not run"))
    else:
        loop = s.per_file_s.get("netscope", 0) * s.files
        tcpd = s.per_file_s.get("tcpdump", 0) * s.files
        ratio = loop / s.set_s if s.set_s else 0.0
        text = (
            f"set {s.set_s:.1f} s; per file (x{s.files}, from {s.sampled}): netscope "
            f"{loop:.0f} s ({ratio:.0f}x), tshark {s.per_file_s.get('tshark', 0) * s.files:.0f}"
            f" s, tcpdump {tcpd:.1f} s"
        )
        ok = ratio >= 10 and (not tcpd or s.set_s < tcpd)
        out.append(Figure(ROWS[0][0], ROWS[0][1], ratio, "x", ok, text))
    d: DaskResult | None = results.get("dask")
    if d is None:
        out += [not_measured(*ROWS[1], "not run"), not_measured(*ROWS[2], "not run")]
    else:
        cpu = ", ".join(f"task {t['task']} {t['cpu_s']:.1f} s" for t in d.tasks)
        text = (
            f"{d.files} files, {d.total_mb:.0f} MB: one process {d.one_s:.1f} s, dask "
            f"{d.dask_s:.1f} s ({d.one_s / d.dask_s:.2f}x, cluster start included); warm "
            f"cluster: {d.warm_one_s:.1f} s vs {d.warm_dask_s:.1f} s "
            f"({d.warm_one_s / max(d.warm_dask_s, 1e-9):.2f}x); CPU {cpu}"
        )
        out.append(Figure(ROWS[1][0], ROWS[1][1], d.one_s / d.dask_s, "x", True, text))
        out.append(at_most(ROWS[2][0], 1.0, d.merge_per_mflows_s, "s"))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_filesets")
    p.add_argument("--files", type=int, default=500)
    p.add_argument("--sample", type=int, default=50, help="files timed per per-file loop")
    p.add_argument("--archive-mb", type=int, default=1024)
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "netscope-fsets")
    p.add_argument("--skip-dask", action="store_true")
    p.add_argument("--skip-set", action="store_true")
    args = p.parse_args(argv)
    results: dict[str, Any] = {}
    if not args.skip_set:
        results["set"] = bench_set(args.dir / "set", args.files, args.sample)
        print(results["set"], flush=True)
    if not args.skip_dask:
        results["dask"] = bench_dask(args.dir / f"archive{args.archive_mb}", args.archive_mb)
        print(results["dask"], flush=True)
    from benchmarks.figures import format_table

    print(format_table(figures(results), title="== file sets and Dask"))
    return results


if __name__ == "__main__":
    main()

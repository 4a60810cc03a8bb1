"""``python -m benchmarks``: every benchmark, then one table of the SPEC §9 targets.

Each section prints what it always printed (``python -m benchmarks.bench_parse`` and so on
are unchanged); the suite then turns their results into :class:`~benchmarks.figures.Figure`
rows, adds the side-by-side comparison with tcpdump, tshark and a dpkt loop
(``benchmarks.compare``), and ends with the table: figure, target, measured, status.

Options:

- ``--quick``: fewer repetitions, the small generated traces of ``traces.quick_traces``
  instead of the 2M-packet ones (the 1.67 GB reference trace is not touched), no dashboard
  run. For development and smoke tests: the figures are not comparable with a full run.
- ``--cold``: also time a first run with an empty kernel cache (tens of seconds).
- ``--json PATH``: every figure with its raw samples, and the comparison's samples.
- ``--no-compare``: skip the side-by-side comparison.
- ``--generator genpcap|netscope``: what makes the reference trace if it is missing.
- ``--at REV``: benchmark the ``src/`` of a commit instead of the working tree (extracted
  once to ``$TMPDIR/netscope-bench-src/SHA``; the suite re-executes itself with that
  directory first on ``PYTHONPATH``, so every child process runs it too). For a shared
  checkout whose kernels someone is editing: every edit of a kernel file changes the kernel
  cache's fingerprint, and runs would otherwise recompile mid-benchmark.

A section that fails prints its error and leaves its rows ``n/a``; the exit status is 1 then
(and 0 otherwise, whatever passed or failed: targets are reported, not enforced).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.figures import Figure, format_table, not_measured

# Every SPEC §9 row, in the SPEC's order: (figure name, target). The benchmark modules'
# ``figures()`` produce rows with exactly these names (tests/benchmarks checks it).
SPEC_ROWS: tuple[tuple[str, str], ...] = (
    ("parse_packet, 54-byte SYN", "<= 6 ns/pkt"),
    ("parse_packet, 1454-byte data", "<= 6 ns/pkt"),
    ("flow_observe, existing flow", "<= 25 ns/pkt"),
    ("flow_observe, new flow (steady state)", "<= 150 ns/pkt"),
    ("shard_routing, 4 shards", "<= 4 ns/pkt"),
    ("handshake_sequence (parse + observe)", "<= 60 ns/pkt"),
    ("offline e2e, small packets, deep analysis", ">= 5 Mpps and faster than tcpdump"),
    ("offline e2e, reference trace, vs tcpdump", "faster than tcpdump (< 1.00x its time)"),
    ("pipeline, 2 workers vs inline", ">= 1.7x"),
    ("anomaly overhead (--anomalies), end to end", "<= 15 %"),
    ("anomaly cost per packet, spoofed SYN flood", "<= 100 ns/pkt"),
    ("offline BPF, 'tcp port 443'", "<= 10 ns/pkt"),
    ("1M synthetic scale-mode flows", "< 150 MB RSS, < 1 s"),
    ("netscope --help", "< 0.3 s"),
    ("warm start to first packet (1-packet file)", "< 1.5 s"),
    ("start-up: one-packet file, whole process", "<= 0.25 s and <= tshark's time"),
    ("first run after install (compiles)", "< 20 s"),
    # file sets and Dask (issue 16, docs/scale-out.md; benchmarks.bench_filesets)
    (
        "file set, 500 small captures, one run vs per-file loops",
        ">= 10x netscope per file, faster than tcpdump loop",
    ),
    ("--dask local:2 vs one process, archive >= 8 files", "speed-up reported"),
    ("Dask merge cost per million flows", "<= 1 s"),
    ("dashboard at tick_ms = 33", ">= 29 fps, p95 < 50 ms"),
    # issue 17 (IPFIX export), not SPEC §9: benchmarks/bench_ipfix.py
    ("IPFIX encode, 1M flows (CPU)", "<= 1 s"),
    ("IPFIX export overhead, whole process", "<= 10 %"),
)
# Targets added after SPEC §9 (issue 15, flow exports): rows appended after the SPEC's.
EXPORT_ROWS: tuple[tuple[str, str], ...] = (
    ("to_arrow(), 1M flows", "<= 0.3 s"),
    ("--export-parquet, whole-process overhead", "<= 10 %"),
    ("analyze().to_pandas() vs NFStream to_pandas()", "faster than NFStream (< 1.00x its time)"),
)
SPEC_ROWS += EXPORT_ROWS


@dataclass(frozen=True)
class Section:
    """One benchmark: its name, how to run it (returns its results, printing as it always
    did) and how its results become figures."""

    name: str
    run: Callable[[], Any]
    figures: Callable[[Any], list[Figure]]


def assemble(collected: Sequence[Figure], missing_reason: dict[str, str]) -> list[Figure]:
    """One figure per SPEC row, in SPEC order; rows nobody measured become ``n/a``.

    ``missing_reason`` maps a figure name to why it is missing (e.g. its section failed);
    rows absent from both say "not measured". A collected figure whose name is not a SPEC
    row is a programming error: raised, not silently dropped.
    """
    by_name = {f.name: f for f in collected}
    unknown = set(by_name) - {name for name, _ in SPEC_ROWS}
    if unknown:
        raise ValueError(f"figures not in SPEC_ROWS: {sorted(unknown)}")
    return [
        by_name.get(name) or not_measured(name, target, missing_reason.get(name, "not measured"))
        for name, target in SPEC_ROWS
    ]


def sections(args: argparse.Namespace) -> list[Section]:
    """The benchmarks to run for these options, each with the arguments it gets."""
    from benchmarks import (
        bench_anomaly,
        bench_bpf,
        bench_e2e_decode,
        bench_exports,
        bench_filesets,
        bench_flows,
        bench_ipfix,
        bench_parse,
        bench_pipeline,
        bench_process,
        bench_startup,
        traces,
    )

    if args.quick:
        mixed, small = traces.quick_traces()
        reps = ["--reps", "1"]
        parse_args = ["--reps", "20", "--no-reference"]
        flow_args = ["--quick"]
        bpf_args = ["--reps", "5", "--generated", "--clauses", "10,100"]  # tcpdump: 1000 = minutes
        pipe_args = ["--trace", str(mixed), *reps, "--workers", "2", "--routing-reps", "20"]
        anomaly_args = [*reps, "--caps", "", "--small", str(small), "--mixed", str(mixed)]
        process_args = list(reps)
        ipfix_args = ["--trace", str(mixed), "--repeats", "1"]
        fileset_args = ["--files", "100", "--sample", "5", "--archive-mb", "64"]
    else:
        mixed, small = traces.ensure_reference(args.generator), traces.ensure_small()
        reps = ["--reps", str(args.reps)]
        parse_args, flow_args, bpf_args = [], [], []
        pipe_args = ["--trace", str(mixed), *reps]
        anomaly_args = [*reps, "--small", str(small), "--mixed", str(mixed)]
        process_args = [*reps, "--dashboard"]
        ipfix_args = ["--trace", str(mixed), "--repeats", str(args.reps)]
        fileset_args = []
    e2e_args = ["--reference", str(mixed), "--small", str(small), *reps]
    if args.cold:
        process_args.append("--cold")
    e2e_holder: dict[str, Any] = {}

    def run_e2e() -> Any:
        e2e_holder["report"] = bench_e2e_decode.main(e2e_args)
        return e2e_holder["report"]

    out = [
        Section("parse_packet", lambda: bench_parse.main(parse_args), bench_parse.figures),
        Section("flow table", lambda: bench_flows.main(flow_args), bench_flows.figures),
        Section("offline BPF", lambda: bench_bpf.main(bpf_args), bench_bpf.figures),
        Section(
            "offline end to end",
            run_e2e,
            lambda r: [*bench_e2e_decode.figures(r), bench_e2e_decode.warm_start_figure(r)],
        ),
        Section("pipeline", lambda: bench_pipeline.main(pipe_args), bench_pipeline.figures),
        Section("anomaly", lambda: bench_anomaly.main(anomaly_args), bench_anomaly.figures),
        Section(
            "whole process",
            lambda: bench_process.main(process_args),
            lambda r: [
                bench_process.synthetic_figure(r),
                bench_process.help_figure(r),
                bench_process.cold_figure(r),
                bench_process.dashboard_figure(r, "skipped by --quick"),
            ],
        ),
        Section("ipfix", lambda: bench_ipfix.main(ipfix_args), bench_ipfix.figures),
    ]
    startup_args = ["--reps", "3", "--no-stages"] if args.quick else ["--reps", str(args.reps)]
    out.append(Section("start-up", lambda: bench_startup.main(startup_args), bench_startup.figures))
    if not args.quick:  # hundreds of processes and a GB archive: not a smoke run's work
        out.append(
            Section(
                "file sets",
                lambda: bench_filesets.main(fileset_args),
                bench_filesets.figures,
            )
        )
    export_args = ["--trace", str(mixed), *reps]
    out.append(
        Section("flow exports", lambda: bench_exports.main(export_args), bench_exports.figures)
    )
    if not args.no_compare:
        from benchmarks import compare

        compare_args = ["--trace", str(mixed), "--trace", str(small), *reps]
        out.append(Section("side by side", lambda: compare.main(compare_args), lambda _: []))
    return out


# the rows each section measures (to say why they are missing if it fails)
SECTION_ROWS: dict[str, tuple[str, ...]] = {
    "parse_packet": ("parse_packet, 54-byte SYN", "parse_packet, 1454-byte data"),
    "flow table": (
        "flow_observe, existing flow",
        "flow_observe, new flow (steady state)",
        "handshake_sequence (parse + observe)",
    ),
    "offline BPF": ("offline BPF, 'tcp port 443'",),
    "offline end to end": (
        "offline e2e, small packets, deep analysis",
        "offline e2e, reference trace, vs tcpdump",
        "warm start to first packet (1-packet file)",
    ),
    "pipeline": ("shard_routing, 4 shards", "pipeline, 2 workers vs inline"),
    "anomaly": (
        "anomaly overhead (--anomalies), end to end",
        "anomaly cost per packet, spoofed SYN flood",
    ),
    "whole process": (
        "1M synthetic scale-mode flows",
        "netscope --help",
        "first run after install (compiles)",
        "dashboard at tick_ms = 33",
    ),
    "start-up": ("start-up: one-packet file, whole process",),
    "ipfix": ("IPFIX encode, 1M flows (CPU)", "IPFIX export overhead, whole process"),
    "file sets": (
        "file set, 500 small captures, one run vs per-file loops",
        "--dask local:2 vs one process, archive >= 8 files",
        "Dask merge cost per million flows",
    ),
    "flow exports": tuple(name for name, _ in EXPORT_ROWS),
}


def to_json(results: dict[str, Any]) -> Any:
    """Raw results as JSON-able data (dataclasses → dicts, tuples → lists)."""
    import dataclasses

    def conv(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            if hasattr(x, "to_dict"):
                return conv(x.to_dict())
            return {f.name: conv(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, dict):
            return {str(k): conv(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [conv(v) for v in x]
        if isinstance(x, Path):
            return str(x)
        if isinstance(x, float | int | str | bool) or x is None:
            return x
        return repr(x)

    return conv(results)


REV_ENV = "NETSCOPE_BENCH_REV"


def _git(*args: str) -> str:
    from benchmarks.common import REPO_ROOT

    cmd = ["git", "-C", str(REPO_ROOT), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def snapshot_src(rev: str) -> tuple[str, Path]:
    """(full sha, directory holding ``src/`` of ``rev``), extracted once per commit."""
    from benchmarks.common import REPO_ROOT

    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    root = Path(tempfile.gettempdir()) / "netscope-bench-src" / sha
    if not (root / "src" / "netscope").is_dir():
        tmp = root.with_name(f"{sha}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", sha, "src"],
                                 capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        # built, not committed: the dashboard's bundled Chart.js (make web-assets)
        vendor = Path("src/netscope/web/static/vendor")
        if (REPO_ROOT / vendor).is_dir():
            shutil.copytree(REPO_ROOT / vendor, tmp / vendor, dirs_exist_ok=True)
        tmp.replace(root)
    return sha, root


def source_description() -> str:
    """Which NetScope source this run measures: a snapshot, or the working tree's HEAD
    (saying so when ``src/`` has uncommitted changes)."""
    if os.environ.get(REV_ENV):
        return f"netscope src at {os.environ[REV_ENV][:12]} (snapshot)"
    try:
        sha = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "src")
    except (OSError, subprocess.CalledProcessError):
        return "netscope src (not a git checkout)"
    return f"netscope src at {sha}" + (" + uncommitted changes" if dirty else "")


def reexec_at(rev: str, argv: list[str]) -> None:
    """Run the suite again, on the ``src/`` of ``rev`` (never returns)."""
    sha, root = snapshot_src(rev)
    rest = list(argv)
    i = rest.index("--at")
    del rest[i : i + 2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "src"), env.get("PYTHONPATH")) if p)
    env[REV_ENV] = sha
    print(f"benchmarking src/ of {rev} = {sha[:12]} from {root}", flush=True)
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *rest], env)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every NetScope benchmark and print one table of the SPEC targets.",
    )
    p.add_argument("--quick", action="store_true", help="fewer reps, small traces (smoke run)")
    p.add_argument("--cold", action="store_true", help="also time a first run (empty cache)")
    p.add_argument("--json", type=Path, help="write every figure and raw sample here")
    p.add_argument("--no-compare", action="store_true", help="skip the side-by-side tables")
    p.add_argument("--reps", type=int, default=5, help="whole-process runs per command")
    p.add_argument("--generator", choices=("genpcap", "netscope"), default="genpcap",
                   help="what makes the reference trace if it is missing")  # fmt: skip
    p.add_argument("--at", metavar="REV", help="benchmark src/ of this commit (e.g. HEAD)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.at:
        reexec_at(args.at, argv)
    import netscope.engine  # noqa: F401  (sets NUMBA_CACHE_DIR before numba is imported)
    from benchmarks.common import machine_description

    started = time.perf_counter()
    collected: list[Figure] = []
    missing: dict[str, str] = {}
    raw: dict[str, Any] = {}
    failed = False
    for section in sections(args):
        try:
            result = section.run()
            raw[section.name] = result
            collected.extend(section.figures(result))
        except Exception as exc:  # noqa: BLE001 - reported; the other sections still run
            failed = True
            traceback.print_exc()
            print(f"!! section {section.name!r} failed: {exc}", flush=True)
            for name in SECTION_ROWS.get(section.name, ()):
                missing[name] = f"error in {section.name}"
        print(flush=True)
    table = assemble(collected, missing)
    elapsed = time.perf_counter() - started
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick (not comparable with full runs)" if args.quick else "full"
    source = source_description()
    print(format_table(table, title=f"== SPEC §9 targets ({mode}; {stamp}; {elapsed:.0f} s)"))
    print(f"   {source}")
    print(f"   machine: {machine_description()}; load average {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": stamp,
                    "mode": mode,
                    "machine": machine_description(),
                    "source": source,
                    "figures": [f.to_dict() for f in table],
                    "raw": to_json(raw),
                },
                indent=1,
            )
        )
    return 1 if failed else 0

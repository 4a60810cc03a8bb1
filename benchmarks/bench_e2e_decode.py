"""Offline end to end: ``netscope --read-pcap T --quiet`` vs ``tcpdump -r T -w /dev/null``.

Whole-process wall time (start-up, imports, kernel cache load, reading, decoding, flow
tracking, summary), median of 5 runs after one untimed run that warms the page cache and the
numba cache — so the figures are about steady-state use, not about the disk or the first JIT.
tcpdump on the same file is the yardstick SPEC §9 names ("faster than tcpdump -r FILE -w
/dev/null"); it reads and re-writes every record without decoding, so it is a floor for "just
get the packets through", not an equivalent workload.

Workloads:

- the reference trace ``/work/bench/mixed-2m.pcap`` (tools/genpcap.py --packets 2000000
  --flows 20000 --seed 1; realistic sizes, ~1.67 GB), generated on first use
  (``benchmarks.traces``; ``--generator netscope`` uses our own generator instead). If it is
  still being generated, we wait for its ``.truth.json`` to be written.
- a 2M-packet small-packet trace from ``netscope.gen.traffic`` (1-64 byte payloads), generated
  on first use at the path given by ``--small`` — this is the ">= 5 M packets/s on small
  packets" workload.

To say *where* the time goes, the same file is also run in-process phase by phase (reader
only; + decode; + flow table), and process start-up is measured on a one-packet file.

Run: ``python -m benchmarks.bench_e2e_decode [--reps 5] [--small PATH] [--skip-reference]
[--reference PATH] [--generator genpcap|netscope]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import traces
from benchmarks.common import REPO_ROOT, Timing, fmt_row, header, time_process, time_reps
from benchmarks.figures import Figure, at_most, not_measured

SMALL_DEFAULT = traces.small_path()
TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"
TARGET_SMALL_MPPS = 5.0
TARGET_WARM_START_S = 1.5
ONE_PACKET = "netscope on a 1-packet file"


@dataclass(frozen=True)
class E2EResult:
    trace: str
    packets: int
    netscope: Timing
    tcpdump: Timing | None
    phases: dict[str, float]

    @property
    def mpps(self) -> float:
        return self.packets / self.netscope.median / 1e6

    @property
    def ratio(self) -> float | None:
        """netscope time / tcpdump time (< 1 means netscope is faster)."""
        return self.netscope.median / self.tcpdump.median if self.tcpdump else None


def ensure_small_trace(path: Path, packets: int = 2_000_000) -> Path:
    """Generate the small-packet trace once (deterministic, so reuse is safe)."""
    return traces.ensure_generated(path, packets, traces.SMALL_FLOWS, small_packets=True)


def netscope_cmd(trace: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "netscope", "--read-pcap", str(trace), "--quiet", *extra]


def count_packets(trace: Path) -> int:
    """Packets in ``trace`` according to netscope's own summary."""
    out = subprocess.run(netscope_cmd(trace), capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("Packets captured:"):
            return int(line.split(":", 1)[1])
    raise RuntimeError(f"no packet count in output:\n{out}")


def in_process_phases(trace: Path) -> dict[str, float]:
    """Best-of-3 seconds for reader only, reader + decode, reader + decode + flow table.

    Differences between rows attribute the end-to-end time; what is left over in the whole
    process run is start-up (interpreter, imports, kernel cache load) and the summary.
    """
    import netscope.engine

    netscope.engine.warm_up(announce=False)
    from netscope.analysis import Analyzer
    from netscope.sources import open_capture_file

    def read_only() -> None:
        reader = open_capture_file(trace)
        for _ in reader.batches():
            pass
        reader.close()

    def read_decode() -> None:
        analyzer = Analyzer()
        reader = open_capture_file(trace)
        for batch in reader.batches():
            analyzer.process(batch)
        reader.close()

    phases: dict[str, Callable[[], None]] = {
        "reader only": read_only,
        "reader + decode": read_decode,
    }
    try:
        from netscope.flows.table import FlowOptions
        from netscope.pipeline.inline import InlineProcessor

        def read_decode_flows() -> None:
            processor = InlineProcessor(FlowOptions())
            reader = open_capture_file(trace)
            for batch in reader.batches():
                processor.feed(batch)
            processor.finish()
            reader.close()

        phases["reader + decode + flows"] = read_decode_flows
    except ImportError:
        pass
    return {name: time_reps(fn, reps=3, warmup=1).best for name, fn in phases.items()}


def startup_costs(reps: int) -> dict[str, float]:
    """Median seconds of the fixed costs every run pays, whatever the file size."""
    from netscope.gen.pcapfile import write_pcap

    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.pcap"
        write_pcap(one, [(0, bytes(60))])
        return {
            "python -c pass": time_process([sys.executable, "-c", "pass"], reps).median,
            "python -c 'import numba'": time_process(
                [sys.executable, "-c", "import numba"], reps
            ).median,
            "netscope --version": time_process(
                [sys.executable, "-m", "netscope", "--version"], reps
            ).median,
            ONE_PACKET: time_process(netscope_cmd(one), reps).median,
        }


def bench_trace(trace: Path, reps: int) -> E2EResult:
    packets = count_packets(trace)  # also the warm-up run (page cache, kernel cache)
    ns = time_process(netscope_cmd(trace), reps, warmup=1)
    td = None
    if Path(TCPDUMP).exists():
        td = time_process([TCPDUMP, "-r", str(trace), "-w", "/dev/null"], reps, warmup=1)
    return E2EResult(trace.name, packets, ns, td, in_process_phases(trace))


def report(results: list[E2EResult], startup: dict[str, float]) -> None:
    print(fmt_row("trace", "packets", "netscope s", "Mpps", "tcpdump s", "vs tcpdump"))
    for r in results:
        td = f"{r.tcpdump.median:.3f}" if r.tcpdump else "n/a"
        ratio = f"{r.ratio:.2f}x time" if r.ratio is not None else "n/a"
        print(fmt_row(r.trace, str(r.packets), f"{r.netscope.median:.3f}", f"{r.mpps:.2f}",
                      td, ratio))  # fmt: skip
    for r in results:
        print(f"   in-process phases, {r.trace} (best of 3, seconds):")
        for name, secs in r.phases.items():
            print(fmt_row(f"  {name}", f"{secs:.3f}", f"{r.packets / secs / 1e6:.2f} Mpps"))
    print("   fixed start-up costs (median seconds):")
    for name, secs in startup.items():
        print(fmt_row(f"  {name}", f"{secs:.3f}"))


@dataclass(frozen=True)
class E2EReport:
    """Everything one run of this benchmark measured."""

    results: list[E2EResult]
    startup: dict[str, float]
    small: str  # file name of the small-packet trace
    reference: str | None  # file name of the reference trace (None: skipped)


def main(argv: list[str] | None = None) -> E2EReport:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed runs per command (median)")
    parser.add_argument("--small", type=Path, default=SMALL_DEFAULT, help="small-packet trace")
    parser.add_argument("--skip-reference", action="store_true", help="only the small trace")
    parser.add_argument(
        "--reference",
        type=Path,
        help="reference trace to use as is (default: mixed-2m.pcap, generated if missing)",
    )
    parser.add_argument(
        "--generator",
        choices=("genpcap", "netscope"),
        default="genpcap",
        help="what makes the reference trace if it is missing",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    header("offline end to end: netscope --read-pcap T --quiet vs tcpdump -r T -w /dev/null")
    paths: list[Path] = []
    if not args.skip_reference:
        paths.append(args.reference or traces.ensure_reference(args.generator))
    paths.append(ensure_small_trace(args.small))
    results = [bench_trace(t, args.reps) for t in paths]
    startup = startup_costs(args.reps)
    report(results, startup)
    for r in results:
        if r.trace == args.small.name:
            verdict = "ok" if r.mpps >= TARGET_SMALL_MPPS else "MISSED"
            print(f"   target >= {TARGET_SMALL_MPPS:g} Mpps on small packets: {verdict}")
        if r.ratio is not None:
            print(f"   {r.trace}: faster than tcpdump: {'yes' if r.ratio < 1 else 'NO'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": [
                        {
                            "trace": r.trace,
                            "packets": r.packets,
                            "netscope_s": r.netscope.samples,
                            "tcpdump_s": r.tcpdump.samples if r.tcpdump else None,
                            "phases_s": r.phases,
                        }
                        for r in results
                    ],
                    "startup_s": startup,
                    "cwd": str(REPO_ROOT),
                },
                indent=1,
            )
        )
    reference = None if args.skip_reference else paths[0].name
    return E2EReport(results, startup, args.small.name, reference)


def figures(report: E2EReport) -> list[Figure]:
    """Small packets (Mpps and vs tcpdump), the reference trace vs tcpdump, warm start."""
    by_trace = {r.trace: r for r in report.results}
    small = by_trace[report.small]
    small_name = "offline e2e, small packets, deep analysis"
    small_target = f">= {TARGET_SMALL_MPPS:g} Mpps and faster than tcpdump"
    out: list[Figure] = []
    samples = tuple(small.packets / t / 1e6 for t in small.netscope.samples)
    if small.ratio is None:
        out.append(not_measured(small_name, small_target, "tcpdump not installed"))
    else:
        out.append(
            Figure(
                small_name,
                small_target,
                small.mpps,
                "Mpps",
                small.mpps >= TARGET_SMALL_MPPS and small.ratio < 1.0,
                measured_text=f"{small.mpps:.2f} Mpps, {small.ratio:.2f}x tcpdump's time",
                samples=samples,
                extra={"trace": small.trace, "tcpdump_s": list(small.tcpdump.samples)}
                if small.tcpdump
                else {},
            )
        )
    ref_name = "offline e2e, reference trace, vs tcpdump"
    ref_target = "faster than tcpdump (< 1.00x its time)"
    ref = by_trace.get(report.reference) if report.reference else None
    if ref is None:
        out.append(not_measured(ref_name, ref_target, "skipped (no reference trace)"))
    elif ref.ratio is None or ref.tcpdump is None:
        out.append(not_measured(ref_name, ref_target, "tcpdump not installed"))
    else:
        out.append(
            at_most(
                ref_name,
                1.0,
                ref.ratio,
                "x",
                [n / ref.tcpdump.median for n in ref.netscope.samples],
                strict=True,
                measured_text=(
                    f"{ref.ratio:.2f}x tcpdump's time ({ref.netscope.median:.3f} s vs "
                    f"{ref.tcpdump.median:.3f} s, {ref.trace})"
                ),
                target_text=ref_target,
                extra={"trace": ref.trace, "tcpdump_s": list(ref.tcpdump.samples)},
            )
        )
    return out


def warm_start_figure(report: E2EReport) -> Figure:
    """Whole-process time on a one-packet file: start-up up to the first packet and out."""
    return at_most(
        "warm start to first packet (1-packet file)",
        TARGET_WARM_START_S,
        report.startup[ONE_PACKET],
        "s",
        strict=True,
    )


if __name__ == "__main__":
    main()

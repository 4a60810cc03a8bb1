"""Offline end to end: ``netscope --read-pcap T --quiet`` vs ``tcpdump -r T -w /dev/null``.

Whole-process wall time (start-up, imports, kernel cache load, reading, decoding, flow
tracking, summary), median of 5 runs after one untimed run that warms the page cache and the
numba cache — so the figures are about steady-state use, not about the disk or the first JIT.
tcpdump on the same file is the yardstick SPEC §9 names ("faster than tcpdump -r FILE -w
/dev/null"); it reads and re-writes every record without decoding, so it is a floor for "just
get the packets through", not an equivalent workload.

Workloads:

- the reference trace ``/work/bench/mixed-2m.pcap`` (tools/genpcap.py --packets 2000000
  --flows 20000 --seed 1; realistic sizes, ~1.67 GB). If it is still being generated, we wait
  for its ``.truth.json`` to be written.
- a 2M-packet small-packet trace from ``netscope.gen.traffic`` (1-64 byte payloads), generated
  on first use at the path given by ``--small`` — this is the ">= 5 M packets/s on small
  packets" workload.

To say *where* the time goes, the same file is also run in-process phase by phase (reader
only; + decode; + flow table), and process start-up is measured on a one-packet file.

Run: ``python -m benchmarks.bench_e2e_decode [--reps 5] [--small PATH] [--skip-reference]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import REPO_ROOT, Timing, fmt_row, header, time_process, time_reps

REFERENCE = Path("/work/bench/mixed-2m.pcap")
SMALL_DEFAULT = Path("/work/bench/small-2m.pcap")
TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"
TARGET_SMALL_MPPS = 5.0


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


def wait_for_reference(timeout_s: float = 3600.0) -> bool:
    """The reference trace is complete once genpcap has printed its truth JSON."""
    truth = REFERENCE.with_suffix(".truth.json")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if REFERENCE.is_file() and truth.is_file() and truth.stat().st_size > 0:
            return True
        print(f"   waiting for {truth} ...", flush=True)
        time.sleep(30)
    return False


def ensure_small_trace(path: Path, packets: int = 2_000_000) -> Path:
    """Generate the small-packet trace once (deterministic, so reuse is safe)."""
    if path.is_file() and path.stat().st_size > 0:
        return path
    from netscope.gen.traffic import generate

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.pcap")
    print(f"   generating {path} ({packets} small packets) ...", flush=True)
    generate(tmp, packets=packets, flows=20_000, seed=1, small_packets=True)
    tmp.replace(path)
    return path


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
            "netscope on a 1-packet file": time_process(netscope_cmd(one), reps).median,
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


def main(argv: list[str] | None = None) -> list[E2EResult]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed runs per command (median)")
    parser.add_argument("--small", type=Path, default=SMALL_DEFAULT, help="small-packet trace")
    parser.add_argument("--skip-reference", action="store_true", help="only the small trace")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    header("offline end to end: netscope --read-pcap T --quiet vs tcpdump -r T -w /dev/null")
    traces: list[Path] = []
    if not args.skip_reference:
        if wait_for_reference():
            traces.append(REFERENCE)
        else:
            print(f"   {REFERENCE} not available: skipped")
    traces.append(ensure_small_trace(args.small))
    results = [bench_trace(t, args.reps) for t in traces]
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
    return results


if __name__ == "__main__":
    main()

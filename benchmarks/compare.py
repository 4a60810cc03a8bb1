"""Side by side: other tools and every NetScope mode on the same trace files, in one run.

Whole-process wall time of each command (start-up included, output to /dev/null), on each
trace, with the runs of one round interleaved (tool after tool, then the next round) so a
change in the machine's load hits every tool alike:

- ``tcpdump -r T -w /dev/null``: reads and re-writes every record without decoding — the
  I/O floor, no flow analysis;
- ``tshark -r T -q -z conv,tcp -z conv,udp``: Wireshark's dissectors plus its TCP and UDP
  conversation tables (flow analysis);
- ``python benchmarks/dpkt_flows.py T``: a plain dpkt loop aggregating packets and bytes per
  direction of each 5-tuple, then printing the table (flow analysis);
- NetScope: inline (``--read-pcap T --quiet``, deep analysis), with ``--stats --top-flows
  10``, ``--pipeline --workers 2``, ``--anomalies``, and scale mode (a config with
  ``[analysis] rtt = retrans = out_of_order = false``).

Every row is the median of ``--reps`` runs, after one untimed run of each command (page
cache, numba cache). A tool whose first run shows that ``--reps`` runs would take longer
than ``--budget`` seconds (tshark and dpkt on the 2M-packet traces can) is run once only,
and the table says so. The ratio column is the tool's time over NetScope inline's time on
the same trace: above 1 means NetScope is faster.

Run: ``python -m benchmarks.compare [--trace T ...] [--reps 5] [--budget 180]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import traces
from benchmarks.common import REPO_ROOT, header

INLINE = "netscope inline (deep analysis)"
DPKT_SCRIPT = REPO_ROOT / "benchmarks" / "dpkt_flows.py"
SCALE_MODE_TOML = "[analysis]\nrtt = false\nretrans = false\nout_of_order = false\n"


@dataclass(frozen=True)
class Tool:
    """One command to time; ``{trace}`` in ``argv`` is replaced by the trace path."""

    label: str
    argv: tuple[str, ...]
    flow_analysis: bool

    def command(self, trace: Path) -> list[str]:
        return [a.replace("{trace}", str(trace)) for a in self.argv]


@dataclass(frozen=True)
class ToolResult:
    label: str
    samples: tuple[float, ...]
    flow_analysis: bool
    note: str = ""

    @property
    def failed(self) -> bool:
        return not self.samples

    @property
    def seconds(self) -> float:
        """Median seconds (NaN for a tool that failed)."""
        return statistics.median(self.samples) if self.samples else float("nan")


@dataclass(frozen=True)
class Comparison:
    """Every tool on one trace."""

    trace: str
    packets: int
    size_bytes: int
    reps: int
    rows: list[ToolResult]

    def baseline(self) -> ToolResult | None:
        return next((r for r in self.rows if r.label == INLINE and not r.failed), None)

    def ratio(self, row: ToolResult) -> float | None:
        """``row``'s time / NetScope inline's time (> 1: NetScope is faster)."""
        base = self.baseline()
        return row.seconds / base.seconds if base and not row.failed else None

    def to_dict(self) -> dict[str, object]:
        return {
            "trace": self.trace,
            "packets": self.packets,
            "size_bytes": self.size_bytes,
            "reps": self.reps,
            "rows": [
                {
                    "tool": r.label,
                    "seconds_median": r.seconds,
                    "samples_s": list(r.samples),
                    "packets_per_s": None if r.failed else self.packets / r.seconds,
                    "ratio_vs_netscope_inline": self.ratio(r),
                    "flow_analysis": r.flow_analysis,
                    "note": r.note,
                }
                for r in self.rows
            ],
        }


def default_tools(scale_config: Path) -> list[Tool]:
    """The other tools that are installed, then every NetScope mode."""
    tools: list[Tool] = []
    tcpdump = shutil.which("tcpdump")
    if tcpdump:
        tools.append(
            Tool(
                "tcpdump -r T -w /dev/null",
                (tcpdump, "-r", "{trace}", "-w", "/dev/null"),
                flow_analysis=False,
            )
        )
    tshark = shutil.which("tshark")
    if tshark:
        tools.append(
            Tool(
                "tshark -q -z conv,tcp -z conv,udp",
                (tshark, "-r", "{trace}", "-q", "-z", "conv,tcp", "-z", "conv,udp"),
                flow_analysis=True,
            )
        )
    try:
        import dpkt  # noqa: F401  (only to know whether the loop can run)

        tools.append(
            Tool(
                "dpkt loop (benchmarks/dpkt_flows.py)",
                (sys.executable, str(DPKT_SCRIPT), "{trace}"),
                flow_analysis=True,
            )
        )
    except ImportError:
        pass
    ns = (sys.executable, "-m", "netscope", "--read-pcap", "{trace}", "--quiet")
    tools += [
        Tool(INLINE, ns, True),
        Tool("netscope --stats --top-flows 10", (*ns, "--stats", "--top-flows", "10"), True),
        Tool("netscope --pipeline --workers 2", (*ns, "--pipeline", "--workers", "2"), True),
        Tool("netscope --anomalies", (*ns, "--anomalies"), True),
        Tool(
            "netscope scale mode (no RTT/retrans/ooo)", (*ns, "--config", str(scale_config)), True
        ),
    ]
    return tools


class ToolFailed(RuntimeError):
    """A timed command exited non-zero (its figure would be meaningless)."""

    def __init__(self, cmd: list[str], returncode: int, stderr: bytes) -> None:
        super().__init__(f"{' '.join(cmd)} exited {returncode}: {stderr[-500:]!r}")
        self.returncode = returncode


def run_once(cmd: list[str]) -> float:
    """Wall seconds of one process; output discarded, a failure raises :class:`ToolFailed`."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, cwd=REPO_ROOT
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise ToolFailed(cmd, proc.returncode, proc.stderr)
    return elapsed


def count_packets(trace: Path) -> int:
    """Packets in ``trace`` according to NetScope's summary (also warms the kernel cache)."""
    out = subprocess.run(
        [sys.executable, "-m", "netscope", "--read-pcap", str(trace), "--quiet"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    ).stdout
    for line in out.splitlines():
        if line.strip().startswith("Packets captured:"):
            return int(line.split(":", 1)[1])
    raise RuntimeError(f"no packet count in NetScope's output:\n{out}")


def compare_trace(trace: Path, tools: list[Tool], reps: int, budget_s: float) -> Comparison:
    """Every tool on ``trace``: one untimed run each, then ``reps`` interleaved rounds.

    A tool that fails is reported as failed (with its exit status) and not run again; the
    others go on.
    """
    packets = count_packets(trace)
    samples: dict[str, list[float]] = {t.label: [] for t in tools}
    once_only: dict[str, str] = {}

    def attempt(t: Tool) -> float | None:
        try:
            return run_once(t.command(trace))
        except ToolFailed as exc:
            print(f"   {t.label} failed: {exc}", flush=True)
            samples[t.label].clear()
            once_only[t.label] = f"failed (exit {exc.returncode})"
            return None

    for t in tools:
        first = attempt(t)  # warm-up (page cache, kernel cache)
        if first is None:
            continue
        if first * reps > budget_s:
            # the untimed run already tells: N runs would not fit the budget, so this one
            # run is the figure (its cache warm-up is the other tools' too)
            samples[t.label].append(first)
            once_only[t.label] = f"1 run ({reps} would take ~{first * reps / 60:.0f} min)"
            print(f"   {t.label}: {first:.1f} s, run once", flush=True)
    for _ in range(reps):
        for t in tools:
            if t.label not in once_only:
                seconds = attempt(t)
                if seconds is not None:
                    samples[t.label].append(seconds)
    rows = [
        ToolResult(t.label, tuple(samples[t.label]), t.flow_analysis, once_only.get(t.label, ""))
        for t in tools
    ]
    return Comparison(trace.name, packets, trace.stat().st_size, reps, rows)


def format_comparison(c: Comparison) -> str:
    """The side-by-side table of one trace (a plain-text table, pasteable)."""
    head = ("tool / mode", "seconds", "packets/s", "vs NetScope inline", "flow analysis", "runs")
    body = []
    for r in c.rows:
        ratio = c.ratio(r)
        body.append(
            (
                r.label,
                "-" if r.failed else f"{r.seconds:.3f}",
                "-" if r.failed else f"{c.packets / r.seconds / 1e6:.2f} M",
                f"{ratio:.2f}x" if ratio is not None else "n/a",
                "yes" if r.flow_analysis else "no",
                r.note or f"median of {len(r.samples)}",
            )
        )
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [cells[i].rjust(widths[i]) for i in (1, 2, 3)]
        out += [cells[i].ljust(widths[i]) for i in (4, 5)]
        return "   " + "  ".join(out).rstrip()

    title = (
        f"   {c.trace}: {c.packets:,} packets, {c.size_bytes / 1e6:,.0f} MB; whole-process "
        f"wall time; ratio = tool's time / NetScope inline's (> 1: NetScope faster)"
    )
    rule = "   " + "  ".join("-" * w for w in widths)
    return "\n".join([title, line(head), rule, *(line(b) for b in body)])


def main(argv: list[str] | None = None) -> list[Comparison]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trace",
        type=Path,
        action="append",
        help="trace to compare on (repeatable; default: the reference and "
        "small-packet traces, generated if missing)",
    )
    parser.add_argument("--reps", type=int, default=5, help="timed runs per tool (median)")
    parser.add_argument(
        "--budget",
        type=float,
        default=180.0,
        help="seconds a tool's --reps runs may take before it is run once",
    )
    parser.add_argument("--json", type=Path, help="also write every sample as JSON here")
    args = parser.parse_args(argv)
    paths = args.trace or [traces.ensure_reference(), traces.ensure_small()]

    header("side by side: other tools and NetScope's modes, same traces, whole process")
    print(f"   load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        scale = Path(tmp) / "scale.toml"
        scale.write_text(SCALE_MODE_TOML)
        tools = default_tools(scale)
        results = []
        for trace in paths:
            c = compare_trace(trace, tools, args.reps, args.budget)
            print(format_comparison(c), flush=True)
            results.append(c)
    if args.json:
        args.json.write_text(json.dumps([c.to_dict() for c in results], indent=1))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])

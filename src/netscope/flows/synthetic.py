"""``--synthetic-flows N``: the scale-mode memory/speed self-check (SPEC §4, §8).

Inserts N distinct flows into a scale-mode table pre-sized for N, then reports
elapsed time, resident memory and PASS/FAIL against the 500 MB budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

from netscope.sinks.summary import format_block

BUDGET_MB = 500.0


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc; 0.0 where unavailable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


@dataclass(frozen=True)
class SyntheticResult:
    flows: int
    elapsed_s: float
    rss_mb: float
    table_mb: float = 0.0

    @property
    def passed(self) -> bool:
        return self.rss_mb < BUDGET_MB


def run_synthetic(n: int) -> SyntheticResult:
    """Build a scale-mode table of ``n`` flows and measure it."""
    import netscope.engine  # noqa: F401 - chooses the kernel cache directory
    from netscope.flows.table import FlowOptions, FlowTable

    # compile the insertion kernel outside the timed region
    FlowTable(
        FlowOptions(max_flows=16, rtt=False, retrans=False, out_of_order=False)
    ).insert_synthetic(1)
    start = time.perf_counter()
    table = FlowTable(
        FlowOptions(
            max_flows=n,
            timeout_secs=0,
            rtt=False,
            retrans=False,
            out_of_order=False,
            initial_flows=n,  # pre-sized: insertion is what is timed, not growth
        )
    )
    inserted = table.insert_synthetic(n)
    elapsed = time.perf_counter() - start
    return SyntheticResult(inserted, elapsed, rss_mb(), table.nbytes / (1024 * 1024))


def print_synthetic(result: SyntheticResult, out: TextIO) -> None:
    verdict = "PASS" if result.passed else "FAIL"
    rows = [
        ("Flows inserted", str(result.flows)),
        ("Mode", "scale (compact storage, no sequence tracking)"),
        ("Elapsed", f"{result.elapsed_s:.3f}s"),
        ("RSS (estimated)", f"{result.rss_mb:.1f} MB"),
        ("Table memory", f"{result.table_mb:.1f} MB"),
        ("Budget check", f"{verdict} (budget {BUDGET_MB:.0f} MB)"),
    ]
    print(format_block("Synthetic flow benchmark complete.", rows), file=out)

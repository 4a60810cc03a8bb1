"""The end-of-run summary (SPEC §6): a rule of '=' then aligned ``label: value`` lines.

Scripts parse these lines, so labels are stable; new facts get new labels.
"""

from __future__ import annotations

from collections.abc import Sequence

from netscope.analysis import Counters
from netscope.sources.base import SourceReport

RULE = "=" * 60


def format_block(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """``title`` then two-space-indented rows with values aligned after the labels."""
    width = max((len(label) for label, _ in rows), default=0) + 3  # two spaces after the colon
    lines = [RULE, title]
    lines += [f"  {(label + ':').ljust(width)}{value}" for label, value in rows]
    return "\n".join(lines)


def success_rate(packets: int, parse_errors: int) -> str:
    """As the original computed it: packets without a parse error, in percent, one decimal;
    ``0.0%`` when nothing was captured."""
    rate = (packets - parse_errors) / packets * 100.0 if packets > 0 else 0.0
    return f"{rate:.1f}%"


def capture_summary(
    counters: Counters,
    report: SourceReport | None,
    interrupted: bool = False,
    extra_rows: Sequence[tuple[str, str]] = (),
    pipeline: bool = False,
) -> str:
    """The summary block printed when a capture ends (EOF, -c, Ctrl-C or error)."""
    title = "Capture complete (pipeline mode)." if pipeline else "Capture complete."
    if interrupted:
        title = title[:-1] + " (interrupted)."
    rows: list[tuple[str, str]] = [
        ("Packets captured", str(counters.packets)),
        ("Parse errors", str(counters.parse_errors)),
        ("Success rate", success_rate(counters.packets, counters.parse_errors)),
    ]
    if counters.unsupported_linktypes:
        kinds = ", ".join(
            f"Unsupported({lt}) x{n}" for lt, n in sorted(counters.unsupported_linktypes.items())
        )
        rows.append(("Unsupported link types", kinds))
    rows += list(extra_rows)
    if report is not None and report.warning:
        rows.append(("Warning", report.warning))
    return format_block(title, rows)

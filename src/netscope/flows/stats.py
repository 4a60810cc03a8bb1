"""The periodic ``[stats]`` line and its top-flows list (SPEC §6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from netscope.flows.records import records_from_rows
from netscope.flows.table import FlowTable
from netscope.pipeline.inline import Tick


def format_stats_line(
    tick: Tick,
    kdrop: int = 0,
    kdrop_total: int = 0,
    ifdrop: int = 0,
    ifdrop_total: int = 0,
    dispatch: tuple[int, int] | None = None,
) -> str:
    """``[stats] 1.23 Mbps | 456 pps | 7 flows | kdrop=0 (total=0) ifdrop=0 (total=0)``."""
    line = (
        f"[stats] {tick.mbps:.2f} Mbps | {tick.pps:.0f} pps | {tick.active_flows} flows | "
        f"kdrop={kdrop} (total={kdrop_total}) ifdrop={ifdrop} (total={ifdrop_total})"
    )
    if dispatch is not None:
        line += f" drops={dispatch[0]} (total={dispatch[1]})"
    return line


class StatsPrinter:
    """Prints a stats line per tick plus the top-N flows by byte delta."""

    def __init__(self, out: TextIO, table: FlowTable, top_n: int) -> None:
        self._out = out
        self._table = table
        self._top_n = top_n
        self.suffix: Callable[[], str] | None = None  # e.g. the IPFIX exporter's drops

    def __call__(self, tick: Tick) -> None:
        lines = [format_stats_line(tick) + (self.suffix() if self.suffix else "")]
        if self._top_n > 0:
            t = self._table
            rows = t.top_rows(self._top_n)
            recs = records_from_rows(t.keys, t.i64, None, t.u8, rows)
            seconds = tick.interval_ns / 1e9
            for rank, rec in enumerate(recs, 1):
                mbps = rec.delta_bytes * 8 / seconds / 1e6
                lines.append(f"  {rank}. {rec.label()} {mbps:.2f} Mbps")
            t.reset_delta(rows)
        self._out.write("\n".join(lines) + "\n")

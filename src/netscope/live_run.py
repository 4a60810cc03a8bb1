"""Live capture: the run entry point and the parts only live runs have.

:class:`LiveRun` runs the one run loop (:mod:`netscope.run_loop`) over an interface
(:class:`netscope.run_inputs.LiveInput`): ticks on wall time (every ``stats.interval_ms``
even when no packet arrives), stops on ``-c``, Ctrl-C or SIGTERM after the batch in hand
(:mod:`netscope.signals`), and adds the kernel and interface drop counters (:class:`DropTracker`)
to the stats lines (:class:`LiveStatsPrinter`) and the summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TextIO

from netscope.capture_stage import CaptureStage
from netscope.config import Config

__all__ = ["CaptureStage", "DropTracker", "LiveRun", "LiveStatsPrinter"]

log = logging.getLogger(__name__)


class LiveRun:
    """A live capture: the run loop with a :class:`~netscope.run_inputs.LiveInput`."""

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err

    def execute(self) -> int:
        from netscope.run_inputs import LiveInput
        from netscope.run_loop import RunLoop
        from netscope.sinks.base import build_sinks

        return RunLoop(self.cfg, self.out, self.err).execute(LiveInput, build_sinks, live=True)


class DropTracker:
    """Kernel and interface drop counters: per-tick deltas and run totals."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.received = 0
        self.kdrop_total = 0
        self.ifdrop_total = 0
        self._kdrop_reported = 0
        self._ifdrop_reported = 0

    def poll(self) -> None:
        """Read the counters from the source (cheap: one getsockopt / pcap_stats)."""
        try:
            stats = self._source.stats()
        except OSError as exc:  # the socket is gone: keep the last numbers
            log.debug("capture statistics unavailable: %s", exc)
            return
        self.received, self.kdrop_total, self.ifdrop_total = stats

    def tick_values(self) -> dict[str, int]:
        """kdrop/ifdrop since the previous tick, and the totals (resets the deltas)."""
        values = {
            "kdrop": self.kdrop_total - self._kdrop_reported,
            "kdrop_total": self.kdrop_total,
            "ifdrop": self.ifdrop_total - self._ifdrop_reported,
            "ifdrop_total": self.ifdrop_total,
        }
        self._kdrop_reported = self.kdrop_total
        self._ifdrop_reported = self.ifdrop_total
        return values

    def summary_rows(self) -> list[tuple[str, str]]:
        seen = self.received + self.kdrop_total
        rate = 100.0 * self.kdrop_total / seen if seen else 0.0
        return [
            ("Kernel received", str(self.received)),
            ("Kernel dropped", str(self.kdrop_total)),
            ("Interface dropped", str(self.ifdrop_total)),
            ("Drop rate", f"{rate:.2f}%"),
        ]


class LiveStatsPrinter:
    """The ``[stats]`` line with kdrop/ifdrop, then the top-N flows (SPEC §6)."""

    def __init__(self, out: TextIO, table: Any, top_n: int, drops: DropTracker) -> None:
        self._out = out
        self._table = table
        self._top_n = top_n
        self._drops = drops
        self.suffix: Callable[[], str] | None = None  # e.g. the IPFIX exporter's drops

    def __call__(self, tick: Any) -> None:
        from netscope.flows.records import records_from_rows
        from netscope.flows.stats import format_stats_line

        d = self._drops.tick_values()
        lines = [
            format_stats_line(tick, d["kdrop"], d["kdrop_total"], d["ifdrop"], d["ifdrop_total"])
            + (self.suffix() if self.suffix else "")
        ]
        if self._top_n > 0:
            t = self._table
            rows = t.top_rows(self._top_n)
            recs = records_from_rows(t.keys, t.i64, None, t.u8, rows)
            seconds = max(tick.interval_ns / 1e9, 1e-9)
            for rank, rec in enumerate(recs, 1):
                mbps = rec.delta_bytes * 8 / seconds / 1e6
                lines.append(f"  {rank}. {rec.label()} {mbps:.2f} Mbps")
            t.reset_delta(rows)
        self._out.write("\n".join(lines) + "\n")

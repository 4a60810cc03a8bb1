"""Inline processing: decode → flow table, with stats ticks on capture time.

``InlineProcessor.feed(batch)`` runs the compiled kernels over one batch. Stats
ticks (SPEC §6: offline input ticks on capture time) are found by the flow
kernel itself, which stops at the first packet past the next tick boundary; the
processor then calls ``on_tick`` and resumes — no per-packet Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netscope.analysis import Analyzer
from netscope.batch import PacketBatch
from netscope.columns import DecodedColumns
from netscope.flows import layout as L
from netscope.flows.table import FlowOptions, FlowTable

NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Tick:
    """One stats interval: totals since the previous tick (all packets, not just flows)."""

    start_ns: int
    end_ns: int
    interval_ns: int
    bytes: int
    packets: int
    active_flows: int

    @property
    def mbps(self) -> float:
        return self.bytes * 8 / (self.interval_ns / 1e9) / 1e6

    @property
    def pps(self) -> float:
        return self.packets / (self.interval_ns / 1e9)


TickHandler = Callable[[Tick], None]
# Called with every decoded batch (e.g. the anomaly detector): (batch, columns).
BatchObserver = Callable[[PacketBatch, "DecodedColumns"], None]


class InlineProcessor:
    """Single-threaded engine: Analyzer + FlowTable + capture-time ticks."""

    def __init__(
        self,
        flow_options: FlowOptions,
        tick_interval_ns: int = 0,
        on_tick: TickHandler | None = None,
    ) -> None:
        self.analyzer = Analyzer()
        self.flows = FlowTable(flow_options)
        self.tick_interval_ns = tick_interval_ns  # 0 = no ticks; on_tick may be set later
        self.on_tick = on_tick
        self._tick_start: int | None = None
        self.observers: list[BatchObserver] = []
        # Live capture ticks on wall time: the caller calls wall_tick(); packet time
        # then never triggers a tick (SPEC §6).
        self.wall_clock_ticks = False

    def feed(self, batch: PacketBatch) -> None:
        """Process one batch completely (ticks are emitted as boundaries pass)."""
        if batch.count == 0:
            return
        cols = self.analyzer.process(batch)
        for observer in self.observers:
            observer(batch, cols)
        if self.wall_clock_ticks:
            self.flows.observe(batch.ts_ns, batch.wirelens, cols, batch.count)
            return
        if self.tick_interval_ns and self.on_tick is not None and self._tick_start is None:
            self._tick_start = int(batch.ts_ns[0])
            self.flows.set_tick_at(self._tick_start + self.tick_interval_ns)
        i = 0
        while i < batch.count:
            i, status = self.flows.observe(batch.ts_ns, batch.wirelens, cols, batch.count, i)
            if status == L.ST_TICK:
                self._emit_tick(int(batch.ts_ns[i]))

    def _emit_tick(self, next_packet_ns: int) -> None:
        """Close the interval ending at the current boundary and move the boundary past
        ``next_packet_ns`` (quiet gaps in a trace produce no empty ticks)."""
        assert self._tick_start is not None and self.on_tick is not None
        interval = self.tick_interval_ns
        end = self._tick_start + interval
        self._deliver(self._tick_start, end)
        start = end
        if next_packet_ns >= start + interval:
            start += ((next_packet_ns - start) // interval) * interval
        self._tick_start = start
        self.flows.set_tick_at(start + interval)

    def _deliver(self, start: int, end: int, interval_ns: int | None = None) -> None:
        g = self.flows.g
        tick = Tick(
            start_ns=start,
            end_ns=end,
            interval_ns=interval_ns or self.tick_interval_ns,
            bytes=int(g[L.G_TICK_BYTES]),
            packets=int(g[L.G_TICK_PKTS]),
            active_flows=self.flows.active,
        )
        g[L.G_TICK_BYTES] = 0
        g[L.G_TICK_PKTS] = 0
        assert self.on_tick is not None
        self.on_tick(tick)

    def wall_tick(self, start_ns: int, end_ns: int) -> None:
        """Emit a tick for a wall-clock interval (live capture), whatever packets came."""
        if self.on_tick is not None:
            self._deliver(start_ns, end_ns, end_ns - start_ns)

    def finish(self) -> None:
        """Emit the last, partial interval (if it saw packets) at end of input."""
        if self.on_tick is None or self._tick_start is None:
            return
        if self.flows.g[L.G_TICK_PKTS]:
            self._deliver(self._tick_start, self._tick_start + self.tick_interval_ns)

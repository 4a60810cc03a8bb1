"""Glue between the flow table and the IPFIX encoder/sender.

Flows reach the exporter three ways, all as whole batches of table rows:

- ``FlowTable.on_expired`` (idle timeout, eviction): :meth:`IpfixExporter.__call__`;
- the active timeout: :meth:`IpfixExporter.poll`, called on capture-time ticks offline and
  from the read loop live, scans the live rows whose last export (or start) is at least
  ``active_timeout`` old and exports their counts since the last export (delta counts; the
  already-exported totals live in the table's layout.X_SENT_* columns, so the expired copy
  of a row carries them too);
- end of capture: :meth:`IpfixExporter.finish` exports the flows still in the table.

Export time (the message header's clock, the template refresh interval, the active timeout)
follows the packets' clock: capture time for a file, wall time live.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from netscope.flows import layout as L
from netscope.flows.table import ExpiredBatch, FlowOptions, FlowTable
from netscope.sinks.ipfix.encoder import (
    END_ACTIVE,
    END_FORCED,
    END_IDLE,
    END_RESOURCES,
    Deltas,
    MessageEncoder,
    build_records,
)
from netscope.sinks.ipfix.sender import Sender, Target

CHECK_EVERY_NS = 1_000_000_000  # active timeout / live idle sweep: once per second
# Reading a file: wait this long for a sender that is making progress before dropping
# (live capture never waits); see Sender.offer.
FILE_WAIT_S = 0.25


@dataclass(frozen=True)
class IpfixSettings:
    """``--export-ipfix`` and ``[output.ipfix]`` (docs/ipfix.md)."""

    target: Target
    domain_id: int = 0
    template_refresh_s: float = 60.0
    active_timeout_s: float = 1800.0
    mtu: int = 1400
    options_template: bool = True
    queue_messages: int = 4096


class FlowRows(Protocol):
    """What :meth:`IpfixExporter.finish` reads: a FlowTable or the pipeline's merge."""

    keys: np.ndarray
    i64: np.ndarray
    u8: np.ndarray

    def live_rows(self) -> np.ndarray: ...


_REASONS = np.zeros(256, dtype=np.uint8)
_REASONS[L.REASON_TIMEOUT] = END_IDLE
_REASONS[L.REASON_EVICTED] = END_RESOURCES


class IpfixExporter:
    """Encodes flow-table rows as IPFIX and hands the messages to a :class:`Sender`."""

    def __init__(
        self, settings: IpfixSettings, export_col: int, sender: Sender | None = None
    ) -> None:
        self.settings = settings
        self.x = export_col  # first layout.X_* column in the table's i64 matrix
        self.encoder = MessageEncoder(settings.domain_id, settings.mtu, settings.options_template)
        self._lock = threading.Lock()
        self._now_ns = 0
        self._last_templates_ns: int | None = None
        self._next_check_ns = 0
        self.table: FlowTable | None = None  # inline runs: the table the active timeout scans
        self.live = False
        self.records = 0
        self._last_drops = 0
        self.sender = sender or Sender(
            settings.target,
            greeting=lambda: self.encoder.templates(self._now_ns // 1_000_000_000, count=False),
            queue_messages=settings.queue_messages,
        )

    # ---- wiring ----
    def attach(self, table: FlowTable, live: bool) -> None:
        """Scan ``table`` for the active timeout (and, live, run its idle sweep when no
        packets come: the flow kernel only sweeps on packet arrival)."""
        self.table = table
        self.live = live

    def tick_handler(self, inner: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """A processor tick handler that polls the exporter, then calls ``inner``."""

        def handler(tick: Any) -> None:
            now = int(tick.end_ns)
            if self.table is not None:  # the last, partial tick ends after the last packet
                now = min(now, int(self.table.g[L.G_LAST_TS]))
            self.poll(now)
            if inner is not None:
                inner(tick)

        return handler

    # ---- flows in ----
    def __call__(self, batch: ExpiredBatch) -> None:
        """``FlowTable.on_expired``: export the removed flows' remaining counts."""
        n = batch.count
        if n == 0:
            return
        i64 = batch.i64[:n]
        now = max(self._now_ns, int(i64[:, L.I_LAST_NS].max()))
        self._export(batch.keys[:n], i64, batch.u8[:n], _REASONS[batch.reason[:n]], now)

    def poll(self, now_ns: int) -> None:
        """Advance the export clock; at most once a second, apply the active timeout (and
        live, sweep idle flows out of the table)."""
        if now_ns > self._now_ns:
            self._now_ns = now_ns
        if now_ns < self._next_check_ns or self.table is None:
            return
        self._next_check_ns = now_ns + CHECK_EVERY_NS
        if self.live:
            self.table.expire_idle(now_ns)
        if self.settings.active_timeout_s > 0:
            self._active(self.table, now_ns)

    def _active(self, t: FlowTable, now_ns: int) -> None:
        x = self.x
        i64 = t.i64
        timeout = int(self.settings.active_timeout_s * 1e9)
        since = np.maximum(i64[:, L.I_FIRST_NS], i64[:, x + L.X_SENT_NS])
        rows = np.flatnonzero((t.u8[:, L.B_LIVE] != 0) & (since + timeout <= now_ns))
        if len(rows) == 0:
            return
        r64 = i64[rows]
        reasons = np.full(len(rows), END_ACTIVE, dtype=np.uint8)
        self._export(t.keys[rows], r64, t.u8[rows], reasons, now_ns)
        i64[rows, x + L.X_SENT_PKTS_AB] = r64[:, L.I_PKTS_AB]
        i64[rows, x + L.X_SENT_PKTS_BA] = r64[:, L.I_PKTS_BA]
        i64[rows, x + L.X_SENT_IPB_AB] = r64[:, x + L.X_IPB_AB]
        i64[rows, x + L.X_SENT_IPB_BA] = r64[:, x + L.X_IPB_BA]
        i64[rows, x + L.X_SENT_NS] = now_ns
        t.u8[rows, L.B_TCPF_AB] = 0  # the next record's flags: those seen after this one
        t.u8[rows, L.B_TCPF_BA] = 0

    def finish(self, flows: FlowRows | None) -> None:
        """End of capture: export what is still in the table, then flush and stop."""
        try:
            if flows is not None:
                rows = flows.live_rows()
                if len(rows):
                    i64 = flows.i64[rows]
                    now = max(self._now_ns, int(i64[:, L.I_LAST_NS].max()))
                    reasons = np.full(len(rows), END_FORCED, dtype=np.uint8)
                    self._export(flows.keys[rows], i64, flows.u8[rows], reasons, now)
            if self.settings.options_template:
                with self._lock:
                    msgs = self._templates_due(self._now_ns)  # none sent yet: no flows came
                    if not msgs:  # (a due refresh already carries a statistics record)
                        msgs = [self.encoder.stats(self._export_s(self._now_ns), self.dropped)]
                    self.sender.offer(msgs, 0.0 if self.live else FILE_WAIT_S)
        finally:
            self.sender.close()

    # ---- encoding ----
    def _export(
        self, keys: np.ndarray, i64: np.ndarray, u8: np.ndarray, reasons: np.ndarray, now: int
    ) -> None:
        x = self.x
        deltas = Deltas(
            i64[:, L.I_PKTS_AB] - i64[:, x + L.X_SENT_PKTS_AB],
            i64[:, L.I_PKTS_BA] - i64[:, x + L.X_SENT_PKTS_BA],
            i64[:, x + L.X_IPB_AB] - i64[:, x + L.X_SENT_IPB_AB],
            i64[:, x + L.X_IPB_BA] - i64[:, x + L.X_SENT_IPB_BA],
        )
        keep = (deltas.pkts_ab + deltas.pkts_ba) > 0  # nothing new since the last export
        if not keep.all():
            idx = np.flatnonzero(keep)
            keys, i64, u8, reasons = keys[idx], i64[idx], u8[idx], reasons[idx]
            deltas = Deltas(*(a[idx] for a in vars(deltas).values()))
        if len(keys) == 0:
            return
        records = build_records(keys, i64, u8, reasons, deltas)
        with self._lock:
            if now > self._now_ns:
                self._now_ns = now
            export_s = self._export_s(self._now_ns)
            messages = self._templates_due(self._now_ns)
            messages += self.encoder.data(records, export_s)
            self.records += len(records)
            # under the lock: pipeline shards export concurrently, and messages must reach
            # the queue in sequence-number order
            self.sender.offer(messages, 0.0 if self.live else FILE_WAIT_S)

    @staticmethod
    def _export_s(now_ns: int) -> int:
        return max(0, now_ns // 1_000_000_000)

    def _templates_due(self, now_ns: int) -> list[bytes]:
        """UDP: the templates (and exporter statistics) before the first data and again
        every ``template_refresh_s`` of export time. TCP sends them on connect instead."""
        if self.settings.target.transport != "udp":
            return []
        last = self._last_templates_ns
        refresh = int(self.settings.template_refresh_s * 1e9)
        if last is not None and now_ns - last < refresh:
            return []
        self._last_templates_ns = now_ns
        out = [self.encoder.templates(self._export_s(now_ns))]
        if self.settings.options_template:
            out.append(self.encoder.stats(self._export_s(now_ns), self.sender.dropped))
        return out

    # ---- reporting ----
    @property
    def dropped(self) -> int:
        return self.sender.dropped

    def summary_rows(self) -> list[tuple[str, str]]:
        s = self.sender
        return [
            (
                "IPFIX export",
                f"{self.settings.target} ({self.records} flow records in "
                f"{self.encoder.messages} messages: {s.sent_messages} sent, "
                f"{s.dropped} dropped)",
            )
        ]

    def metric_totals(self) -> dict[str, int]:
        """Totals for /metrics (web.feed adds them to its totals)."""
        return {
            "ipfix_records": self.records,
            "ipfix_messages_sent": self.sender.sent_messages,
            "ipfix_dropped_messages": self.sender.dropped,
        }

    def stats_suffix(self) -> str:
        """`` ipfix_drops=N (total=M)`` for the stats line (N since the previous line)."""
        total = self.sender.dropped
        delta, self._last_drops = total - self._last_drops, total
        return f" ipfix_drops={delta} (total={total})"


def export_col_for(options: FlowOptions) -> int:
    """Where a table built with ``options`` (export_columns on) keeps the X_* columns."""
    return FlowTable.i64_width(options) - L.X_WIDTH

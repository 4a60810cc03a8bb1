"""Capture side of the dashboard: packet sampling, the detail ring and per-tick messages.

Everything here runs on the capture thread, so it is written to cost little and never to
wait: sampling is a numpy selection per batch plus one bounded copy per kept packet, a tick
becomes one :class:`TickMessage`, and handing that message to the server is a
``put_nowait`` on a bounded queue — when the server falls behind the message is dropped and
counted (logged at TRACE), capture never blocks on the dashboard.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netscope.batch import PacketBatch
from netscope.columns import DecodedColumns
from netscope.config import WebConfig
from netscope.logutil import trace

log = logging.getLogger(__name__)

# Sampled packets listed in one frame: the browser shows a rolling list, and at 100k pps a
# full tick's worth would cost more to render than it is worth (all of them stay in the ring).
MAX_FRAME_PACKETS = 100


@dataclass(frozen=True)
class StoredPacket:
    """One sampled packet in the detail ring: the headers plus at most payload_bytes of
    payload, copied out of the batch (batch buffers are reused by sources)."""

    id: int
    ts_ns: int
    linktype: int
    caplen: int
    wirelen: int
    data: bytes


class PacketRing:
    """The last ``capacity`` sampled packets keyed by global packet id.

    Stored column-wise in preallocated numpy arrays (one row of ``width`` bytes per packet),
    so keeping a batch's sampled packets is one gather per batch, not a Python object per
    packet — at sample_rate = 1 that is the difference between ~1 µs and a few ns of
    capture-thread time per packet. Written by the capture thread, read by the server thread
    (packet_detail, frame packet lists) under a lock.
    """

    def __init__(self, capacity: int, width: int = 512) -> None:
        self.capacity = max(1, capacity)
        self.width = max(1, width)
        cap = self.capacity
        self.data = np.zeros((cap, self.width), dtype=np.uint8)
        self.ids = np.full(cap, -1, dtype=np.int64)
        self.ts_ns = np.zeros(cap, dtype=np.int64)
        self.linktypes = np.zeros(cap, dtype=np.int32)
        self.caplens = np.zeros(cap, dtype=np.int32)
        self.wirelens = np.zeros(cap, dtype=np.int32)
        self.stored = np.zeros(cap, dtype=np.int32)
        self._pos = 0
        self._lock = threading.Lock()

    def add_batch(
        self, batch: PacketBatch, picked: np.ndarray, ids: np.ndarray, keep: np.ndarray
    ) -> None:
        """Store packets ``picked`` (indices into ``batch``) under ``ids``, ``keep`` bytes each
        (at most ``width``)."""
        k = int(picked.size)
        if k == 0:
            return
        # Gather only as many columns as the longest kept packet needs (small packets → few).
        w = int(min(self.width, max(1, int(keep.max()))))
        starts = batch.offsets[picked].astype(np.int64)
        idx = starts[:, None] + np.arange(w, dtype=np.int64)[None, :]
        np.minimum(idx, batch.buf.size - 1, out=idx)
        rows = batch.buf[idx]
        slots = (self._pos + np.arange(k)) % self.capacity
        with self._lock:
            self.data[slots, :w] = rows
            self.ids[slots] = ids
            self.ts_ns[slots] = batch.ts_ns[picked]
            self.linktypes[slots] = batch.linktypes[picked]
            self.caplens[slots] = batch.caplens[picked]
            self.wirelens[slots] = batch.wirelens[picked]
            self.stored[slots] = np.minimum(keep, self.width)
            self._pos = (self._pos + k) % self.capacity

    def get(self, packet_id: int) -> StoredPacket | None:
        with self._lock:
            hit = np.flatnonzero(self.ids == packet_id)
            if hit.size == 0:
                return None
            i = int(hit[0])
            return StoredPacket(
                packet_id,
                int(self.ts_ns[i]),
                int(self.linktypes[i]),
                int(self.caplens[i]),
                int(self.wirelens[i]),
                self.data[i, : int(self.stored[i])].tobytes(),
            )

    def newest(self, n: int) -> list[int]:
        """Ids of the newest ``n`` packets, oldest first."""
        with self._lock:
            ids = np.sort(self.ids[self.ids >= 0])
        return [int(i) for i in ids[-n:]] if n > 0 else []

    def all_ids(self) -> list[int]:
        with self._lock:
            return sorted(int(i) for i in self.ids[self.ids >= 0])

    def __len__(self) -> int:
        return int(np.count_nonzero(self.ids >= 0))


@dataclass
class TickMessage:
    """What the capture side sends the server per tick (``kind="tick"``) or at the end of
    input (``kind="final"``: totals for /metrics and the final frame's flows and packets)."""

    kind: str
    tick: dict[str, Any] = field(default_factory=dict)
    packet_ids: list[int] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    shard_depths: list[int] = field(default_factory=list)


HEADER_BUDGET = 192  # header bytes kept per packet besides payload_bytes (VLAN+IPv6 ext+TCP)


def ring_for(cfg: WebConfig) -> PacketRing:
    """The inspector ring a [web] section asks for."""
    return PacketRing(cfg.packet_buffer, HEADER_BUDGET + cfg.payload_bytes)


Submit = Callable[[TickMessage], bool]
DropSource = Callable[[], tuple[int, int, int]]  # (dispatch, kernel, interface) drop totals


def _flow_dict(rec: Any, seconds: float) -> dict[str, Any]:
    """The top_flows entry of a frame (SPEC §6); endpoint A is shown as the source."""
    return {
        "protocol": rec.protocol,
        "src_ip": rec.a_ip,
        "src_port": rec.a_port,
        "dst_ip": rec.b_ip,
        "dst_port": rec.b_port,
        "bytes_a_to_b": rec.bytes_a_to_b,
        "bytes_b_to_a": rec.bytes_b_to_a,
        "bytes_total": rec.bytes_total,
        "packets_a_to_b": rec.packets_a_to_b,
        "packets_b_to_a": rec.packets_b_to_a,
        "packets_total": rec.packets_total,
        "delta_bytes": rec.delta_bytes,
        "delta_mbps": rec.delta_bytes * 8 / seconds / 1e6 if seconds > 0 else 0.0,
        "duration_secs": round(rec.duration_secs, 6),
        "tcp_state": rec.tcp_state,
        "rtt_ewma_ms": rec.rtt_ewma_ms,
        "retransmissions": rec.retransmissions,
        "out_of_order": rec.out_of_order,
        "community_id": rec.community_id,
    }


def _reseed(flows: list[dict[str, Any]], seed: int) -> None:
    """Recompute the top flows' Community IDs with ``seed`` (a handful of rows per tick)."""
    from netscope.flows.community_id import community_id

    for f in flows:
        proto = {"tcp": 6, "udp": 17}.get(f["protocol"], 0)
        f["community_id"] = community_id(
            f["src_ip"], f["dst_ip"], proto, f["src_port"], f["dst_port"], seed
        )


class WebFeed:
    """Samples packets and turns ticks into messages for the dashboard server.

    Use ``observe`` as an ``InlineProcessor`` observer and ``on_tick`` as (part of) its tick
    handler; ``push_alert`` queues an alert for the next frame; ``finish`` sends the final
    totals. ``counters`` is the Analyzer's Counters and ``flows`` the FlowTable.
    """

    def __init__(
        self,
        cfg: WebConfig,
        counters: Any,
        flows: Any,
        submit: Submit,
        drops: DropSource | None = None,
        ring: PacketRing | None = None,
    ) -> None:
        self.cfg = cfg
        self.counters = counters
        self.flows = flows
        self.community_id_seed = 0  # output.community_id_seed (set by the Dashboard)
        self.submit = submit
        self.drops = drops
        self.ring = ring if ring is not None else ring_for(cfg)
        self.next_id = 1  # global id of the next packet observed (= the CLI's #index)
        self.dropped_messages = 0
        self.alerts_total = 0
        # other outputs' counters for /metrics (the IPFIX exporter's), merged into totals()
        self.extra_totals: Callable[[], dict[str, int]] | None = None
        self._tick_ids: deque[int] = deque(maxlen=MAX_FRAME_PACKETS)
        self._alerts: deque[dict[str, Any]] = deque(maxlen=1000)
        self._alerts_lock = threading.Lock()
        self._last_drops = (0, 0, 0)
        # Pipeline mode sets these: per-shard queue depths for /metrics; the merged top list
        # of the tick being delivered (flow records built by the shards, largest byte delta
        # first; the aggregator already restarted their deltas); the merged flow table for
        # the final frame (``flows`` then only answers totals/active while shards run).
        self.shard_depths: Callable[[], list[int]] | None = None
        self.top_source: Callable[[], list[Any]] | None = None
        self.final_flows: Callable[[], Any] | None = None
        self._sample_cols: DecodedColumns | None = None

    # ------------------------------------------------------------------ packets

    def _pick(self, n: int) -> tuple[int, np.ndarray]:
        """Advance the global id over ``n`` packets; (first id, indices of the packets to
        keep: every ``sample_rate``-th id, at most the ring's capacity)."""
        first = self.next_id
        self.next_id += n
        rate = self.cfg.sample_rate
        if rate <= 0 or n == 0:
            return first, np.zeros(0, dtype=np.int64)
        # ids first..first+n-1; the first multiple of rate at or after `first`:
        start = (-first) % rate
        picked = np.arange(start, n, rate, dtype=np.int64)
        return first, picked[-self.ring.capacity :]  # older ones would be overwritten at once

    def observe(self, batch: PacketBatch, cols: DecodedColumns) -> None:
        """Keep every ``sample_rate``-th packet (by global id) in the ring."""
        first, picked = self._pick(batch.count)
        if picked.size == 0:
            return
        self._store(batch, picked, cols.payload_off[picked], first)

    def observe_capture(self, batch: PacketBatch) -> None:
        """Pipeline mode: sample on the capture thread, before dispatch, in global packet
        order (shards see only their share of packets). Only the sampled packets are decoded
        here, for their payload offset."""
        first, picked = self._pick(batch.count)
        k = int(picked.size)
        if k == 0:
            return
        from netscope import engine

        sub = PacketBatch(
            batch.buf,
            batch.offsets[picked],
            batch.caplens[picked],
            batch.wirelens[picked],
            batch.ts_ns[picked],
            batch.linktypes[picked],
            k,
        )
        cols = self._sample_cols
        if cols is None or cols.capacity < k:
            cols = self._sample_cols = DecodedColumns.allocate(max(k, 1024))
        engine.decode(sub, cols)
        self._store(batch, picked, cols.payload_off[:k], first)

    def _store(self, batch: PacketBatch, picked: np.ndarray, payload_off: np.ndarray,
               first: int) -> None:  # fmt: skip
        caplens = batch.caplens[picked].astype(np.int64)
        off = payload_off.astype(np.int64)
        header = np.where(off >= 0, off, caplens)
        keep = np.minimum(caplens, header + self.cfg.payload_bytes)
        ids = first + picked
        self.ring.add_batch(batch, picked, ids, keep)
        self._tick_ids.extend(int(i) for i in ids[-MAX_FRAME_PACKETS:])

    # ------------------------------------------------------------------ alerts

    def push_alert(self, alert: Any) -> None:
        """Queue an alert (an object or dict with ts, kind, description) for the next frame.

        Thread-safe: an alert hook may fire from whichever thread runs the detector.
        """
        if isinstance(alert, dict):
            item = {k: alert.get(k) for k in ("ts", "kind", "description")}
        else:
            item = {
                "ts": getattr(alert, "ts", None),
                "kind": getattr(alert, "kind", None),
                "description": getattr(alert, "description", None),
            }
        if isinstance(item["ts"], int) and item["ts"] > 10**12:  # nanoseconds → seconds
            item["ts"] = item["ts"] / 1e9
        with self._alerts_lock:
            self._alerts.append(item)
            self.alerts_total += 1

    # ------------------------------------------------------------------ ticks

    def totals(self, flows: Any = None) -> dict[str, int]:
        c = self.counters
        flows = flows if flows is not None else self.flows
        flow_totals = flows.totals
        dispatch, kernel, iface = self.drops() if self.drops is not None else (0, 0, 0)
        return {
            "packets": int(c.packets),
            "bytes": int(c.bytes_wire),
            "parse_errors": int(c.parse_errors),
            "active_flows": int(flows.active),
            "flows_created": int(flow_totals.get("created", 0)),
            "flows_expired": int(flow_totals.get("expired", 0)),
            "flows_evicted": int(flow_totals.get("evicted", 0)),
            "alerts": self.alerts_total,
            "dispatch_drops": dispatch,
            "kernel_drops": kernel,
            "interface_drops": iface,
            "web_dropped_messages": self.dropped_messages,
            **(self.extra_totals() if self.extra_totals is not None else {}),
        }

    def on_tick(self, tick: Any) -> None:
        """Build and hand over one tick's message (stats, top flows, packet ids, alerts)."""
        seconds = max(tick.interval_ns / 1e9, 1e-9)
        top: list[dict[str, Any]] = []
        if self.top_source is not None:
            top = [_flow_dict(r, seconds) for r in self.top_source()[: self.cfg.top_n]]
            if self.community_id_seed:  # the shards' records carry seed-0 IDs
                _reseed(top, self.community_id_seed)
        elif self.cfg.top_n > 0:
            from netscope.flows.records import records_from_rows

            t = self.flows
            rows = t.top_rows(self.cfg.top_n)
            if len(rows):
                recs = records_from_rows(
                    t.keys,
                    t.i64,
                    t.f64 if t.deep else None,
                    t.u8,
                    rows,
                    seed=self.community_id_seed,
                )
                top = [_flow_dict(r, seconds) for r in recs]
                t.reset_delta(rows)
        totals = self.totals()
        d_total, k_total, i_total = (
            totals["dispatch_drops"],
            totals["kernel_drops"],
            totals["interface_drops"],
        )
        d_prev, k_prev, i_prev = self._last_drops
        self._last_drops = (d_total, k_total, i_total)
        stats = {
            "ts": tick.end_ns / 1e9,
            "interval_ms": tick.interval_ns / 1e6,
            "bytes": tick.bytes,
            "packets": tick.packets,
            "mbps": tick.mbps if tick.interval_ns else 0.0,
            "pps": tick.pps if tick.interval_ns else 0.0,
            "active_flows": tick.active_flows,
            "dispatch_drops": d_total - d_prev,
            "dispatch_drops_total": d_total,
            "kernel_drops": k_total - k_prev,
            "kernel_drops_total": k_total,
            "kernel_if_drops": i_total - i_prev,
            "kernel_if_drops_total": i_total,
            "top_flows": top,
        }
        ids = list(self._tick_ids)
        self._tick_ids.clear()
        with self._alerts_lock:
            alerts = list(self._alerts)
            self._alerts.clear()
        self._send(TickMessage("tick", stats, ids, alerts, totals))

    def finish(self) -> None:
        """Send the final state: run totals, the largest flows of the whole run (by total
        bytes — the per-tick deltas of the last tick say little once input has ended), the
        newest sampled packets and any alert raised after the last tick."""
        # Pipeline: reading the merged table drains the shards first (their last ticks
        # arrive here through on_tick), so it comes before the alerts and packet ids.
        t = self.final_flows() if self.final_flows is not None else self.flows
        with self._alerts_lock:
            alerts = list(self._alerts)
            self._alerts.clear()
        top: list[dict[str, Any]] = []
        if self.cfg.top_n > 0 and t.active:
            from netscope.flows import layout as L
            from netscope.flows.records import records_from_rows

            rows = t.live_rows()
            total = t.i64[rows, L.I_BYTES_AB] + t.i64[rows, L.I_BYTES_AB + 1]
            order = np.argsort(-total, kind="stable")[: self.cfg.top_n]
            recs = records_from_rows(
                t.keys,
                t.i64,
                t.f64 if t.deep else None,
                t.u8,
                rows[order],
                seed=self.community_id_seed,
            )
            top = [_flow_dict(r, 0.0) for r in recs]
            for flow, rec in zip(top, recs, strict=True):  # whole-run rate, not a tick's
                flow["delta_mbps"] = rec.avg_bps / 1e6
        ids = list(self._tick_ids) or self.ring.newest(MAX_FRAME_PACKETS)
        self._tick_ids.clear()
        msg = TickMessage("final", {"top_flows": top}, ids, alerts, self.totals(t))
        self._send(msg)

    def _send(self, msg: TickMessage) -> None:
        if self.shard_depths is not None:
            msg.shard_depths = list(self.shard_depths())
        if not self.submit(msg):
            self.dropped_messages += 1
            trace(
                log, "dashboard queue full: tick message dropped (%d so far)", self.dropped_messages
            )

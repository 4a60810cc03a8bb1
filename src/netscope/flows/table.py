"""FlowTable: allocation, growth and the Python side of the flow kernels.

The table is pre-sized from ``max_flows`` (rows) with an index of twice that many
slots rounded up to a power of two. ``max_flows = 0`` means unlimited: the table
starts at 65,536 rows and doubles when full. Scale mode (all three analysis
switches off) allocates no sequence or RTT columns at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netscope.columns import DecodedColumns
from netscope.flows import layout as L
from netscope.kernels import flowtable as K

UNLIMITED_INITIAL_ROWS = 65536
EXPIRED_BUFFER = 4096
# RTT ring pool: one slot (RTT_RING outstanding segments) per flow direction with data in
# flight. Bounded so a SYN flood cannot grow memory; np.zeros maps pages lazily, so an
# unused pool costs nothing. Beyond it, segments go unsampled (counted).
MAX_RING_SLOTS = 16384


@dataclass(frozen=True)
class FlowOptions:
    """What the table tracks; mirrors ``[flow]`` and ``[analysis]`` of the config."""

    max_flows: int = 100_000
    timeout_secs: float = 60.0
    rtt: bool = True
    retrans: bool = True
    out_of_order: bool = True
    keep_expired: bool = False  # buffer expired/evicted flows for a sink

    @property
    def scale_mode(self) -> bool:
        return not (self.rtt or self.retrans or self.out_of_order)


def _pow2_at_least(n: int) -> int:
    size = 1
    while size < n:
        size <<= 1
    return size


ExpiredHandler = Callable[["ExpiredBatch"], None]


@dataclass
class ExpiredBatch:
    """Copies of removed flows' rows (valid only during the handler call)."""

    keys: np.ndarray
    i64: np.ndarray
    f64: np.ndarray | None
    u8: np.ndarray
    reason: np.ndarray
    count: int


class FlowTable:
    """Bidirectional TCP/UDP flow table over numpy matrices, updated by kernels."""

    def __init__(self, options: FlowOptions | None = None) -> None:
        self.options = options or FlowOptions()
        opts = self.options
        rows = opts.max_flows if opts.max_flows > 0 else UNLIMITED_INITIAL_ROWS
        self.deep = not opts.scale_mode
        self._alloc_rows(rows)
        self.g = np.zeros(L.G_WIDTH, dtype=np.int64)
        self.g[L.G_FREE_TOP] = rows
        self.g[L.G_LRU_HEAD] = -1
        self.g[L.G_LRU_TAIL] = -1
        self.g[L.G_LAST_TS] = np.iinfo(np.int64).min
        self.free_rows = np.arange(rows - 1, -1, -1, dtype=np.int32)  # pop → row 0 first
        self.p = np.zeros(K.P_WIDTH, dtype=np.int64)
        self.p[K.P_MAX_FLOWS] = opts.max_flows
        self.p[K.P_TIMEOUT_NS] = int(round(opts.timeout_secs * 1e9))
        self.p[K.P_TRACK_SEQ] = int(opts.retrans or opts.out_of_order or opts.rtt)
        self.p[K.P_RTT] = int(opts.rtt)
        self.p[K.P_RETRANS] = int(opts.retrans)
        self.p[K.P_OOO] = int(opts.out_of_order)
        self.p[K.P_TICK_AT_NS] = np.iinfo(np.int64).max
        self.p[K.P_KEEP_EXPIRED] = int(opts.keep_expired)
        ring_slots = min(MAX_RING_SLOTS, max(1024, 2 * rows)) if opts.rtt else 1
        self._alloc_rings(ring_slots)
        self.g[L.G_RING_FREE_TOP] = ring_slots
        self.exp_keys = np.zeros(
            (EXPIRED_BUFFER if opts.keep_expired else 1, L.KEY_WIDTH), np.uint64
        )
        n_exp = self.exp_keys.shape[0]
        self.exp_i64 = np.zeros((n_exp, L.I64_WIDTH), dtype=np.int64)
        self.exp_f64 = np.zeros((n_exp, L.F64_WIDTH), dtype=np.float64)
        self.exp_u8 = np.zeros((n_exp, L.U8_WIDTH), dtype=np.uint8)
        self.exp_reason = np.zeros(n_exp, dtype=np.uint8)
        self.on_expired: ExpiredHandler | None = None

    # ---- allocation -------------------------------------------------------
    def _alloc_rows(self, rows: int) -> None:
        deep = self.deep
        # np.full (not np.zeros) writes every page now: the table is pre-sized memory the
        # hot path owns, so new flows never pay first-touch page faults mid-capture.
        self.keys = np.full((rows, L.KEY_WIDTH), 0, dtype=np.uint64)
        self.i64 = np.full((rows, L.I64_WIDTH if deep else L.I64_SCALE_WIDTH), 0, dtype=np.int64)
        self.u8 = np.full((rows, L.U8_WIDTH), 0, dtype=np.uint8)
        self.f64 = np.full((rows if deep else 1, L.F64_WIDTH), 0.0, dtype=np.float64)
        self.u32 = np.full((rows if deep else 1, L.U32_WIDTH), 0, dtype=np.uint32)
        link_width = L.LINK_WIDTH if self.options.rtt else 2
        self.links = np.full((rows, link_width), -1, dtype=np.int32)
        self._alloc_index(rows)

    def _alloc_index(self, rows: int) -> None:
        size = _pow2_at_least(max(2 * rows, 16))
        self.idx_row = np.full(size, -1, dtype=np.int32)
        self.idx_tag = np.full(size, 0, dtype=np.uint32)

    def _alloc_rings(self, slots: int) -> None:
        self.ring_seq = np.zeros((slots, L.RTT_RING if self.options.rtt else 1), dtype=np.uint32)
        self.ring_ts = np.zeros((slots, L.RTT_RING if self.options.rtt else 1), dtype=np.int64)
        self.ring_meta = np.zeros((slots, 2), dtype=np.int32)
        self.ring_free = np.arange(slots - 1, -1, -1, dtype=np.int32)

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[0])

    def _grow_rows(self) -> None:
        old = self.capacity
        new = old * 2
        arrays: dict[str, np.ndarray] = {
            "keys": self.keys,
            "i64": self.i64,
            "u8": self.u8,
            "links": self.links,
        }
        if self.deep:
            arrays.update(f64=self.f64, u32=self.u32)
        for name, arr in arrays.items():
            grown = np.zeros((new, arr.shape[1]), dtype=arr.dtype)
            if name == "links":
                grown[:] = -1
            grown[:old] = arr
            setattr(self, name, grown)
        free = np.arange(new - 1, old - 1, -1, dtype=np.int32)
        top = int(self.g[L.G_FREE_TOP])
        self.free_rows = np.concatenate([self.free_rows[:top], free, np.zeros(old - top, np.int32)])
        self.g[L.G_FREE_TOP] = top + (new - old)
        self._alloc_index(new)
        K.rebuild_index(self.keys, self.u8, self.idx_row, self.idx_tag)

    # ---- updates ----------------------------------------------------------
    def set_tick_at(self, ts_ns: int) -> None:
        """Make ``observe`` stop (status TICK) at the first packet at/after ``ts_ns``."""
        self.p[K.P_TICK_AT_NS] = min(ts_ns, np.iinfo(np.int64).max)

    def observe(
        self,
        ts_ns: np.ndarray,
        wirelens: np.ndarray,
        cols: DecodedColumns,
        count: int,
        start: int = 0,
    ) -> tuple[int, int]:
        """Fold packets ``[start, count)`` in. Returns ``(next_index, status)``.

        Growth and expired-buffer drains are handled here; only ST_TICK and
        ST_DONE reach the caller.
        """
        i = start
        while True:
            i, status = K.observe(
                i,
                count,
                ts_ns,
                wirelens,
                cols.err,
                cols.l3,
                cols.src_hi,
                cols.src_lo,
                cols.dst_hi,
                cols.dst_lo,
                cols.proto,
                cols.l4_off,
                cols.sport,
                cols.dport,
                cols.tcp_flags,
                cols.seq,
                cols.ack,
                cols.payload_len,
                self.keys,
                self.i64,
                self.f64,
                self.u32,
                self.u8,
                self.links,
                self.idx_row,
                self.idx_tag,
                self.free_rows,
                self.g,
                self.p,
                self.ring_seq,
                self.ring_ts,
                self.ring_meta,
                self.ring_free,
                self.exp_keys,
                self.exp_i64,
                self.exp_f64,
                self.exp_u8,
                self.exp_reason,
            )
            if status == L.ST_EXPIRED_FULL:
                self.drain_expired()
            elif status == L.ST_GROW_ROWS:
                self._grow_rows()
            else:
                if self.g[L.G_EXPIRED_COUNT]:
                    self.drain_expired()
                return int(i), int(status)

    def expire_idle(self, now_ns: int) -> None:
        """Run the inactivity sweep at ``now_ns`` (live capture between packets)."""
        while True:
            status = K.expire_all(
                now_ns,
                self.keys,
                self.i64,
                self.f64,
                self.u8,
                self.links,
                self.idx_row,
                self.idx_tag,
                self.free_rows,
                self.g,
                self.p,
                self.ring_meta,
                self.ring_free,
                self.exp_keys,
                self.exp_i64,
                self.exp_f64,
                self.exp_u8,
                self.exp_reason,
            )
            self.drain_expired()
            if status != L.ST_EXPIRED_FULL:
                return

    def drain_expired(self) -> None:
        n = int(self.g[L.G_EXPIRED_COUNT])
        if n and self.on_expired is not None:
            self.on_expired(
                ExpiredBatch(
                    self.exp_keys[:n],
                    self.exp_i64[:n],
                    self.exp_f64[:n] if self.deep else None,
                    self.exp_u8[:n],
                    self.exp_reason[:n],
                    n,
                )
            )
        self.g[L.G_EXPIRED_COUNT] = 0

    # ---- queries ----------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes held by the table's arrays (rows, index, RTT pool, buffers)."""
        return sum(int(a.nbytes) for a in vars(self).values() if isinstance(a, np.ndarray))

    @property
    def active(self) -> int:
        return int(self.g[L.G_ACTIVE])

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.u8[:, L.B_LIVE])

    def top_rows(self, n: int) -> np.ndarray:
        """Rows of the n flows with the largest byte delta, largest first."""
        if n <= 0:
            return np.zeros(0, dtype=np.int32)
        out = np.zeros(n, dtype=np.int32)
        k = K.select_top(self.i64, self.u8, n, out)
        rows = out[:k]
        order = np.argsort(-self.i64[rows, L.I_DELTA_BYTES], kind="stable")
        return rows[order]

    def reset_delta(self, rows: np.ndarray) -> None:
        """Only reported flows restart their delta (SPEC §6)."""
        self.i64[rows, L.I_DELTA_BYTES] = 0
        self.i64[rows, L.I_DELTA_PKTS] = 0

    def insert_synthetic(self, n: int, seed: int = 1) -> int:
        return int(
            K.insert_synthetic(
                n,
                seed,
                self.keys,
                self.i64,
                self.u8,
                self.links,
                self.idx_row,
                self.idx_tag,
                self.free_rows,
                self.g,
            )
        )

    @property
    def totals(self) -> dict[str, int]:
        g = self.g
        return {
            "created": int(g[L.G_TOTAL_CREATED]),
            "expired": int(g[L.G_TOTAL_EXPIRED]),
            "evicted": int(g[L.G_TOTAL_EVICTED]),
            "retransmissions": int(g[L.G_TOTAL_RETRANS]),
            "out_of_order": int(g[L.G_TOTAL_OOO]),
            "rtt_untracked": int(g[L.G_RTT_UNTRACKED]),
        }

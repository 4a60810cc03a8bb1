"""FlowTable: allocation, growth and the Python side of the flow kernels.

The table starts small and grows: ``min(max_flows, INITIAL_ROWS)`` rows (``initial_flows``
overrides it), with an index of twice that many slots rounded up to a power of two. When a
new flow finds no free row the kernel stops (``ST_GROW_ROWS``, a rare event: log2 of the
cap times per run, so the per-packet path pays nothing) and the rows double, capped at
``max_flows``, and the index is rebuilt by a kernel. Only a table at ``max_flows`` rows
evicts, so results are exactly those of a table pre-sized to the cap (rows are handed out in
the same order). ``max_flows = 0`` means unlimited: the table doubles while memory allows;
when a doubling would not fit in the available memory (``netscope.memory``) the table stops
growing and evicts from then on as if its size were the cap (one warning), rather than
letting the kernel's OOM killer end the capture. Scale mode (all three analysis switches
off) allocates no sequence or RTT columns at all.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netscope import memory
from netscope.columns import DecodedColumns
from netscope.flows import layout as L
from netscope.kernels import flowtable as K

log = logging.getLogger("netscope.flows")

# Rows a table starts with (fewer if max_flows is smaller): ~14 MB in deep mode, so a
# pipeline of many shards or a huge --max-flows costs nothing until flows arrive.
INITIAL_ROWS = 65536
UNLIMITED_INITIAL_ROWS = INITIAL_ROWS  # the name older callers import
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
    # rows allocated up front; 0 = min(max_flows, INITIAL_ROWS). --synthetic-flows pre-sizes.
    initial_flows: int = 0
    # flow-export columns (layout.X_*: IP bytes per direction, already-exported counters) and
    # the per-direction TCP flag unions (layout.B_TCPF_*); off = the kernel skips that work
    export_columns: bool = False

    @property
    def scale_mode(self) -> bool:
        return not (self.rtt or self.retrans or self.out_of_order)

    @property
    def initial_rows(self) -> int:
        """Rows the table allocates at start (never more than the cap)."""
        rows = self.initial_flows if self.initial_flows > 0 else INITIAL_ROWS
        return min(rows, self.max_flows) if self.max_flows > 0 else rows


def _pow2_at_least(n: int) -> int:
    size = 1
    while size < n:
        size <<= 1
    return size


def _index_bytes(rows: int) -> int:
    """Bytes of the hash index for ``rows`` rows (int32 row + uint32 tag per slot)."""
    return 8 * _pow2_at_least(max(2 * rows, 16))


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
        rows = opts.initial_rows
        self.deep = not opts.scale_mode
        self._growth_warned = False
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
        self.p[K.P_EXPORT_COL] = self.export_col if opts.export_columns else -1
        # sized from the cap, not the initial rows: the pool does not grow with the table
        cap_rows = opts.max_flows if opts.max_flows > 0 else MAX_RING_SLOTS
        ring_slots = min(MAX_RING_SLOTS, max(1024, 2 * cap_rows)) if opts.rtt else 1
        self._alloc_rings(ring_slots)
        self.g[L.G_RING_FREE_TOP] = ring_slots
        self.exp_keys = np.zeros(
            (EXPIRED_BUFFER if opts.keep_expired else 1, L.KEY_WIDTH), np.uint64
        )
        n_exp = self.exp_keys.shape[0]
        self.exp_i64 = np.zeros((n_exp, max(L.I64_WIDTH, self.i64.shape[1])), dtype=np.int64)
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
        self.i64 = np.full((rows, self.i64_width(self.options)), 0, dtype=np.int64)
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

    @staticmethod
    def i64_width(options: FlowOptions) -> int:
        """Columns of the i64 matrix: the mode's width, plus the export columns if asked."""
        base = L.I64_SCALE_WIDTH if options.scale_mode else L.I64_WIDTH
        return base + (L.X_WIDTH if options.export_columns else 0)

    @property
    def export_col(self) -> int:
        """Index of the first flow-export i64 column (layout.X_*); -1 if not allocated."""
        if not self.options.export_columns:
            return -1
        return L.I64_SCALE_WIDTH if self.options.scale_mode else L.I64_WIDTH

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[0])

    def _grow_rows(self) -> None:
        """Double the rows (at most to max_flows) and rebuild the index; or, when memory
        cannot take the doubling, make the current size the cap (the kernel then evicts)."""
        old = self.capacity
        cap = int(self.p[K.P_MAX_FLOWS])
        new = min(old * 2, cap) if cap > 0 else old * 2
        need = (new - old) * self.row_bytes(self.options) + _index_bytes(new)
        refusal = memory.growth_refusal(need)
        if refusal is not None:
            self.p[K.P_MAX_FLOWS] = old
            if not self._growth_warned:
                self._growth_warned = True
                log.warning(
                    "flow table stopped growing at %d flows: %s; the oldest flows are "
                    "evicted from now on",
                    old,
                    refusal,
                )
            return
        arrays: dict[str, np.ndarray] = {
            "keys": self.keys,
            "i64": self.i64,
            "u8": self.u8,
            "links": self.links,
        }
        if self.deep:
            arrays.update(f64=self.f64, u32=self.u32)
        for name, arr in arrays.items():
            # each byte written once: the old rows copied, the new ones filled (which also
            # faults their pages in now, as _alloc_rows does, not mid-capture)
            grown = np.empty((new, arr.shape[1]), dtype=arr.dtype)
            grown[:old] = arr
            grown[old:] = -1 if name == "links" else 0
            setattr(self, name, grown)
        # The kernel only asks for rows when the free stack is empty, so the new stack is
        # just the new rows, lowest on top: rows are handed out in the order a table
        # pre-sized to the cap would hand them out.
        top = int(self.g[L.G_FREE_TOP])
        free = np.arange(new - 1, old - 1, -1, dtype=np.int32)
        self.free_rows = np.concatenate([free, self.free_rows[:top], np.zeros(old - top, np.int32)])
        self.g[L.G_FREE_TOP] = top + (new - old)
        self._alloc_index(new)
        K.rebuild_index(self.keys, self.u8, self.idx_row, self.idx_tag)

    @staticmethod
    def row_bytes(options: FlowOptions) -> int:
        """Bytes one row costs in every per-row matrix (index excluded)."""
        deep = not options.scale_mode
        i64 = FlowTable.i64_width(options)
        per = 8 * L.KEY_WIDTH + 8 * i64 + L.U8_WIDTH
        per += 4 * (L.LINK_WIDTH if options.rtt else 2)
        if deep:
            per += 8 * L.F64_WIDTH + 4 * L.U32_WIDTH
        return per + 4  # free-row stack

    @classmethod
    def start_bytes(cls, options: FlowOptions) -> int:
        """Bytes a new table allocates up front (rows, index, RTT pool, expired buffer);
        the memory check of a run adds this up before anything is allocated."""
        rows = options.initial_rows
        total = rows * cls.row_bytes(options) + _index_bytes(rows)
        if options.rtt:
            cap_rows = options.max_flows if options.max_flows > 0 else MAX_RING_SLOTS
            slots = min(MAX_RING_SLOTS, max(1024, 2 * cap_rows))
            total += slots * (L.RTT_RING * 12 + 12)
        if options.keep_expired:
            i64 = max(L.I64_WIDTH, cls.i64_width(options))
            total += EXPIRED_BUFFER * (8 * L.KEY_WIDTH + 8 * i64 + 8 * L.F64_WIDTH + L.U8_WIDTH + 1)
        return total

    @classmethod
    def full_bytes(cls, options: FlowOptions) -> int:
        """Bytes the table holds once grown to max_flows rows (0 = unlimited: unknown, 0)."""
        if options.max_flows <= 0:
            return 0
        grown = dataclasses.replace(options, initial_flows=options.max_flows)
        return cls.start_bytes(grown)

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
                cols.l3_off,
                cols.payload_off,
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

"""ZeekConnTracker: the Python side of the Zeek connection kernel (``kernels.zeekconn``).

Attached as a batch observer of the inline processor only when a conn.log export is
requested (``--export-zeek-conn`` / ``--export-zeek-conn-json``), so a run without one
allocates and computes nothing for it. Finished connections arrive in batches of numpy
rows (``ZeekConnBatch``) at ``on_finished``; the conn.log writer formats them.

Timeouts: Zeek's defaults (TCP 5 min, UDP and ICMP 1 min of inactivity) unless the user
set a flow timeout, which then applies to every protocol. Zeek's other connection timers
(``tcp_attempt_delay`` 5 s, ``tcp_close_delay`` / ``tcp_reset_delay`` 5 s,
``tcp_partial_close_delay`` 3 s) always apply: they decide where Zeek splits a 4-tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netscope.batch import PacketBatch
from netscope.columns import DecodedColumns
from netscope.flows import zeek_ports
from netscope.kernels import zeekconn as K

INITIAL_ROWS = 4096
OUT_BUFFER = 4096
SECOND_NS = 1_000_000_000

# Zeek's defaults (base/init-bare.zeek)
TCP_INACTIVITY_S = 300.0
UDP_INACTIVITY_S = 60.0
ICMP_INACTIVITY_S = 60.0
TCP_ATTEMPT_DELAY_S = 5.0
TCP_CLOSE_DELAY_S = 5.0
TCP_PARTIAL_CLOSE_DELAY_S = 3.0


@dataclass
class ZeekConnBatch:
    """Finished connections (views into the tracker's out buffer, valid during the call).

    ``keys`` has the flow table's key layout (canonical endpoint A first); ``zb[:,
    ZB_ORIG]`` says which side is Zeek's originator; ``x`` holds payload sizes per side
    and the conn_state code."""

    keys: np.ndarray
    zi: np.ndarray
    zb: np.ndarray
    hist: np.ndarray
    x: np.ndarray
    count: int


FinishedHandler = Callable[[ZeekConnBatch], None]


class ZeekConnTracker:
    """Zeek's connection model over decoded batches (a ``BatchObserver``)."""

    def __init__(self, timeout_secs: float | None = None, initial_rows: int = INITIAL_ROWS) -> None:
        self.on_finished: FinishedHandler | None = None
        self.p = np.zeros(K.P_WIDTH, dtype=np.int64)
        if timeout_secs is None:
            tcp, udp, icmp = TCP_INACTIVITY_S, UDP_INACTIVITY_S, ICMP_INACTIVITY_S
        else:
            tcp = udp = icmp = float(timeout_secs)
        self.p[K.P_TCP_TIMEOUT] = int(round(tcp * SECOND_NS))
        self.p[K.P_UDP_TIMEOUT] = int(round(udp * SECOND_NS))
        self.p[K.P_ICMP_TIMEOUT] = int(round(icmp * SECOND_NS))
        self.p[K.P_ATTEMPT] = int(TCP_ATTEMPT_DELAY_S * SECOND_NS)
        self.p[K.P_CLOSE] = int(TCP_CLOSE_DELAY_S * SECOND_NS)
        self.p[K.P_PARTIAL_CLOSE] = int(TCP_PARTIAL_CLOSE_DELAY_S * SECOND_NS)
        self.g = np.zeros(K.G_WIDTH, dtype=np.int64)
        self.likely_ports = zeek_ports.likely_server_port_table()
        self._alloc(max(16, initial_rows))
        self.g[K.G_FREE_TOP] = self.capacity
        self.free_rows = np.arange(self.capacity - 1, -1, -1, dtype=np.int32)
        self.out_keys = np.zeros((OUT_BUFFER, 5), dtype=np.uint64)
        self.out_i = np.zeros((OUT_BUFFER, K.ZI_WIDTH), dtype=np.int64)
        self.out_b = np.zeros((OUT_BUFFER, K.ZB_WIDTH), dtype=np.uint8)
        self.out_hist = np.zeros((OUT_BUFFER, K.HIST_MAX), dtype=np.uint8)
        self.out_x = np.zeros((OUT_BUFFER, K.X_WIDTH), dtype=np.int64)
        self.finished = 0

    def _alloc(self, rows: int) -> None:
        self.keys = np.zeros((rows, 5), dtype=np.uint64)
        self.zi = np.zeros((rows, K.ZI_WIDTH), dtype=np.int64)
        self.zb = np.zeros((rows, K.ZB_WIDTH), dtype=np.uint8)
        self.hist = np.zeros((rows, K.HIST_MAX), dtype=np.uint8)
        self._alloc_index(rows)

    def _alloc_index(self, rows: int) -> None:
        size = 16
        while size < 2 * rows:
            size <<= 1
        self.idx_row = np.full(size, -1, dtype=np.int32)
        self.idx_tag = np.zeros(size, dtype=np.uint32)

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[0])

    @property
    def active(self) -> int:
        return int(self.g[K.G_ACTIVE])

    def _grow(self) -> None:
        """Double the rows (Zeek keeps every connection until its timers end it)."""
        old = self.capacity
        new = old * 2
        for name in ("keys", "zi", "zb", "hist"):
            arr = getattr(self, name)
            grown = np.zeros((new, arr.shape[1]), dtype=arr.dtype)
            grown[:old] = arr
            setattr(self, name, grown)
        top = int(self.g[K.G_FREE_TOP])  # 0: the kernel asks only when none is free
        self.free_rows = np.concatenate(
            [np.arange(new - 1, old - 1, -1, dtype=np.int32), np.zeros(old, np.int32)]
        )
        self.g[K.G_FREE_TOP] = top + (new - old)
        self._alloc_index(new)
        K.rebuild_index(self.keys, self.zb, self.idx_row, self.idx_tag)

    def __call__(self, batch: PacketBatch, cols: DecodedColumns) -> None:
        """BatchObserver entry point."""
        self.observe(batch, cols)

    def observe(self, batch: PacketBatch, cols: DecodedColumns) -> None:
        """Fold a decoded batch in (the raw bytes are read for the IP length fields)."""
        i = 0
        count = batch.count
        while i < count:
            i, status = K.observe(
                i, count, batch.buf, batch.offsets, batch.caplens, batch.ts_ns, cols.err,
                cols.l3,
                cols.l3_off, cols.src_hi, cols.src_lo, cols.dst_hi, cols.dst_lo, cols.proto,
                cols.l4_off, cols.sport, cols.dport,
                cols.tcp_flags, cols.seq, cols.ack, cols.win, cols.icmp_type, cols.icmp_code,
                cols.payload_off, cols.payload_len, self.keys, self.zi, self.zb,
                self.hist, self.idx_row, self.idx_tag, self.free_rows, self.g, self.p,
                self.likely_ports, K.ICMP4_PAIR, K.ICMP6_PAIR, self.out_keys, self.out_i,
                self.out_b, self.out_hist, self.out_x,
            )  # fmt: skip
            i = int(i)
            if status == K.ST_GROW:
                self._grow()
            elif status == K.ST_OUT_FULL:
                self.drain()
        self.drain()

    def _sweep(self, now_ns: int, flush_all: bool) -> None:
        while True:
            status = K.sweep(
                now_ns, self.keys, self.zi, self.zb, self.hist, self.idx_row,
                self.idx_tag, self.free_rows, self.g, self.p, self.out_keys, self.out_i,
                self.out_b, self.out_hist, self.out_x, flush_all,
            )  # fmt: skip
            self.drain()
            if status != K.ST_OUT_FULL:
                return

    def expire_idle(self, now_ns: int) -> None:
        """Finish connections whose timers ran out by ``now_ns`` (live idle ticks)."""
        self._sweep(now_ns, False)

    def finish(self) -> None:
        """End of input: every remaining connection is finished (as Zeek does at exit)."""
        self._sweep(np.iinfo(np.int64).max, True)

    def drain(self) -> None:
        n = int(self.g[K.G_OUT])
        if not n:
            return
        self.g[K.G_OUT] = 0
        self.finished += n
        if self.on_finished is not None:
            self.on_finished(
                ZeekConnBatch(
                    self.out_keys[:n],
                    self.out_i[:n],
                    self.out_b[:n],
                    self.out_hist[:n],
                    self.out_x[:n],
                    n,
                )
            )

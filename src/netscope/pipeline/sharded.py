"""Sharded pipeline: the capture thread routes, shard threads decode and track flows.

Design (docs/pipeline.md has the diagram and the tuning notes):

- **Capture side** (the caller's thread, ``feed``): one pass of the router kernel per
  batch segment hashes every packet to a shard straight from raw bytes, a counting
  sort groups packets by shard, and a gather kernel copies each packet's *header
  bytes* (exactly the bytes the decoder reads, ``kernels.router``) plus its
  metadata into a compact per-segment buffer. Sources reuse their byte buffer, so a
  slice handed to another thread must not point into it; copying headers only costs
  a fraction of copying whole packets and needs no buffer life-time protocol with
  the reader.
- **Shards** are threads, each owning an ``Analyzer``, a ``FlowTable`` (``max_flows``
  applies per shard), per-shard copies of the batch observers (anomaly detection:
  thresholds apply per shard) and a SpaceSaving heavy-hitter set. Their work is
  nogil kernels, so two shards really use two cores.
- **Markers** keep results identical to inline mode. Capture time is known on the
  capture side, so it cuts batches at stats-tick boundaries and at the flow table's
  once-per-second inactivity sweeps and puts tick/sweep markers into every shard
  queue in order. Each shard table runs exactly the sweeps the inline table would
  (its own sweep schedule is disabled), so expiry and restarts match flow for flow.
- **Queues** are bounded in packets (``pipeline.channel_capacity``). A slice is
  admitted when it fits or the queue is empty. For live input a slice that does not
  fit is dropped and counted (dispatch drops; capture never blocks). A file cannot
  overrun, so offline input waits instead (``block_when_full``): results stay exact.
- **Aggregation** happens on the capture thread (so stats lines never interleave with
  packet lines): shard tick parts are merged when all shards answered, or (live capture)
  after the tick interval + 5 ms; a late part's totals roll into the next tick. File
  input ticks on capture time and always waits for every shard. Reported
  flows' deltas are reset exactly by sending "subtract" messages back to their shard.
"""

from __future__ import annotations

import copy
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from netscope.analysis import Analyzer, Counters
from netscope.batch import PacketBatch
from netscope.flows import layout as L
from netscope.flows.records import FlowRecord, records_from_rows
from netscope.flows.table import ExpiredBatch, FlowOptions, FlowTable
from netscope.pipeline.inline import BatchObserver, Tick, TickHandler
from netscope.signals import stop_requested

NEVER = int(np.iinfo(np.int64).max)
SWEEP_EVERY_NS = 1_000_000_000  # mirrors kernels.flowtable.SWEEP_EVERY_NS
LATE_SHARD_GRACE_NS = 5_000_000  # SPEC §6: wait at most tick + 5 ms for slow shards
POLL_S = 0.05
# Initial header-copy buffer per packet (Ethernet + IPv6 + TCP is 74 bytes); rare
# larger extents (packets copied whole) grow the buffer.
HEADER_BYTES_GUESS = 96
# Threads here run nogil kernels with short Python stretches between them; each stretch
# must re-take the GIL. With CPython's default 5 ms switch interval a thread returning
# from a kernel can wait up to 5 ms for a thread busy in Python to let go (a convoy that
# cost ~30 % on the reference trace). 1 ms measured best; applied while a pipeline runs.
SWITCH_INTERVAL_S = 0.001  # blocked waits wake this often so Ctrl-C is handled promptly

# Test hook: called in the worker thread with (shard, packets) before each slice is
# processed (tests inject a slow worker with it). None in production.
WORKER_DELAY_HOOK: Callable[[int, int], None] | None = None

StatsLine = Callable[[Tick, tuple[int, int]], str]


def _wrap_i64(x: int) -> int:
    """int64 wrap-around, as the flow kernel computes its next sweep time (a clamped
    far-future timestamp wraps, and then every packet sweeps: mirrored exactly)."""
    return ((x + (1 << 63)) % (1 << 64)) - (1 << 63)


def heavy_capacity(top_n: int) -> int:
    """SpaceSaving capacity for a top list of ``top_n`` (SPEC §6: max(4·N, 16))."""
    return max(4 * top_n, 16)


# ---- queue items -------------------------------------------------------------------


@dataclass
class _Slice:
    batch: PacketBatch
    caplen_extra: int  # original caplen sum minus copied bytes (for bytes_captured)


@dataclass(frozen=True)
class _TickMarker:
    seq: int
    start_ns: int
    end_ns: int
    interval_ns: int
    final: bool = False


@dataclass(frozen=True)
class _Sweep:
    ts_ns: int


_STOP = object()


@dataclass
class _Part:
    """One shard's contribution to a tick."""

    shard: int
    bytes: int
    packets: int
    active: int
    # (delta_bytes, delta_pkts, record, row, key): the record is built by the shard at
    # tick time (it owns the table), with everything a stats line or a dashboard frame shows
    top: list[tuple[int, int, FlowRecord, int, tuple[int, ...]]]


class ShardQueue:
    """Bounded (in packets) FIFO between the capture thread and one shard.

    Markers and control messages are always admitted (they are tiny and rare);
    packet slices are admitted when they fit within ``capacity`` or the queue holds
    no packets (so a slice larger than the capacity still gets through an idle shard).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[object] = deque()
        self._pending = 0
        self._cond = threading.Condition()

    def offer(self, item: _Slice, block: bool, stop: threading.Event) -> bool:
        """Queue ``item`` if it fits; otherwise wait (``block``) or refuse. A waiting offer
        gives up once the pipeline stops or a signal asks the run to stop, so Ctrl-C is not
        held up by a full queue: the rest of the batch becomes dispatch drops (captured and
        counted, not analysed), which keeps the pcap output and the packet count equal."""
        n = item.batch.count
        with self._cond:
            while self._pending and self._pending + n > self.capacity:
                if not block or stop.is_set() or stop_requested():
                    return False
                self._cond.wait(POLL_S)
            self._items.append(item)
            self._pending += n
            self._cond.notify_all()
            return True

    def put(self, item: object) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def get(self) -> object:
        """Next item; a slice stops counting against the capacity once taken."""
        with self._cond:
            while not self._items:
                self._cond.wait()
            item = self._items.popleft()
            if isinstance(item, _Slice):
                self._pending -= item.batch.count
                self._cond.notify_all()
            return item

    @property
    def depth(self) -> int:
        return self._pending

    def discard_slices(self) -> int:
        """Drop queued packet slices (interrupted run); returns how many packets."""
        with self._cond:
            kept: deque[object] = deque()
            dropped = 0
            for item in self._items:
                if isinstance(item, _Slice):
                    dropped += item.batch.count
                else:
                    kept.append(item)
            self._items = kept
            self._pending -= dropped
            self._cond.notify_all()
            return dropped


class Shard:
    """One worker: Analyzer + FlowTable + observers + SpaceSaving, fed by a queue."""

    def __init__(
        self,
        index: int,
        options: FlowOptions,
        capacity: int,
        top_n: int,
        observers: list[BatchObserver],
        results: deque[tuple[int, _Part]],
        results_cond: threading.Condition,
    ) -> None:
        self.index = index
        self.analyzer = Analyzer()
        self.flows = FlowTable(options)
        self.flows.g[L.G_NEXT_EXPIRY_NS] = NEVER  # sweeps arrive as markers
        self.queue = ShardQueue(capacity)
        self.observers = observers
        self.top_n = top_n
        cap = heavy_capacity(top_n)
        self.ss_key = np.zeros((cap, L.KEY_WIDTH), dtype=np.uint64)
        self.ss_hash = np.zeros(cap, dtype=np.uint64)
        self.ss_cnt = np.zeros(cap, dtype=np.int64)
        self.ss_used = np.zeros(1, dtype=np.int64)
        self._out_rows = np.zeros(cap, dtype=np.int32)
        self._out_ent = np.zeros(cap, dtype=np.int32)
        self._results = results
        self._results_cond = results_cond
        # The aggregator's answer to each tick part: (row, delta_bytes, delta_pkts) of
        # this shard's flows that made the merged top list.
        self.replies: queue.Queue[list[tuple[int, int, int]]] = queue.Queue()
        self.abort = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"netscope-shard-{index}", daemon=True
        )

    # ---- worker thread ----
    def _run(self) -> None:
        q = self.queue
        while True:
            item = q.get()
            if item is _STOP:
                return
            if self.error is not None:
                continue
            try:
                self._handle(item)
            except BaseException as exc:  # surfaced on the capture thread
                self.error = exc

    def _handle(self, item: object) -> None:
        if isinstance(item, _Slice):
            self._process(item)
        elif isinstance(item, _TickMarker):
            self._tick(item)
        elif isinstance(item, _Sweep):
            self.flows.expire_idle(item.ts_ns)
            self.flows.g[L.G_NEXT_EXPIRY_NS] = NEVER

    def _process(self, item: _Slice) -> None:
        hook = WORKER_DELAY_HOOK
        if hook is not None:
            hook(self.index, item.batch.count)
        batch = item.batch
        cols = self.analyzer.process(batch)
        self.analyzer.counters.bytes_captured += item.caplen_extra
        for observer in self.observers:
            observer(batch, cols)
        self.flows.observe(batch.ts_ns, batch.wirelens, cols, batch.count)
        if self.top_n > 0:
            from netscope.kernels.heavy import offer

            offer(
                batch.count, batch.wirelens, cols.err, cols.l3, cols.src_hi, cols.src_lo,
                cols.dst_hi, cols.dst_lo, cols.proto, cols.l4_off, cols.sport, cols.dport,
                self.ss_key, self.ss_hash, self.ss_cnt, self.ss_used,
            )  # fmt: skip

    def _tick(self, marker: _TickMarker) -> None:
        t = self.flows
        g = t.g
        top: list[tuple[int, int, FlowRecord, int, tuple[int, ...]]] = []
        ents_sent: list[int] = []
        if self.top_n > 0:
            from netscope.kernels.heavy import resolve

            k = resolve(
                self.ss_key, self.ss_hash, self.ss_used, t.keys, t.i64, t.u8,
                t.idx_row, t.idx_tag, self._out_rows, self._out_ent,
            )  # fmt: skip
            rows = self._out_rows[:k]
            ents = self._out_ent[:k]
            order = np.argsort(-t.i64[rows, L.I_DELTA_BYTES], kind="stable")[: self.top_n]
            rows = rows[order]
            recs = records_from_rows(t.keys, t.i64, t.f64 if t.deep else None, t.u8, rows)
            ents_sent = ents[order].tolist()
            for rec, row in zip(recs, rows.tolist(), strict=True):
                key = tuple(int(x) for x in t.keys[row])
                top.append((rec.delta_bytes, int(t.i64[row, L.I_DELTA_PKTS]), rec, row, key))
        part = _Part(self.index, int(g[L.G_TICK_BYTES]), int(g[L.G_TICK_PKTS]), t.active, top)
        g[L.G_TICK_BYTES] = 0
        g[L.G_TICK_PKTS] = 0
        with self._results_cond:
            self._results.append((marker.seq, part))
            self._results_cond.notify_all()
        # Wait for the aggregator's verdict before touching another packet: the flows
        # it reported restart their delta now, exactly where inline mode resets them.
        while True:
            try:
                reported = self.replies.get(timeout=POLL_S)
                break
            except queue.Empty:
                if self.abort.is_set():
                    return
        for row, delta_bytes, delta_pkts in reported:
            t.i64[row, L.I_DELTA_BYTES] -= delta_bytes
            t.i64[row, L.I_DELTA_PKTS] -= delta_pkts
        if top:
            chosen = {row for row, _, _ in reported}
            for (_db, _dp, _rec, row, _key), ent in zip(top, ents_sent, strict=True):
                if row in chosen:
                    self.ss_cnt[ent] = 0


class _ExpiredRelay:
    """Serialises expired-flow batches from all shards into one sink."""

    def __init__(self, sink: Callable[[ExpiredBatch], None]) -> None:
        self._sink = sink
        self._lock = threading.Lock()

    def __call__(self, batch: ExpiredBatch) -> None:
        with self._lock:
            self._sink(batch)


@dataclass
class MergedFlows:
    """The shards' tables concatenated (exports and summary read this like a FlowTable).

    Rows are ordered by first-seen time (stable across shards), the order an inline
    table allocates rows in when nothing was recycled; exports then sort by bytes."""

    keys: np.ndarray
    i64: np.ndarray
    f64: np.ndarray | None
    u8: np.ndarray
    deep: bool
    totals: dict[str, int]

    @property
    def active(self) -> int:
        return int(self.keys.shape[0])

    def live_rows(self) -> np.ndarray:
        return np.arange(self.keys.shape[0])

    @classmethod
    def merge(cls, tables: list[FlowTable]) -> MergedFlows:
        parts = [(t, t.live_rows()) for t in tables]
        keys = np.concatenate([t.keys[r] for t, r in parts])
        i64 = np.concatenate([t.i64[r] for t, r in parts])
        u8 = np.concatenate([t.u8[r] for t, r in parts])
        deep = tables[0].deep
        f64 = np.concatenate([t.f64[r] for t, r in parts]) if deep else None
        order = np.argsort(i64[:, L.I_FIRST_NS], kind="stable")
        totals: dict[str, int] = {}
        for t in tables:
            for k, v in t.totals.items():
                totals[k] = totals.get(k, 0) + v
        return cls(
            keys[order],
            i64[order],
            f64[order] if f64 is not None else None,
            u8[order],
            deep,
            totals,
        )


class _StatsAccumulator:
    """Merged ticks summed up to one stats line (dashboard runs tick faster than that):
    totals add up, each reported flow's byte deltas add up by flow key."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.bytes = 0
        self.packets = 0
        self.flows: dict[tuple[object, ...], list[Any]] = {}

    def add(self, tick: Tick, records: list[FlowRecord]) -> None:
        self.bytes += tick.bytes
        self.packets += tick.packets
        for rec in records:
            key = (rec.protocol, rec.a_ip, rec.a_port, rec.b_ip, rec.b_port)
            entry = self.flows.get(key)
            if entry is None:
                self.flows[key] = [rec.delta_bytes, rec.label()]
            else:
                entry[0] += rec.delta_bytes

    def total(self, last: Tick) -> Tick:
        return Tick(self.start_ns, last.end_ns, last.end_ns - self.start_ns, self.bytes,
                    self.packets, last.active_flows)  # fmt: skip

    def top(self, n: int) -> list[tuple[str, int]]:
        ranked = sorted(self.flows.values(), key=lambda e: -e[0])[: max(n, 0)]
        return [(label, db) for db, label in ranked]


class LiveCounters:
    """``Counters``-like view for the dashboard: capture-side totals plus the shards'
    parse errors (plain integer reads of values shard threads update: a snapshot)."""

    def __init__(self, processor: PipelineProcessor) -> None:
        self._p = processor

    @property
    def packets(self) -> int:
        return self._p.analyzer.counters.packets

    @property
    def bytes_wire(self) -> int:
        return self._p.analyzer.counters.bytes_wire

    @property
    def parse_errors(self) -> int:
        p = self._p
        if p._closed:  # shard counts were merged into the capture counters
            return p.analyzer.counters.parse_errors
        return sum(s.analyzer.counters.parse_errors for s in p.shards)


class LiveFlows:
    """``totals`` / ``active`` summed over the shard tables while they run; the merged
    table once the run is over."""

    def __init__(self, processor: PipelineProcessor) -> None:
        self._p = processor

    @property
    def totals(self) -> dict[str, int]:
        p = self._p
        if p._merged is not None:
            return p._merged.totals
        out: dict[str, int] = {}
        for s in p.shards:
            for k, v in s.flows.totals.items():
                out[k] = out.get(k, 0) + v
        return out

    @property
    def active(self) -> int:
        p = self._p
        if p._merged is not None:
            return p._merged.active
        return sum(s.flows.active for s in p.shards)


@dataclass
class _PendingTick:
    marker: _TickMarker
    deadline: float
    parts: dict[int, _Part] = field(default_factory=dict)


class _CaptureCounters:
    """``processor.analyzer`` for the runner: capture-side counters it can read."""

    def __init__(self) -> None:
        self.counters = Counters()


class PipelineProcessor:
    """Drop-in for ``InlineProcessor`` (feed / finish / on_tick / observers / flows)
    that spreads the work over ``workers`` shard threads."""

    def __init__(
        self,
        flow_options: FlowOptions,
        workers: int,
        tick_interval_ns: int = 0,
        channel_capacity: int = 4096,
        top_n: int = 0,
        block_when_full: bool = True,
        out: TextIO | None = None,
        stats_line: StatsLine | None = None,
        stats_top: int | None = None,
        stats_every_ns: int = 0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.flow_options = flow_options
        self.tick_interval_ns = tick_interval_ns
        self.channel_capacity = channel_capacity
        self.top_n = top_n
        self.block_when_full = block_when_full
        self.out = out
        self.stats_line = stats_line
        self.on_tick: TickHandler | None = None  # called with every merged Tick
        self.on_expired: Callable[[ExpiredBatch], None] | None = None
        self.observers: list[BatchObserver] = []  # copied per shard at start (see docs)
        self.observer_factories: list[Callable[[], BatchObserver]] = []
        self.wall_clock_ticks = False
        self.analyzer = _CaptureCounters()
        self.dispatch_drops = 0
        self._drops_shown = 0
        self._ready_ticks: deque[tuple[Tick, list[FlowRecord]]] = deque()
        # The merged top list (longest first by byte delta) of the tick being handed to
        # ``on_tick``: the dashboard reads it there (``tick_top``), the stats lines use its
        # first ``stats_top`` entries.
        self.tick_top: list[FlowRecord] = []
        self.stats_top = top_n if stats_top is None else stats_top
        # Stats lines every ``stats_every_ns`` of tick time (0 = every tick): with the
        # dashboard the processor ticks every web.tick_ms, the stats line keeps its interval.
        self.stats_every_ns = stats_every_ns
        self._stats_acc: _StatsAccumulator | None = None
        # Called on the capture thread with every batch before it is dispatched (global
        # packet order; the dashboard samples packets here).
        self.capture_observers: list[Callable[[PacketBatch], None]] = []
        self._agg_stop = False
        self._agg_flush = False
        self._agg_thread: threading.Thread | None = None
        self._saved_switch: float | None = None
        self.shards: list[Shard] = []
        self._results: deque[tuple[int, _Part]] = deque()
        self._results_cond = threading.Condition()
        self._pending: deque[_PendingTick] = deque()
        self._carry = (0, 0)  # totals of parts that arrived after their tick was shown
        self._seq = 0
        self._tick_start: int | None = None
        self._tick_at = NEVER
        self._sweep_at = NEVER if flow_options.timeout_secs <= 0 else -NEVER
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        self._merged: MergedFlows | None = None
        self._announced_unsupported: dict[int, int] = {}
        cap = 32768
        self._shard_of = np.zeros(cap, dtype=np.int32)
        self._need = np.zeros(cap, dtype=np.int32)
        self._order = np.zeros(cap, dtype=np.int32)
        self._counts = np.zeros(workers, dtype=np.int64)
        self._starts = np.zeros(workers + 1, dtype=np.int64)

    # ---- construction from a Config ----
    @classmethod
    def for_config(
        cls, cfg: Any, options: FlowOptions, tick_interval_ns: int, out: TextIO, live: bool
    ) -> PipelineProcessor:
        """The processor a run asks for (offline input waits on full queues, live drops).

        With the dashboard (``--web``) the processor ticks every web.tick_ms: merged ticks
        carry the top N = max(stats.top_flows, web.top_n) flows, the dashboard shows the
        first web.top_n, stats lines the first stats.top_flows every stats.interval_ms."""
        stats_top = cfg.stats.top_flows if cfg.stats.enabled else 0
        top = max(stats_top, cfg.web.top_n if cfg.web.enabled else 0)
        return cls(
            options,
            cfg.pipeline.worker_count(),
            tick_interval_ns,
            cfg.pipeline.channel_capacity,
            top_n=top,
            block_when_full=not live,
            out=out if cfg.stats.enabled else None,
            stats_top=stats_top,
            stats_every_ns=cfg.stats.interval_ms * 1_000_000 if cfg.web.enabled else 0,
        )

    # ---- life cycle ----
    def _start(self) -> None:
        self._started = True
        self._saved_switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._saved_switch, SWITCH_INTERVAL_S))
        relay = _ExpiredRelay(self.on_expired) if self.on_expired is not None else None
        for i in range(self.workers):
            observers: list[BatchObserver] = [
                ob if i == 0 else copy.deepcopy(ob) for ob in self.observers
            ]
            observers += [factory() for factory in self.observer_factories]
            shard = Shard(
                i, self.flow_options, self.channel_capacity, self.top_n, observers,
                self._results, self._results_cond,
            )  # fmt: skip
            shard.flows.on_expired = relay
            self.shards.append(shard)
            shard.thread.start()
        self._agg_thread = threading.Thread(
            target=self._agg_loop, name="netscope-aggregator", daemon=True
        )
        self._agg_thread.start()

    @property
    def ticking(self) -> bool:
        return self.tick_interval_ns > 0 and (self.on_tick is not None or self.out is not None)

    def feed(self, batch: PacketBatch) -> None:
        """Route one batch to the shards (markers at tick and sweep boundaries)."""
        n = batch.count
        if n == 0:
            return
        if not self._started:
            self._start()
        self._raise_worker_error()
        c = self.analyzer.counters
        c.packets += n
        c.bytes_wire += int(batch.wirelens[:n].sum(dtype=np.int64))
        c.bytes_captured += int(batch.caplens[:n].sum(dtype=np.int64))
        for observe in self.capture_observers:
            observe(batch)
        if self._shard_of.shape[0] < n:
            self._shard_of = np.zeros(n, dtype=np.int32)
            self._need = np.zeros(n, dtype=np.int32)
            self._order = np.zeros(n, dtype=np.int32)
        from netscope.kernels.router import next_event

        ts = batch.ts_ns
        if self.ticking and not self.wall_clock_ticks and self._tick_start is None:
            self._tick_start = int(ts[0])
            self._tick_at = self._tick_start + self.tick_interval_ns
        seg = 0  # first packet not yet dispatched
        search = 0  # markers due at ``seg`` were already sent: look from here
        while True:
            j = int(next_event(ts, search, n, self._tick_at, self._sweep_at))
            if j > seg:
                self._dispatch(batch, seg, j)
            if j >= n:
                break
            t = int(ts[j])
            if t >= self._tick_at:  # tick before sweep, as in the flow kernel
                self._capture_tick(t)
            if t >= self._sweep_at:
                for shard in self.shards:
                    shard.queue.put(_Sweep(t))
                self._sweep_at = _wrap_i64(t + SWEEP_EVERY_NS)
            seg = j
            search = j + 1
        self._flush_output()

    def _dispatch(self, batch: PacketBatch, i: int, j: int) -> None:
        """Route packets ``[i, j)``, copy their header bytes, hand each shard its slice."""
        from netscope.kernels.router import gather_meta, route_copy, split_by_shard

        m = j - i
        out_buf = np.empty(m * HEADER_BYTES_GUESS + 4096, dtype=np.uint8)
        out_off = np.empty(m, dtype=np.int64)
        self._counts[:] = 0
        k, pos, unsupported = i, 0, 0
        while True:
            k, pos, unsup = route_copy(
                batch.buf, batch.offsets, batch.caplens, batch.linktypes, k, j, self.workers,
                self._shard_of[k - i :], self._need[k - i :], self._counts, out_buf,
                out_off[k - i :], pos,
            )  # fmt: skip
            unsupported += unsup
            if k >= j:
                break
            # A packet whose decoder-read extent is large (an undecodable packet is
            # copied whole): grow the buffer, keep what was copied, carry on.
            grown = np.empty(2 * out_buf.shape[0] + int(batch.caplens[k]), dtype=np.uint8)
            grown[:pos] = out_buf[:pos]
            out_buf = grown
        if unsupported:
            self._count_unsupported(batch, i, j)
        split_by_shard(self._shard_of, m, self._counts, self._starts, self._order)
        off = np.empty(m, dtype=np.int64)
        cap = np.empty(m, dtype=np.int32)
        wire = np.empty(m, dtype=np.int32)
        tsa = np.empty(m, dtype=np.int64)
        lt = np.empty(m, dtype=np.int32)
        extra = np.zeros(self.workers, dtype=np.int64)
        gather_meta(
            i, self._order, m, self._need, out_off, batch.caplens, batch.wirelens, batch.ts_ns,
            batch.linktypes, off, cap, wire, tsa, lt, self._starts, extra,
        )  # fmt: skip
        starts = self._starts.tolist()
        extras = extra.tolist()
        for s, shard in enumerate(self.shards):
            a, b = starts[s], starts[s + 1]
            if a == b:
                continue
            sub = PacketBatch(out_buf, off[a:b], cap[a:b], wire[a:b], tsa[a:b], lt[a:b], b - a, 0)
            if not shard.queue.offer(_Slice(sub, extras[s]), self.block_when_full, self._stop):
                self.dispatch_drops += b - a

    def _count_unsupported(self, batch: PacketBatch, i: int, j: int) -> None:
        from netscope.kernels.router import route_supported

        lts = batch.linktypes[i:j]
        bad = lts[~route_supported(lts)]
        kinds, counts = np.unique(bad, return_counts=True)
        c = self.analyzer.counters
        for k, v in zip(kinds.tolist(), counts.tolist(), strict=True):
            c.unsupported_linktypes[k] = c.unsupported_linktypes.get(k, 0) + v
            c.unsupported_packets += v

    def _capture_tick(self, next_packet_ns: int) -> None:
        """Same boundary arithmetic as ``InlineProcessor._emit_tick``."""
        assert self._tick_start is not None
        interval = self.tick_interval_ns
        end = self._tick_start + interval
        self._send_tick(self._tick_start, end, interval)
        start = end
        if next_packet_ns >= start + interval:
            start += ((next_packet_ns - start) // interval) * interval
        self._tick_start = start
        self._tick_at = start + interval

    def _send_tick(self, start: int, end: int, interval: int, final: bool = False) -> None:
        self._seq += 1
        marker = _TickMarker(self._seq, start, end, interval, final)
        deadline = time.monotonic() + (interval + LATE_SHARD_GRACE_NS) / 1e9
        with self._results_cond:
            self._pending.append(_PendingTick(marker, deadline))
            self._results_cond.notify_all()
        for shard in self.shards:
            shard.queue.put(marker)

    def wall_tick(self, start_ns: int, end_ns: int) -> None:
        """Live capture: a tick for a wall-clock interval, whatever packets came."""
        if not self.ticking:
            return
        if not self._started:
            self._start()
        self._send_tick(start_ns, end_ns, end_ns - start_ns)
        self._flush_output()

    # ---- aggregation (its own thread; output is printed by the capture thread) ----
    def _agg_loop(self) -> None:
        """Merge shard tick parts: a tick is final when every shard answered or, for live
        capture (wall-clock ticks), its deadline (interval + 5 ms after the marker was
        sent) passed. Parts that come later are answered at once and their totals roll
        into the next tick. File input ticks on capture time, which has nothing to do
        with how fast this machine gets through the file, so there every tick waits for
        all shards (results stay exact, at any tick interval)."""
        cond = self._results_cond
        while True:
            ready: list[_PendingTick] = []
            late: list[_Part] = []
            with cond:
                while True:
                    late += self._absorb()
                    now = time.monotonic()
                    while self._pending and (
                        len(self._pending[0].parts) == self.workers
                        or (self.wall_clock_ticks and now >= self._pending[0].deadline)
                        or self._agg_flush
                        or any(shard.error is not None for shard in self.shards)
                    ):
                        ready.append(self._pending.popleft())
                    if ready or late:
                        break
                    if self._agg_stop and not self._pending:
                        return
                    timeout = POLL_S
                    if self._pending:
                        timeout = min(timeout, max(self._pending[0].deadline - now, 0.0) + 1e-4)
                    cond.wait(timeout)
            for part in late:
                self.shards[part.shard].replies.put([])
            for pending in ready:
                self._deliver(pending)

    def _absorb(self) -> list[_Part]:
        """Move arrived parts onto their pending tick (caller holds the condition);
        returns parts whose tick was already delivered."""
        by_seq = {p.marker.seq: p for p in self._pending}
        late: list[_Part] = []
        while self._results:
            seq, part = self._results.popleft()
            pending = by_seq.get(seq)
            if pending is not None:
                pending.parts[part.shard] = part
            else:
                self._carry = (self._carry[0] + part.bytes, self._carry[1] + part.packets)
                late.append(part)
        return late

    def _deliver(self, pending: _PendingTick) -> None:
        m = pending.marker
        parts = list(pending.parts.values())
        with self._results_cond:
            carry, self._carry = self._carry, (0, 0)
        total_bytes = sum(p.bytes for p in parts) + carry[0]
        total_pkts = sum(p.packets for p in parts) + carry[1]
        top = sorted(((p.shard, entry) for p in parts for entry in p.top), key=lambda x: -x[1][0])[
            : self.top_n
        ]
        reported: dict[int, list[tuple[int, int, int]]] = {p.shard: [] for p in parts}
        for shard, (db, dp, _rec, row, _key) in top:
            reported[shard].append((row, db, dp))
        for shard, rows in reported.items():
            self.shards[shard].replies.put(rows)
        if m.final and total_pkts == 0:
            return  # like inline finish(): no partial tick without packets
        tick = Tick(m.start_ns, m.end_ns, m.interval_ns, total_bytes, total_pkts,
                    sum(p.active for p in parts))  # fmt: skip
        records = [rec for _s, (_db, _dp, rec, _r, _k) in top]
        with self._results_cond:
            self._ready_ticks.append((tick, records))

    def _flush_output(self) -> None:
        """Capture thread: show merged ticks (stats line, top flows, on_tick)."""
        while self._ready_ticks:
            tick, records = self._ready_ticks.popleft()
            self.tick_top = records
            if self.on_tick is not None:
                self.on_tick(tick)
            if self.out is None:
                continue
            labels = [(rec.label(), rec.delta_bytes) for rec in records[: self.stats_top]]
            if self.stats_every_ns > 0:  # sum ticks up to the stats interval
                acc = self._stats_acc
                if acc is None:
                    acc = self._stats_acc = _StatsAccumulator(tick.start_ns)
                acc.add(tick, records)
                if tick.end_ns - acc.start_ns < self.stats_every_ns:
                    continue
                self._stats_acc = None
                tick, labels = acc.total(tick), acc.top(self.stats_top)
            self._print_stats(tick, labels)

    def _print_stats(self, tick: Tick, labels: list[tuple[str, int]]) -> None:
        from netscope.flows.stats import format_stats_line

        assert self.out is not None
        drops = (self.dispatch_drops - self._drops_shown, self.dispatch_drops)
        self._drops_shown = self.dispatch_drops
        line = (
            self.stats_line(tick, drops)
            if self.stats_line is not None
            else format_stats_line(tick, dispatch=drops)
        )
        lines = [line]
        seconds = max(tick.interval_ns / 1e9, 1e-9)
        for rank, (label, db) in enumerate(labels, 1):
            lines.append(f"  {rank}. {label} {db * 8 / seconds / 1e6:.2f} Mbps")
        self.out.write("\n".join(lines) + "\n")

    # ---- shutdown ----
    def finish(self) -> None:
        """End of input: shards drain, the last partial tick is shown, tables merge."""
        if not self._started:
            self._closed = True
            return
        if self.ticking and not self.wall_clock_ticks and self._tick_start is not None:
            self._send_tick(
                self._tick_start, self._tick_start + self.tick_interval_ns,
                self.tick_interval_ns, final=True,
            )  # fmt: skip
        self._close(abort=False)

    def _close(self, abort: bool) -> None:
        """Stop the shards (after draining their queues, or discarding queued slices
        when ``abort``), then the aggregator; merge counters; show the last ticks."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if abort:
            for shard in self.shards:
                self.dispatch_drops += shard.queue.discard_slices()
                shard.abort.set()
        for shard in self.shards:
            shard.queue.put(_STOP)
        try:
            for shard in self.shards:
                while shard.thread.is_alive():
                    shard.thread.join(POLL_S)
        except KeyboardInterrupt:  # (library use; the CLI's signals never raise here)
            abort = True
            for shard in self.shards:
                self.dispatch_drops += shard.queue.discard_slices()
                shard.abort.set()
            for shard in self.shards:
                while shard.thread.is_alive():
                    shard.thread.join(POLL_S)
        if self._agg_thread is not None:
            with self._results_cond:
                self._agg_stop = True
                self._agg_flush = True  # every part is in: deliver the rest now
                self._results_cond.notify_all()
            while self._agg_thread.is_alive():
                self._agg_thread.join(POLL_S)
        if not abort:
            self._flush_output()
        c = self.analyzer.counters
        for shard in self.shards:
            c.parse_errors += shard.analyzer.counters.parse_errors
        if self._saved_switch is not None:
            sys.setswitchinterval(self._saved_switch)
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        for shard in self.shards:
            if shard.error is not None:
                err, shard.error = shard.error, None
                raise err

    @property
    def flows(self) -> MergedFlows:
        """The merged snapshot. If ``finish`` was not called (live runs, Ctrl-C), the
        shards first drain their bounded queues (a second Ctrl-C discards them)."""
        if self._merged is None:
            self._close(abort=False)
            if not self.shards:
                self._merged = MergedFlows.merge([FlowTable(self.flow_options)])
            else:
                self._merged = MergedFlows.merge([s.flows for s in self.shards])
        return self._merged

    def queue_depths(self) -> list[int]:
        """Packets waiting in each shard queue (the dashboard's /metrics)."""
        return [s.queue.depth for s in self.shards]

    def live_counters(self) -> LiveCounters:
        """Run counters readable while the shards run (the dashboard's totals)."""
        return LiveCounters(self)

    def live_flows(self) -> LiveFlows:
        """Flow totals readable while the shards run (reading ``flows`` stops them)."""
        return LiveFlows(self)

    def summary_rows(self) -> list[tuple[str, str]]:
        return [("Dispatch drops", str(self.dispatch_drops))]

    def shard_observers(self) -> list[list[BatchObserver]]:
        """Each shard's observers (e.g. to drain per-shard anomaly detectors)."""
        return [s.observers for s in self.shards]


def live_stats_line(drops: Any) -> StatsLine:
    """Live runs: the stats line with the kernel/interface drop counters of
    ``live_run.DropTracker`` and the dispatch drops."""

    def line(tick: Tick, dispatch: tuple[int, int]) -> str:
        from netscope.flows.stats import format_stats_line

        drops.poll()
        d = drops.tick_values()
        return format_stats_line(
            tick, d["kdrop"], d["kdrop_total"], d["ifdrop"], d["ifdrop_total"], dispatch
        )

    return line

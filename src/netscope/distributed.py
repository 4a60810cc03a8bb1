"""Flow analysis of a file set on a Dask cluster (``--dask``, ``netscope.analyze_many``).

How the work is cut: by **flow**, not by file. Task ``i`` of ``N`` reads the whole file
set (in the merged time order of :mod:`netscope.sources.fileset`), routes every packet with
the pipeline's router kernel (``kernels.router.route_batch``: a hash of the flow key, the
same for both directions) and analyses only the packets of shard ``i``. A flow therefore
lives in exactly one task, whole: its counters, first/last seen, TCP state, client side,
retransmission/out-of-order counts and RTT samples are computed by the same kernel over the
same packets in the same order as the single-process run, so they are equal, not merged
approximations. Inactivity sweeps run at the times the single-process table would run
them (computed from every packet's timestamp, as the ``--pipeline`` aggregator does), so
expiry matches too. The driver's merge is a concatenation of disjoint flow tables.

What is *not* exact: with ``max_flows`` reached, eviction picks the oldest flow of a
task's table, not of the whole table (as in ``--pipeline``); the result's metadata says
``eviction_exact: False`` then. Every task reads every file (reading and record scanning
are replicated, decoding and flow tracking are divided): the speed-up is bounded by the
read cost — see docs/scale-out.md for figures.

Scheduling, transport and retries are Dask's: each task is a pure function of its
arguments (``client.map(..., retries=...)``), so a task on a worker that dies is run again
elsewhere and gives the same fragment.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netscope.analysis import Counters
from netscope.flows.table import FlowOptions

NEVER = int(np.iinfo(np.int64).max)
SWEEP_EVERY_NS = 1_000_000_000  # kernels.flowtable's sweep period
RETRIES = 3


def _wrap_i64(x: int) -> int:
    return ((x + (1 << 63)) % (1 << 64)) - (1 << 63)


@dataclass
class Fragment:
    """What one task returns: its shard's flow table rows and run totals."""

    shard: int
    keys: np.ndarray
    i64: np.ndarray
    f64: np.ndarray | None
    u8: np.ndarray
    totals: dict[str, int]
    counters: Counters
    files: list[Any] = field(default_factory=list)  # FileEntry of each file (shard 0 only)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    worker: str = ""
    max_flows_reached: bool = False


def shard_task(
    paths: list[str], shard: int, shards: int, options: FlowOptions, count: int = 0
) -> Fragment:
    """Analyse shard ``shard`` of ``shards`` of the file set ``paths`` (a Dask task)."""
    from netscope import engine
    from netscope.analysis import Analyzer
    from netscope.batch import PacketBatch
    from netscope.flows import layout as L
    from netscope.flows.table import FlowTable
    from netscope.kernels.router import next_event, route_batch
    from netscope.sources.fileset import FileSetReader, expand_paths

    cpu0, wall0 = time.process_time(), time.perf_counter()
    engine.warm_up(announce=False, need=("pipeline",))
    analyzer = Analyzer()
    table = FlowTable(options)
    table.g[L.G_NEXT_EXPIRY_NS] = NEVER  # sweeps at the global schedule, below
    sweep_at = NEVER if options.timeout_secs <= 0 else -NEVER
    reader = FileSetReader(expand_paths(paths))
    shard_of = np.zeros(1, dtype=np.int32)
    need = np.zeros(1, dtype=np.int32)
    counts = np.zeros(shards, dtype=np.int64)
    seen = 0
    try:
        for batch in reader.batches():
            n = batch.count
            if count and seen + n > count:
                n = count - seen
            if n <= 0:
                break
            seen += n
            if shard_of.shape[0] < n:
                shard_of = np.zeros(n, dtype=np.int32)
                need = np.zeros(n, dtype=np.int32)
            route_batch(batch.buf, batch.offsets, batch.caplens, batch.linktypes, 0, n,
                        shards, shard_of, need, counts)  # fmt: skip
            mine = shard_of[:n] == shard
            ts = batch.ts_ns
            seg = search = 0
            while True:
                j = int(next_event(ts, search, n, NEVER, sweep_at))
                if j > seg:
                    idx = seg + np.flatnonzero(mine[seg:j])
                    if idx.size:
                        sub = PacketBatch(batch.buf, batch.offsets[idx], batch.caplens[idx],
                                          batch.wirelens[idx], batch.ts_ns[idx],
                                          batch.linktypes[idx], int(idx.size))  # fmt: skip
                        cols = analyzer.process(sub)
                        table.observe(sub.ts_ns, sub.wirelens, cols, sub.count)
                if j >= n:
                    break
                t = int(ts[j])
                if t >= sweep_at:
                    table.expire_idle(t)
                    table.g[L.G_NEXT_EXPIRY_NS] = NEVER
                    sweep_at = _wrap_i64(t + SWEEP_EVERY_NS)
                seg, search = j, j + 1
            if count and seen >= count:
                break
    finally:
        reader.close()
    rows = table.live_rows()
    return Fragment(
        shard=shard,
        keys=table.keys[rows].copy(),
        i64=table.i64[rows].copy(),
        f64=table.f64[rows].copy() if table.deep else None,
        u8=table.u8[rows].copy(),
        totals=dict(table.totals),
        counters=analyzer.counters,
        files=reader.entries if shard == 0 else [],
        cpu_s=time.process_time() - cpu0,
        wall_s=time.perf_counter() - wall0,
        worker=f"{os.uname().nodename}:{os.getpid()}",
        # one task holds the whole table: its eviction is the single-process one
        max_flows_reached=shards > 1 and table.totals.get("evicted", 0) > 0,
    )


@dataclass
class Merged:
    """The merged fragments: flow rows, totals, counters, per-task figures."""

    keys: np.ndarray
    i64: np.ndarray
    f64: np.ndarray | None
    u8: np.ndarray
    totals: dict[str, int]
    counters: Counters
    files: list[Any]
    tasks: list[dict[str, Any]]
    merge_s: float
    metadata: dict[str, Any]


def merge_fragments(fragments: list[Fragment]) -> Merged:
    """Concatenate disjoint shard tables; sum totals and counters."""
    t0 = time.perf_counter()
    fragments = sorted(fragments, key=lambda f: f.shard)
    keys = np.concatenate([f.keys for f in fragments])
    i64 = np.concatenate([f.i64 for f in fragments])
    f64 = None
    if all(f.f64 is not None for f in fragments):
        f64 = np.concatenate([f.f64 for f in fragments if f.f64 is not None])
    u8 = np.concatenate([f.u8 for f in fragments])
    totals: dict[str, int] = {}
    counters = Counters()
    for f in fragments:
        for k, v in f.totals.items():
            totals[k] = totals.get(k, 0) + v
        c = f.counters
        counters.packets += c.packets
        counters.bytes_wire += c.bytes_wire
        counters.bytes_captured += c.bytes_captured
        counters.parse_errors += c.parse_errors
        counters.unsupported_packets += c.unsupported_packets
        for lt, n in c.unsupported_linktypes.items():
            counters.unsupported_linktypes[lt] = counters.unsupported_linktypes.get(lt, 0) + n
    files = next((f.files for f in fragments if f.files), [])
    tasks = [
        {"shard": f.shard, "worker": f.worker, "cpu_s": f.cpu_s, "wall_s": f.wall_s,
         "flows": int(f.keys.shape[0])}
        for f in fragments
    ]  # fmt: skip
    metadata = {
        "mode": "dask",
        "tasks": len(fragments),
        "cut": "flow hash (kernels.router.route_batch)",
        "exact": not any(f.max_flows_reached for f in fragments),
        "eviction_exact": not any(f.max_flows_reached for f in fragments),
    }
    return Merged(keys, i64, f64, u8, totals, counters, files, tasks,
                  time.perf_counter() - t0, metadata)  # fmt: skip


def run_on(
    client: Any, paths: list[str], options: FlowOptions, tasks: int = 0, count: int = 0
) -> Merged:
    """Run the shard tasks on ``client`` (a ``dask.distributed.Client``) and merge them.

    ``tasks`` = 0: one per worker thread of the cluster. Dask retries a task whose worker
    died (``retries``); the fragment it computes again is the same.
    """
    if tasks <= 0:
        tasks = max(1, sum(client.nthreads().values()))
    futures = client.map(
        shard_task,
        [paths] * tasks,
        range(tasks),
        [tasks] * tasks,
        [options] * tasks,
        [count] * tasks,
        pure=False,
        retries=RETRIES,
    )
    return merge_fragments(client.gather(futures))


def run_local(paths: list[str], options: FlowOptions, count: int = 0) -> Merged:
    """The same computation in this process (one task: the whole set)."""
    return merge_fragments([shard_task(paths, 0, 1, options, count)])


def connect(address: str, workers: int = 0) -> tuple[Any, Any]:
    """``local:N`` (a LocalCluster of N single-thread worker processes; ``local``: of
    ``workers``) or a scheduler address (``tcp://host:8786``); returns (client, cluster
    or None). A malformed ``local:N`` raises ValueError."""
    from distributed import Client, LocalCluster

    if address == "local" or address.startswith("local:"):
        _, _, n = address.partition(":")
        n_workers = int(n) if n else (workers or 2)
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster), cluster
    return Client(address), None

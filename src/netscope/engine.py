"""The engine's Python face: allocate columns, call kernels, announce the first JIT.

Importing this module imports numba (lazily chosen cache directory first), so the
CLI imports it only once it knows it will process packets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from netscope.kernels._jit import (  # noqa: E402  (sets NUMBA_CACHE_DIR)
    _default_cache_dir,
    kernel_fingerprint,
)

os.environ.setdefault("NUMBA_CACHE_DIR", _default_cache_dir())

import numpy as np  # noqa: E402

from netscope.batch import PacketBatch  # noqa: E402
from netscope.columns import DecodedColumns  # noqa: E402


def _marker(group: str) -> Path:
    name = f"netscope-compiled-{kernel_fingerprint()}-{group}"
    return Path(os.environ["NUMBA_CACHE_DIR"]) / name


# Kernel groups, compiled (first time) or loaded from the cache (later) only when a run needs
# them: a plain file read loads "core" alone, which keeps warm start-up short, and each
# group's first compile is announced by the same single line.
GROUPS = ("core", "capture", "pipeline", "anomaly")

_warmed: set[str] = set()


def warm_up(announce: bool = True, need: tuple[str, ...] | frozenset[str] = ()) -> None:
    """Compile (or load from cache) the kernels a run needs before its first batch.

    ``need`` names extra groups beyond "core": "capture" (live ring, pcap writer, BPF),
    "pipeline" (router, heavy hitters, shard kernels), "anomaly". Prints one line when any
    of them has never been compiled, so a user waiting for the JIT knows why.
    """
    groups = [g for g in ("core", *need) if g not in _warmed]
    if not groups:
        return
    missing = [g for g in groups if not _marker(g).exists()]
    if not missing:
        # Every group is in the cache: nothing to announce and nothing to compile. Each
        # kernel loads (a few ms) at its first call instead, so a run loads only the
        # kernels it calls (a pcap file never loads the pcapng scanner) and no warm-up
        # batch is decoded, tracked or expired for nothing.
        _warmed.update(groups)
        return
    if announce:
        print("compiling kernels (first run only)…", file=sys.stderr, flush=True)
    from netscope.batch import batch_from_packets

    tiny = batch_from_packets([bytes(60)])
    cols = DecodedColumns.allocate(1)
    decode(tiny, cols)
    for group in missing:  # the cached ones load at their first call, as above
        if group == "core":
            _warm_records()
            _warm_flows(tiny, cols)
            _warm_community_id()
        elif group == "capture":
            _warm_capture(tiny)
        elif group == "pipeline":
            _warm_pipeline(tiny, cols)
        elif group == "anomaly":
            _warm_anomaly(tiny, cols)
        else:
            raise ValueError(f"unknown kernel group {group!r}")
    _warmed.update(groups)
    for group in missing:
        try:
            _marker(group).parent.mkdir(parents=True, exist_ok=True)
            _marker(group).touch()
        except OSError:
            pass


def _warm_records() -> None:
    from netscope.kernels.records import scan_pcap, scan_pcapng

    buf = np.zeros(64, dtype=np.uint8)
    i64 = np.zeros(1, dtype=np.int64)
    i32 = np.zeros(1, dtype=np.int32)
    scan_pcap(buf, 0, 0, False, 1000, False, 65535, 1, i64, i32, i32, i64)
    scan_pcapng(buf, 0, 0, False, 1 << 20, i32, i64, i64, i64, 0, 1, i64, i64, i32, i32, i64, i32)


def _warm_community_id() -> None:
    """Every flow export and the dashboard's rows carry a Community ID (flows/community_id)."""
    from netscope.flows.community_id import community_id

    community_id("10.0.0.1", "10.0.0.2", 6, 1, 2)


def _warm_capture(batch: PacketBatch) -> None:
    """Capture-side kernels: ring scanning, pcap record packing, the BPF interpreter."""
    from netscope.kernels.bpf import filter_batch
    from netscope.kernels.ring import pack_pcap_records, release_blocks, scan_blocks

    ring = np.zeros(4096, dtype=np.uint8)
    i64 = np.zeros(1, dtype=np.int64)
    i32 = np.zeros(1, dtype=np.int32)
    scan_blocks(ring, 4096, 1, 0, 1, 65535, 0, 1, True, -1, 1, i64, i32, i32, i64, i32, i64)
    release_blocks(ring, 4096, 1, 0, 0)
    b = batch
    pack_pcap_records(b.buf, b.offsets, b.caplens, b.wirelens, b.ts_ns, 0, b.count, ring, 0, 4096)
    prog = np.zeros(1, dtype=np.int32)
    k = np.zeros(1, dtype=np.int64)
    lt_prog = np.zeros(2, dtype=np.int64)
    filter_batch(
        prog + 3, prog, prog, prog, k, lt_prog,
        b.buf, b.offsets, b.caplens, b.wirelens, b.ts_ns, b.linktypes, 0, b.count, 0,
        i64, i32, i32, i64, i32,
    )  # fmt: skip


def _warm_flows(batch: PacketBatch, cols: DecodedColumns) -> None:
    from netscope.flows.table import FlowOptions, FlowTable

    for options in (
        FlowOptions(max_flows=16),
        FlowOptions(max_flows=16, rtt=False, retrans=False, out_of_order=False),
    ):
        table = FlowTable(options)
        table.observe(batch.ts_ns, batch.wirelens, cols, batch.count)
        table.top_rows(1)
        table.expire_idle(0)


def _warm_anomaly(batch: PacketBatch, cols: DecodedColumns) -> None:
    """The anomaly detector's kernel (one compiled signature, whatever the table sizes)."""
    from netscope.anomaly.detector import AnomalyDetector

    detector = AnomalyDetector(max_entries=4)
    detector(batch, cols)
    detector.sweep(0)


def _warm_pipeline(batch: PacketBatch, cols: DecodedColumns) -> None:
    """Compile (or load) the pipeline's kernels: router, gather, markers, SpaceSaving.
    Here, not in the pipeline package, so the engine depends only on kernels and flows."""
    from netscope.flows import layout as L
    from netscope.flows.table import FlowOptions, FlowTable
    from netscope.kernels.heavy import offer, resolve
    from netscope.kernels.router import (
        gather_meta,
        gather_shards,
        next_event,
        route_batch,
        route_copy,
        split_by_shard,
    )

    n = batch.count
    shard = np.zeros(n, dtype=np.int32)
    need = np.zeros(n, dtype=np.int32)
    order = np.zeros(n, dtype=np.int32)
    counts = np.zeros(2, dtype=np.int64)
    starts = np.zeros(3, dtype=np.int64)
    route_batch(batch.buf, batch.offsets, batch.caplens, batch.linktypes, 0, n, 2, shard, need,
                counts)  # fmt: skip
    split_by_shard(shard, n, counts, starts, order)
    out = np.zeros(max(int(need.sum()), 1), dtype=np.uint8)
    i64 = np.zeros(n, dtype=np.int64)
    i32 = np.zeros(n, dtype=np.int32)
    gather_shards(batch.buf, batch.offsets, batch.caplens, batch.wirelens, batch.ts_ns,
                  batch.linktypes, 0, order, n, need, out, i64, i32, i32.copy(), i64.copy(),
                  i32.copy())  # fmt: skip
    never = int(np.iinfo(np.int64).max)
    next_event(batch.ts_ns, 0, n, never, never)
    off = np.zeros(n, dtype=np.int64)
    counts[:] = 0
    route_copy(batch.buf, batch.offsets, batch.caplens, batch.linktypes, 0, n, 2, shard, need,
               counts, out, off, 0)  # fmt: skip
    split_by_shard(shard, n, counts, starts, order)
    gather_meta(0, order, n, need, off, batch.caplens, batch.wirelens, batch.ts_ns,
                batch.linktypes, off.copy(), i32.copy(), i32.copy(), i64.copy(), i32.copy(),
                starts, counts.copy())  # fmt: skip
    table = FlowTable(FlowOptions(max_flows=16))
    cap = 16  # pipeline.sharded.heavy_capacity(0)
    ss_key = np.zeros((cap, L.KEY_WIDTH), dtype=np.uint64)
    ss_hash = np.zeros(cap, dtype=np.uint64)
    ss_cnt = np.zeros(cap, dtype=np.int64)
    ss_used = np.zeros(1, dtype=np.int64)
    offer(n, batch.wirelens, cols.err, cols.l3, cols.src_hi, cols.src_lo, cols.dst_hi,
          cols.dst_lo, cols.proto, cols.l4_off, cols.sport, cols.dport, ss_key, ss_hash,
          ss_cnt, ss_used)  # fmt: skip
    rows = np.zeros(cap, dtype=np.int32)
    resolve(ss_key, ss_hash, ss_used, table.keys, table.i64, table.u8, table.idx_row,
            table.idx_tag, rows, rows.copy())  # fmt: skip


def decode(batch: PacketBatch, cols: DecodedColumns) -> None:
    """Decode ``batch`` into ``cols`` (capacity >= batch.count)."""
    from netscope.kernels.decode import decode_batch

    if cols.capacity < batch.count:
        raise ValueError("column capacity smaller than batch")
    decode_batch(
        batch.buf, batch.offsets, batch.caplens, batch.linktypes, batch.count, *cols.arrays()
    )

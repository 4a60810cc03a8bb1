"""Growable flow tables: a table that starts small and doubles must end exactly where a table
pre-sized to the cap ends (same flows, same rows, same evictions), growth stops at the cap,
and stops early (evicting instead) when memory cannot take a doubling.

Also pins first/last seen as the min/max packet time when timestamps go backwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netscope import memory
from netscope.analysis import Analyzer
from netscope.errors import CaptureError
from netscope.flows import layout as L
from netscope.flows.table import INITIAL_ROWS, ExpiredBatch, FlowOptions, FlowTable
from netscope.gen.traffic import generate
from netscope.sources import open_capture_file

from .conftest import (
    HIGH_IP,
    LOW_IP,
    T0,
    fast_udp4,
    feed,
    flow_records,
    udp_frame,
    write_trace,
)

SEC = 1_000_000_000


class Removed:
    """Expired/evicted rows in the order the table emitted them."""

    def __init__(self) -> None:
        self.rows: list[tuple[bytes, bytes, int]] = []

    def __call__(self, batch: ExpiredBatch) -> None:
        for k in range(batch.count):
            self.rows.append(
                (batch.keys[k].tobytes(), batch.i64[k].tobytes(), int(batch.reason[k]))
            )


def run_capture(path: Path, options: FlowOptions) -> tuple[FlowTable, Removed]:
    """Read ``path`` batch by batch into a fresh table, collecting removed flows."""
    table = FlowTable(options)
    removed = Removed()
    table.on_expired = removed
    analyzer = Analyzer()
    try:
        reader = open_capture_file(path)
    except CaptureError:
        pytest.skip("not a capture our reader accepts (tests/test_corpus.py pins that)")
    try:
        for batch in reader.batches():
            cols = analyzer.process(batch)
            table.observe(batch.ts_ns, batch.wirelens, cols, batch.count)
    finally:
        reader.close()
    return table, removed


def assert_same_tables(grown: FlowTable, sized: FlowTable) -> None:
    """Every live row identical (row ids included), and the same totals."""
    assert grown.totals == sized.totals
    assert np.array_equal(grown.live_rows(), sized.live_rows())
    rows = sized.live_rows()
    assert np.array_equal(grown.keys[rows], sized.keys[rows])
    assert np.array_equal(grown.i64[rows], sized.i64[rows])
    assert np.array_equal(grown.u8[rows], sized.u8[rows])
    if sized.deep:
        assert np.array_equal(grown.f64[rows], sized.f64[rows], equal_nan=True)
        assert np.array_equal(grown.u32[rows], sized.u32[rows])
    assert flow_records(grown) == flow_records(sized)


def grown_and_sized(max_flows: int, start: int, **kw: object) -> tuple[FlowOptions, FlowOptions]:
    """Options of a table starting at ``start`` rows and of one pre-sized to the cap."""
    grown = FlowOptions(max_flows=max_flows, initial_flows=start, keep_expired=True, **kw)  # type: ignore[arg-type]
    sized = FlowOptions(max_flows=max_flows, initial_flows=max_flows, keep_expired=True, **kw)  # type: ignore[arg-type]
    return grown, sized


@pytest.mark.parametrize("max_flows", [7, 40, 1000])
def test_growth_equals_a_presized_table_on_corpus_files(
    corpus_capture: Path, max_flows: int
) -> None:
    """Small caps force evictions on most files: evictions and expiries must match too."""
    grown_opts, sized_opts = grown_and_sized(max_flows, 2)
    grown, grown_removed = run_capture(corpus_capture, grown_opts)
    sized, sized_removed = run_capture(corpus_capture, sized_opts)
    assert_same_tables(grown, sized)
    assert grown_removed.rows == sized_removed.rows
    assert grown.capacity <= max_flows


@pytest.mark.parametrize("scale", [False, True])
def test_growth_equals_a_presized_table_on_a_generated_trace(tmp_path: Path, scale: bool) -> None:
    path = tmp_path / "trace.pcap"
    generate(path, packets=30_000, flows=3_000, seed=11)
    analysis = {"rtt": not scale, "retrans": not scale, "out_of_order": not scale}
    for cap in (2_000, 5_000):  # evicting, and not
        grown_opts, sized_opts = grown_and_sized(cap, 16, **analysis)
        grown, grown_removed = run_capture(path, grown_opts)
        sized, sized_removed = run_capture(path, sized_opts)
        assert grown.capacity == min(cap, 4096)  # 16 doubled eight times, or the cap
        assert_same_tables(grown, sized)
        assert grown_removed.rows == sized_removed.rows
        evicted = sized.totals["evicted"]
        assert (evicted > 0 and sized.active == cap) if cap < 3000 else evicted == 0


def test_unlimited_growth_equals_a_presized_table(tmp_path: Path) -> None:
    path = tmp_path / "trace.pcap"
    generate(path, packets=20_000, flows=2_500, seed=5)
    grown, _ = run_capture(path, FlowOptions(max_flows=0, timeout_secs=0, initial_flows=8))
    sized, _ = run_capture(path, FlowOptions(max_flows=0, timeout_secs=0, initial_flows=4096))
    assert grown.capacity == 4096
    assert_same_tables(grown, sized)


@pytest.mark.parametrize(
    ("max_flows", "initial"),
    [(100_000, INITIAL_ROWS), (1_000, 1_000), (0, INITIAL_ROWS), (10**9, INITIAL_ROWS)],
)
def test_tables_start_small(max_flows: int, initial: int) -> None:
    """A huge cap costs nothing up front (it pre-allocated the cap before)."""
    table = FlowTable(FlowOptions(max_flows=max_flows))
    assert table.capacity == initial
    assert abs(table.nbytes - FlowTable.start_bytes(FlowOptions(max_flows=max_flows))) < 1024


def test_growth_stops_at_the_cap_then_evicts() -> None:
    table = FlowTable(FlowOptions(max_flows=300, timeout_secs=0, initial_flows=4))
    frames = [(T0 + k, fast_udp4(0x0A000000 + k, 0x0A100000, 2000, 53)) for k in range(1000)]
    feed(table, frames)
    assert table.capacity == 300 and table.active == 300
    assert table.totals["evicted"] == 700
    live = {int(k[L.K_A_LO]) for k in table.keys[table.live_rows()]}
    assert live == {0x0A000000 + k for k in range(700, 1000)}  # the newest 300


def test_growth_refused_by_memory_evicts_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unlimited table on a machine out of memory stops growing instead of dying."""
    monkeypatch.delenv(memory.ALLOW_ENV, raising=False)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1)
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=0, initial_flows=64))
    frames = [(T0 + k, fast_udp4(0x0A000000 + k, 0x0A100000, 2000, 53)) for k in range(500)]
    with caplog.at_level(logging.WARNING, logger="netscope.flows"):
        feed(table, frames)
    assert table.capacity == 64 and table.active == 64
    assert table.totals["evicted"] == 500 - 64
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "stopped growing at 64 flows" in warnings[0]
    # the override lets it grow
    monkeypatch.setenv(memory.ALLOW_ENV, "1")
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=0, initial_flows=64))
    feed(table, frames)
    assert table.active == 500 and table.totals["evicted"] == 0


def test_estimates_equal_what_tables_allocate() -> None:
    """The memory check trusts start_bytes/full_bytes: they must be the real sizes."""
    for opts in (
        FlowOptions(max_flows=5000),
        FlowOptions(max_flows=5000, rtt=False, retrans=False, out_of_order=False),
        FlowOptions(max_flows=5000, keep_expired=True),
        FlowOptions(max_flows=0, rtt=False),
    ):
        table = FlowTable(opts)
        assert abs(table.nbytes - FlowTable.start_bytes(opts)) < 1024  # g/p vectors only
        full = FlowTable(FlowOptions(**{**opts.__dict__, "initial_flows": opts.max_flows or 1}))
        if opts.max_flows:
            assert abs(full.nbytes - FlowTable.full_bytes(opts)) < 1024


# ----------------------------------------------------------------- out-of-order timestamps


def test_first_and_last_seen_are_min_and_max_when_time_goes_backwards() -> None:
    frame = udp_frame(LOW_IP, HIGH_IP, 1000, 53)
    stamps = [T0 + 5 * SEC, T0 + 2 * SEC, T0 + 9 * SEC, T0 + 1 * SEC, T0 + 7 * SEC]
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=0))
    feed(table, [(ts, frame) for ts in stamps])
    (rec,) = flow_records(table)
    assert (rec.first_seen_ns, rec.last_seen_ns) == (T0 + 1 * SEC, T0 + 9 * SEC)
    assert rec.packets_a_to_b == 5


def test_in_order_timestamps_keep_first_and_last() -> None:
    frame = udp_frame(LOW_IP, HIGH_IP, 1000, 53)
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=0))
    feed(table, [(T0 + k * SEC, frame) for k in range(4)])
    (rec,) = flow_records(table)
    assert (rec.first_seen_ns, rec.last_seen_ns) == (T0, T0 + 3 * SEC)


@pytest.mark.parametrize("mode", [[], ["--workers", "2"]])
def test_exports_keep_first_seen_before_last_seen(
    tmp_path: Path, mode: list[str], cli: Callable[..., Any]
) -> None:
    """Inline and pipeline runs of a capture whose clock steps back export min/max times."""
    frames = [udp_frame(LOW_IP, HIGH_IP, 1000 + k % 3, 53) for k in range(12)]
    stamps = [T0 + ((k * 7) % 12) * SEC for k in range(12)]  # a shuffled second ladder
    trace = write_trace(tmp_path / "backwards.pcap", zip(stamps, frames, strict=True))
    out = tmp_path / "flows.json"
    res = cli(["--read-pcap", str(trace), "--quiet", "--export-json", str(out), *mode])
    assert res.code == 0, res.stderr
    flows = json.loads(out.read_text(encoding="utf-8"))
    assert len(flows) == 3
    for flow in flows:
        port = flow["endpoint_a"]["port"]
        mine = [ts for k, ts in enumerate(stamps) if 1000 + k % 3 == port]
        assert flow["first_seen"] == pytest.approx(min(mine) / 1e9)
        assert flow["last_seen"] == pytest.approx(max(mine) / 1e9)
        assert flow["duration_secs"] == pytest.approx((max(mine) - min(mine)) / 1e9)

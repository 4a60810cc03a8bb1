"""Dispatch drops, shutdown under a full queue, and ticks when a shard is idle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from netscope.batch import PacketBatch, batch_from_packets
from netscope.flows.table import FlowOptions
from netscope.gen import packets as P
from netscope.pipeline import sharded
from netscope.pipeline.inline import InlineProcessor, Tick
from netscope.pipeline.sharded import PipelineProcessor

from .helpers import run_processor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def slow_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharded, "WORKER_DELAY_HOOK", lambda shard, n: time.sleep(0.002))


def test_drops_counted_exactly(gen_trace: Path, slow_workers: None) -> None:
    """Tiny queues + slow shards (live semantics): kept + dropped = read, no deadlock."""
    proc = PipelineProcessor(FlowOptions(), 2, channel_capacity=1, block_when_full=False)
    start = time.monotonic()
    from netscope.sources import open_capture_file

    source = open_capture_file(gen_trace)
    try:
        for batch in source.batches():
            for k in range(0, batch.count, 500):  # many small slices, like live batches
                proc.feed(
                    PacketBatch(
                        batch.buf, batch.offsets[k:], batch.caplens[k:], batch.wirelens[k:],
                        batch.ts_ns[k:], batch.linktypes[k:], min(500, batch.count - k),
                    )
                )  # fmt: skip
        proc.finish()
    finally:
        source.close()
    assert time.monotonic() - start < 60
    read = proc.analyzer.counters.packets
    kept = sum(s.analyzer.counters.packets for s in proc.shards)
    assert read == 20_000
    assert proc.dispatch_drops > 0
    assert kept + proc.dispatch_drops == read
    assert proc.summary_rows() == [("Dispatch drops", str(proc.dispatch_drops))]


def test_offline_blocks_instead_of_dropping(gen_trace: Path, slow_workers: None) -> None:
    proc = run_processor(gen_trace, PipelineProcessor(FlowOptions(), 2, channel_capacity=1))
    assert proc.dispatch_drops == 0
    assert sum(s.analyzer.counters.packets for s in proc.shards) == 20_000


def test_drops_shown_in_stats_line(gen_trace: Path, slow_workers: None) -> None:
    import io

    out = io.StringIO()
    proc = PipelineProcessor(
        FlowOptions(), 2, 50_000_000, channel_capacity=1, block_when_full=False, out=out
    )
    run_processor(gen_trace, proc)
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("[stats]")]
    assert lines
    totals = [int(ln.rsplit("(total=", 1)[1].rstrip(")")) for ln in lines]
    assert totals == sorted(totals) and totals[-1] <= proc.dispatch_drops


def _one_flow_packets(n: int, gap_ns: int) -> Any:
    pkts, ts = [], []
    for i in range(n):
        seg = P.tcp("10.0.0.1", "10.0.0.2", 40000, 80, 1000 + i * 10, 1, "PA", payload=b"x" * 10)
        pkts.append(P.ether_ip("10.0.0.1", "10.0.0.2", 6, seg))
        ts.append(1_000_000_000 + i * gap_ns)
    return batch_from_packets(pkts, ts)


def test_idle_shards_still_tick() -> None:
    """One flow: three of four shards never see a packet, yet every tick is delivered,
    with the same totals as inline mode."""
    batch = _one_flow_packets(400, 10_000_000)  # 4 s of trace, 100 ms ticks
    interval = 100_000_000
    inline_ticks: list[Tick] = []
    inline = InlineProcessor(FlowOptions(), interval, inline_ticks.append)
    inline.feed(batch)
    inline.finish()
    pipe = PipelineProcessor(FlowOptions(), 4, interval, top_n=3)
    got: list[Tick] = []
    pipe.on_tick = got.append
    pipe.feed(batch)
    pipe.finish()
    busy = [s for s in pipe.shards if s.analyzer.counters.packets]
    assert len(busy) == 1
    assert got == inline_ticks and len(got) >= 39


@pytest.mark.timing
def test_live_tick_does_not_wait_for_a_slow_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live mode: a tick is merged once its deadline (interval + 5 ms grace) passes, while the
    one busy shard is still stuck in its batch; that shard's packets roll into a later tick.

    The ordering (tick delivered *before* the slow shard is released) is what this pins; the
    lower bound is exact (the deadline cannot fire early) and the upper bound only guards
    against a hang."""
    release = threading.Event()
    stuck = threading.Event()

    def slow(_shard: int, _n: int) -> None:
        stuck.set()
        release.wait(30)

    monkeypatch.setattr(sharded, "WORKER_DELAY_HOOK", slow)
    interval_ns = 100_000_000
    pipe = PipelineProcessor(FlowOptions(), 4, interval_ns, block_when_full=False)
    pipe.wall_clock_ticks = True
    got: list[tuple[Tick, float]] = []
    pipe.on_tick = lambda t: got.append((t, time.monotonic()))
    try:
        pipe.feed(_one_flow_packets(10, 1000))
        assert stuck.wait(30), "the shard never started its batch"
        now = time.time_ns()
        sent = time.monotonic()
        pipe.wall_tick(now - interval_ns, now)
        hang_guard = sent + 10.0
        while not got and time.monotonic() < hang_guard:
            time.sleep(0.002)
            pipe._flush_output()
        assert got, "the tick waited for the slow shard"
        assert not release.is_set()
        tick, at = got[0]
        assert tick.packets == 0  # the stuck shard's packets are not in this tick
        assert at - sent >= (interval_ns + sharded.LATE_SHARD_GRACE_NS) / 1e9
        release.set()
        now = time.time_ns()
        pipe.wall_tick(now - interval_ns, now)  # the next tick carries the late part
        hang_guard = time.monotonic() + 10.0
        while sum(t.packets for t, _ in got) < 10 and time.monotonic() < hang_guard:
            time.sleep(0.002)
            pipe._flush_output()
    finally:
        release.set()
        pipe.finish()
    assert sum(t.packets for t, _ in got) == 10  # ... they arrive in a later one


def test_sigint_during_full_queue_exits_cleanly(tmp_path: Path, gen_trace: Path) -> None:
    """Ctrl-C while the capture thread waits on a full shard queue: summary and exports."""
    out = tmp_path / "flows.json"
    started = tmp_path / "started"
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        import netscope.engine
        from netscope.pipeline import sharded
        def slow(shard, n):
            pathlib.Path({str(started)!r}).touch()
            time.sleep(0.5)
        sharded.WORKER_DELAY_HOOK = slow
        from netscope.cli import main
        sys.exit(main(["--read-pcap", {str(gen_trace)!r}, "--quiet", "--workers", "2",
                       "--export-json", {str(out)!r}]))
        """
    )
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120  # the first run may compile kernels first
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # the shards are sleeping in the hook: the queues are full
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "Capture complete (pipeline mode) (interrupted)." in stdout
    assert "Dispatch drops:" in stdout
    assert out.is_file() and out.read_text().startswith("[")

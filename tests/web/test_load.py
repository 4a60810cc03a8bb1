"""Load: many WebSocket clients at tick_ms = 33 plus one client that never reads.

The server runs in-process (its own thread and loop, as in a real run) fed by a capture
thread that pushes a real ``InlineProcessor`` + ``WebFeed`` with 1000 packets per 33 ms
tick (30k packets/s, capture-time ticks). Checked: every packet is counted (the dashboard
path loses none), no tick message is dropped and handing one over never stalls capture, the
server's memory stays bounded although one client never reads, and every reading client
sees strictly increasing frame_seq values (skips allowed, duplicates not).

The issue's figure is 50 clients for 30 s (marked slow; CI runs it). The fast variant keeps
the same shape at 10 clients for 4 s.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from netscope.batch import PacketBatch, batch_from_packets
from netscope.config import WebConfig
from netscope.flows.table import FlowOptions
from netscope.gen.packets import ether_ip, tcp, udp
from netscope.pipeline.inline import InlineProcessor
from netscope.web.feed import TickMessage, WebFeed, ring_for
from netscope.web.hub import Hub
from netscope.web.server import WebServer

from .conftest import free_port

CLIENTS = Path(__file__).with_name("ws_clients.py")
TICK_MS = 33
PER_TICK = 1000


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _template() -> PacketBatch:
    pk = []
    for i in range(PER_TICK):
        a, b = f"10.1.{i % 50}.{i % 200 + 1}", "10.2.0.1"
        if i % 4 == 0:
            seg = udp(a, b, 5000 + i % 50, 53, b"q" * 40)
            pk.append(ether_ip(a, b, 17, seg))
        else:
            seg = tcp(a, b, 30000 + i % 50, 443, 1000 + i * 100, 1, "PA", payload=b"d" * 100)
            pk.append(ether_ip(a, b, 6, seg))
    return batch_from_packets(pk, list(range(PER_TICK)))


class Capture(threading.Thread):
    """Feeds one tick's worth of packets every TICK_MS of wall time."""

    def __init__(self, proc: InlineProcessor, seconds: float) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.seconds = seconds
        self.fed = 0
        self.worst_feed_s = 0.0
        self.template = _template()

    def run(self) -> None:
        t = self.template
        step = TICK_MS * 1_000_000 // PER_TICK
        base = 1_700_000_000_000_000_000
        k = 0
        end = time.monotonic() + self.seconds
        next_at = time.monotonic()
        while time.monotonic() < end:
            ts = base + k * TICK_MS * 1_000_000 + np.arange(PER_TICK, dtype=np.int64) * step
            batch = PacketBatch(t.buf, t.offsets, t.caplens, t.wirelens, ts, t.linktypes, PER_TICK)
            started = time.perf_counter()
            self.proc.feed(batch)
            if k > 0:  # the first batch loads the compiled kernels
                self.worst_feed_s = max(self.worst_feed_s, time.perf_counter() - started)
            self.fed += PER_TICK
            k += 1
            next_at += TICK_MS / 1000
            time.sleep(max(0.0, next_at - time.monotonic()))
        self.proc.finish()


def never_reading_client(port: int) -> socket.socket:
    """A WebSocket handshake, then silence: this client never reads a byte."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return s


def run_load(clients: int, seconds: float, expect_stuck: bool) -> None:
    port = free_port()
    cfg = WebConfig(enabled=True, port=port, tick_ms=TICK_MS, sample_rate=10, top_n=10)
    proc = InlineProcessor(FlowOptions(), TICK_MS * 1_000_000)
    ring = ring_for(cfg)
    hub = Hub(ring, TICK_MS, "test")
    server = WebServer(cfg, hub)
    server.start()
    feed = WebFeed(cfg, proc.analyzer.counters, proc.flows, hub.submit, ring=ring)
    submit_times: list[float] = []

    def timed_submit(msg: TickMessage) -> bool:
        started = time.perf_counter()
        ok = hub.submit(msg)
        submit_times.append(time.perf_counter() - started)
        return ok

    feed.submit = timed_submit
    proc.observers.append(feed.observe)
    proc.on_tick = feed.on_tick
    silent = never_reading_client(port)
    capture = Capture(proc, seconds + 1.0)
    try:
        capture.start()
        time.sleep(0.5)
        rss_start = rss_bytes()
        out = subprocess.run(
            [sys.executable, str(CLIENTS), str(port), str(seconds), str(clients)],
            check=True, capture_output=True, text=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
        results: list[list[int]] = json.loads(out)
        rss_end = rss_bytes()
        capture.join(30)
        time.sleep(0.3)
        published = hub.frame_seq
        stuck = [c for c in hub.clients if c.skipped > 0]
        remaining = list(hub.clients)
    finally:
        silent.close()
        server.stop()

    assert proc.analyzer.counters.packets == capture.fed  # nothing lost on the way
    assert feed.dropped_messages == 0
    # Handing a tick to the server never waits for it: no lock held by the server, no full
    # queue. What remains is waiting for the GIL while the server thread runs Python (JSON,
    # sends): usually microseconds, rarely tens of ms on two shared cores.
    submit_p99 = float(np.percentile(submit_times, 99))
    # generous bounds (a shared 2-core CI machine) plus the timing marker's one retry: a
    # submit that blocks on the loop takes seconds, so a real regression still fails twice
    assert submit_p99 < 0.05, submit_p99
    assert max(submit_times) < 1.0, max(submit_times)
    assert capture.worst_feed_s < 1.0, capture.worst_feed_s
    print(
        f"\nload: {clients} clients {seconds:.0f}s: {capture.fed} packets, {hub.frame_seq} frames, "
        f"frames/client min {min(map(len, results))}, submit p99 {submit_p99 * 1e3:.3f} ms "
        f"max {max(submit_times) * 1e3:.2f} ms, worst batch {capture.worst_feed_s * 1e3:.1f} ms, "
        f"RSS growth {(rss_end - rss_start) / 1e6:.1f} MB"
    )
    expected = seconds * 1000 / TICK_MS
    for seqs in results:
        assert len(seqs) > expected * 0.3, (len(seqs), expected)
        assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False)), "frame_seq not increasing"
        assert len(set(seqs)) == len(seqs)
    assert published > expected * 0.8
    # The silent client is the one left connected; once the socket buffers between it and
    # the server are full (a few MB on loopback: seconds of frames), it skips frames instead
    # of queueing them — at most one pending frame, whatever the duration.
    if expect_stuck:
        assert stuck, "the never-reading client should be skipping frames"
    for client in remaining:
        assert client.latest is None or len(client.latest) < 64 * 1024
    growth = rss_end - rss_start
    assert growth < 64 * 1024 * 1024, f"server memory grew by {growth / 1e6:.1f} MB"


@pytest.mark.timing
def test_load_fast() -> None:
    run_load(clients=10, seconds=4.0, expect_stuck=False)


@pytest.mark.slow
@pytest.mark.timing
def test_load_50_clients_30s() -> None:
    run_load(clients=50, seconds=30.0, expect_stuck=True)

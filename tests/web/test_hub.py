"""In-process checks of the dashboard's capture side (feed) and frame hub, no sockets."""

from __future__ import annotations

import json
import time

import pytest

from netscope.batch import batch_from_packets
from netscope.config import WebConfig
from netscope.flows.community_id import community_id
from netscope.flows.table import FlowOptions
from netscope.gen.packets import ether_ip, tcp
from netscope.pipeline.inline import InlineProcessor, Tick
from netscope.web.feed import MAX_FRAME_PACKETS, PacketRing, TickMessage, WebFeed
from netscope.web.hub import Client, Hub
from netscope.web.server import StatsEvery


def _packets(n: int, payload: int = 600) -> list[bytes]:
    out = []
    for i in range(n):
        seg = tcp(
            "10.0.0.1", "10.0.0.2", 40000 + i % 7, 443, 1000 + i, 1, "PA", payload=b"x" * payload
        )
        out.append(ether_ip("10.0.0.1", "10.0.0.2", 6, seg))
    return out


def _setup(**web: int) -> tuple[InlineProcessor, WebFeed, list[TickMessage]]:
    cfg = WebConfig(enabled=True, **web)  # type: ignore[arg-type]
    proc = InlineProcessor(FlowOptions(), 1_000_000)
    sent: list[TickMessage] = []

    def submit(m: TickMessage) -> bool:
        sent.append(m)
        return True

    feed = WebFeed(cfg, proc.analyzer.counters, proc.flows, submit)
    proc.observers.append(feed.observe)
    proc.on_tick = feed.on_tick
    return proc, feed, sent


def test_sampling_uses_global_packet_ids_and_ring_is_bounded() -> None:
    proc, feed, _ = _setup(sample_rate=7, packet_buffer=30, payload_bytes=16)
    ts = list(range(0, 300 * 1000, 1000))
    pk = _packets(300)
    # Two batches: ids continue across them (1..150, 151..300).
    proc.feed(batch_from_packets(pk[:150], ts[:150]))
    proc.feed(batch_from_packets(pk[150:], ts[150:], first_index=151))
    ids = feed.ring.all_ids()
    assert len(ids) == 30  # 42 sampled, the ring keeps the newest 30
    assert all(i % 7 == 0 for i in ids)
    assert ids[-1] == 294
    stored = feed.ring.get(294)
    assert stored is not None
    # headers (14 + 20 + 20) plus at most payload_bytes of payload
    assert len(stored.data) == 54 + 16
    assert stored.wirelen == len(pk[293])


def test_sample_rate_zero_keeps_nothing() -> None:
    proc, feed, _ = _setup(sample_rate=0)
    proc.feed(batch_from_packets(_packets(20), list(range(20))))
    assert len(feed.ring) == 0


def test_tick_message_has_stats_top_flows_and_packet_ids() -> None:
    proc, feed, sent = _setup(sample_rate=1, top_n=3)
    proc.feed(batch_from_packets(_packets(500), [i * 10_000 for i in range(500)]))
    proc.finish()
    ticks = [m for m in sent if m.kind == "tick"]
    assert ticks
    t = ticks[0]
    assert t.tick["packets"] > 0 and t.tick["mbps"] > 0
    assert 0 < len(t.tick["top_flows"]) <= 3
    flow = t.tick["top_flows"][0]
    for key in ("protocol", "src_ip", "src_port", "dst_ip", "dst_port", "bytes_total",
                "delta_bytes", "delta_mbps", "tcp_state", "rtt_ewma_ms",
                "community_id"):  # fmt: skip
        assert key in flow
    assert 0 < len(t.packet_ids) <= MAX_FRAME_PACKETS
    assert sum(m.tick["packets"] for m in ticks) == 500
    assert ticks[-1].totals["packets"] == 500


@pytest.mark.parametrize("seed", [0, 9])
def test_top_flows_carry_community_id_with_the_configured_seed(seed: int) -> None:
    proc, feed, sent = _setup(sample_rate=1, top_n=3)
    feed.community_id_seed = seed
    proc.feed(batch_from_packets(_packets(50), [i * 10_000 for i in range(50)]))
    proc.finish()
    flows = [f for m in sent if m.kind == "tick" for f in m.tick["top_flows"]]
    assert flows
    for f in flows:
        want = community_id(f["src_ip"], f["dst_ip"], 6, f["src_port"], f["dst_port"], seed)
        assert f["community_id"] == want


def test_hub_frames_and_latest_slot() -> None:
    ring = PacketRing(10)
    hub = Hub(ring, 33, "test")
    client = Client()
    hub.clients.add(client)
    before_ms = time.time() * 1000.0
    for _ in range(5):
        hub.process(TickMessage("tick", {"ts": 1.0, "packets": 1}, [], [], {"packets": 1}))
    # Never sent: the slot holds only the newest frame, the others count as skipped.
    assert client.latest is not None
    frame = json.loads(client.latest)
    assert frame["frame_seq"] == 5 and frame["tick"]["frame_seq"] == 5
    # server_ts: the server's wall clock (ms) when the frame was built
    assert before_ms <= frame["tick"]["server_ts"] <= time.time() * 1000.0
    assert client.skipped == 4


def test_hub_packet_detail_and_perf_pong() -> None:
    proc, feed, sent = _setup(sample_rate=1, packet_buffer=100)
    proc.feed(batch_from_packets(_packets(10), list(range(10))))
    hub = Hub(feed.ring, 1, "test")
    client = Client()
    hub.handle_request(client, json.dumps({"type": "get_packet_detail", "id": 3}))
    ping_ms = time.time() * 1000.0
    hub.handle_request(client, json.dumps({"type": "perf_ping", "client_ts": 12.5}))
    pong_by_ms = time.time() * 1000.0
    hub.handle_request(client, json.dumps({"type": "get_packet_detail", "id": 999}))
    hub.handle_request(client, "not json")
    detail, pong, missing, bad = (json.loads(m) for m in client.control)
    assert detail["type"] == "packet_detail" and detail["id"] == 3
    assert [layer["name"] for layer in detail["layers"]] == ["Ethernet", "IPv4", "TCP"]
    assert detail["hex_dump"].startswith("0000  ")
    assert set(pong) == {"type", "client_ts", "server_ts"}
    assert (pong["type"], pong["client_ts"]) == ("perf_pong", 12.5)
    assert ping_ms <= pong["server_ts"] <= pong_by_ms
    assert missing["error"]
    assert bad == {"type": "error", "message": "message is not JSON"}


def test_full_queue_drops_and_counts() -> None:
    hub = Hub(PacketRing(1), 16, "t")
    for _ in range(hub.queue.maxsize):
        assert hub.submit(TickMessage("tick"))
    assert not hub.submit(TickMessage("tick"))


def test_stats_every_sums_ticks_to_the_stats_interval() -> None:
    got: list[Tick] = []
    every = StatsEvery(got.append, 100)
    for i in range(10):
        every(Tick(i * 33, (i + 1) * 33, 33, 10, 1, 5))
    assert [t.packets for t in got] == [4, 4]
    assert got[0].start_ns == 0 and got[0].end_ns == 132
    assert got[0].bytes == 40

"""Server side of the dashboard: merge tick messages into frames and fan them out.

The hub lives on the server's event loop. The capture thread only calls :meth:`Hub.submit`
(a ``put_nowait`` on a bounded queue plus, at most once per wake-up, a
``call_soon_threadsafe``); everything else — JSON encoding, packet summaries, client
bookkeeping — happens on the loop thread.

Each client owns a *latest-frame slot*, not a queue: a new frame overwrites a frame the
client has not been sent yet (counted as skipped), so a lagging client jumps to the newest
state and a client that never reads holds at most one pending frame plus what its socket
buffer accepted. Replies to the client's own requests (packet_detail, perf_pong, error) go through
a short bounded deque sent before the next frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from netscope.logutil import trace
from netscope.web.feed import PacketRing, StoredPacket, TickMessage
from netscope.web.requests import (
    PerfPing,
    ReplayControl,
    RequestError,
    error_message,
    parse_request,
)

log = logging.getLogger(__name__)

QUEUE_CAPACITY = 1024  # tick messages waiting for the loop (offline input ticks in bursts)
CONTROL_CAPACITY = 32  # pending replies per client (a client spamming requests loses old ones)
RECENT_ALERTS = 200  # alerts a newly connected client is shown (hello.recent_alerts)
# ticks of (ts, mbps, pps) a newly connected client's chart starts with: the page's chart
# holds 240 points, as the original's
HISTORY = 240


_EMPTY_TICK: dict[str, Any] = {
    "ts": 0.0,
    "interval_ms": 0.0,
    "bytes": 0,
    "packets": 0,
    "mbps": 0.0,
    "pps": 0.0,
    "active_flows": 0,
    "dispatch_drops": 0,
    "dispatch_drops_total": 0,
    "kernel_drops": 0,
    "kernel_drops_total": 0,
    "kernel_if_drops": 0,
    "kernel_if_drops_total": 0,
}


def _ip_text(raw: Any) -> str:
    if isinstance(raw, bytes | bytearray) and len(raw) in (4, 16):
        return str(ipaddress.ip_address(bytes(raw)))
    return str(raw)


def packet_summary(p: StoredPacket) -> dict[str, Any]:
    """``{id, ts, len, protocol, src, dst, info}`` of a stored packet (decoded on demand)."""
    from netscope.decode import decode_packet
    from netscope.decode.link import link_name

    pkt = decode_packet(p.data, p.linktype)
    src = dst = ""
    protocol = link_name(p.linktype)
    info: list[str] = []
    sport: Any = None
    dport: Any = None
    for layer in pkt.layers:
        values = layer.values
        if "src" in values and "dst" in values:
            src, dst = _ip_text(values["src"]), _ip_text(values["dst"])
            protocol = layer.name
        elif "sport" in values and "dport" in values:
            sport, dport = values["sport"], values["dport"]
            protocol = layer.name
            info.append(layer.summary.split(" ", 1)[-1] if layer.summary else "")
        elif layer.summary:
            protocol = layer.name
            info.append(layer.summary)
    if sport is not None:
        src = f"[{src}]:{sport}" if ":" in src else f"{src}:{sport}"
        dst = f"[{dst}]:{dport}" if ":" in dst else f"{dst}:{dport}"
    if not info and pkt.layers and pkt.layers[-1].summary:
        info.append(pkt.layers[-1].summary)
    return {
        "id": p.id,
        "ts": p.ts_ns / 1e9,
        "len": p.wirelen,
        "protocol": protocol,
        "src": src,
        "dst": dst,
        "info": " | ".join(s for s in info if s),
    }


def packet_detail(p: StoredPacket) -> dict[str, Any]:
    """The ``packet_detail`` message: every layer's fields and a hex dump of what is stored."""
    from netscope.decode import decode_packet
    from netscope.display import hex_dump

    pkt = decode_packet(p.data, p.linktype)
    layers = [
        {"name": layer.name, "fields": [[k, v] for k, v in layer.fields]} for layer in pkt.layers
    ]
    return {
        "type": "packet_detail",
        "id": p.id,
        "ts": p.ts_ns / 1e9,
        "len": p.wirelen,
        "caplen": p.caplen,
        "stored": len(p.data),
        "layers": layers,
        "hex_dump": hex_dump(p.data),
    }


@dataclass(eq=False)
class Client:
    """One WebSocket connection's outgoing state (see the module docstring)."""

    latest: str | None = None
    control: deque[str] = field(default_factory=lambda: deque(maxlen=CONTROL_CAPACITY))
    event: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    skipped: int = 0
    closed: bool = False

    def offer(self, frame: str) -> None:
        if self.latest is not None:
            self.skipped += 1
        self.latest = frame
        self.event.set()

    def reply(self, message: str) -> None:
        self.control.append(message)
        self.event.set()


class Hub:
    """Frames, clients and run totals for one dashboard server."""

    def __init__(
        self,
        ring: PacketRing,
        tick_ms: int,
        version: str,
        source: dict[str, str] | None = None,
    ) -> None:
        self.ring = ring
        # what the header shows: {"kind": "live"|"file", "name": ..., "state": ...}; the
        # state of a file goes from "reading" to "finished" with the final frame
        live = {"kind": "live", "name": "", "state": "capturing"}
        self.source: dict[str, str] = dict(source or live)
        self.replay: Any = None  # a ReplayPacer when the run is paced (--replay-speed)
        self.tick_ms = tick_ms
        self.version = version
        self.started = time.time()
        self.frame_seq = 0
        self.latest_frame: str | None = None
        self.last_tick: dict[str, Any] | None = None
        self.clients: set[Client] = set()
        self.totals: dict[str, int] = {}
        self.recent_alerts: deque[dict[str, Any]] = deque(maxlen=RECENT_ALERTS)
        self.history: deque[list[float]] = deque(maxlen=HISTORY)
        self.queue: queue.Queue[TickMessage] = queue.Queue(maxsize=QUEUE_CAPACITY)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self.frames_skipped = 0  # by clients that have gone (live ones count their own)
        self.shard_depths: list[int] = []

    # ------------------------------------------------------------------ capture thread

    def submit(self, msg: TickMessage) -> bool:
        """Hand a message to the loop; False (dropped) when the queue is full. Never blocks."""
        try:
            self.queue.put_nowait(msg)
        except queue.Full:
            return False
        loop = self.loop
        if loop is not None:
            with self._wake_lock:
                if self._wake_pending:
                    return True
                self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                loop.call_soon_threadsafe(self._drain)
        return True

    # ------------------------------------------------------------------ loop thread

    def _drain(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        while True:
            try:
                msg = self.queue.get_nowait()
            except queue.Empty:
                return
            try:
                self.process(msg)
            except Exception:  # a bad message must not kill the server
                log.exception("dashboard: failed to process a tick message")

    def process(self, msg: TickMessage) -> None:
        """Merge one message: update totals; for ticks (or late alerts) publish a frame."""
        self.totals = dict(msg.totals)
        self.shard_depths = list(msg.shard_depths)
        self.recent_alerts.extend(msg.alerts)
        if msg.kind == "tick":
            self.last_tick = msg.tick
            t = msg.tick
            self.history.append([t.get("ts", 0.0), t.get("mbps", 0.0), t.get("pps", 0.0)])
            packets = []
            for pid in msg.packet_ids:
                stored = self.ring.get(pid)
                if stored is not None:
                    packets.append(packet_summary(stored))
            self.publish(msg.tick, packets, msg.alerts)
        elif msg.kind == "final":
            if self.source.get("kind") == "file":
                self.source = dict(self.source, state="finished")
            # Offline input has ended: the final frame keeps the last tick's rates and shows
            # the run's largest flows, so the page is worth inspecting after EOF.
            tick = dict(self.last_tick or _EMPTY_TICK, top_flows=msg.tick.get("top_flows", []))
            tick["active_flows"] = msg.totals.get("active_flows", tick["active_flows"])
            packets = [
                packet_summary(p) for p in map(self.ring.get, msg.packet_ids) if p is not None
            ]
            self.publish(tick, packets, msg.alerts)

    def publish(
        self, tick: dict[str, Any], packets: list[dict[str, Any]], alerts: list[dict[str, Any]]
    ) -> None:
        self.frame_seq += 1
        tick = dict(tick, frame_seq=self.frame_seq, server_ts=time.time() * 1000.0)
        frame = {
            "type": "frame",
            "frame_seq": self.frame_seq,
            "tick": tick,
            "packets": packets,
            "alerts": alerts,
            "source": self.source,
        }
        if self.replay is not None:
            frame["replay"] = self.replay.state().as_dict()
        text = json.dumps(frame, separators=(",", ":"))
        self.latest_frame = text
        for client in self.clients:
            client.offer(text)
        trace(log, "dashboard frame %d to %d clients", self.frame_seq, len(self.clients))

    def hello(self) -> str:
        return json.dumps(
            {
                "type": "hello",
                "version": self.version,
                "tick_ms": self.tick_ms,
                "started": self.started,
                "source": self.source,
                "replay": None if self.replay is None else self.replay.state().as_dict(),
                "server_ts": time.time() * 1000.0,
                "recent_alerts": list(self.recent_alerts),
                # [ts, mbps, pps] of the ticks before the latest frame, oldest first, so a page
                # opened late (e.g. after offline input ended) starts with a filled chart
                "history": list(self.history)[:-1],
            }
        )

    def handle_request(self, client: Client, raw: str) -> None:
        """A client message: get_packet_detail {id} or perf_ping {client_ts}; anything else
        (see :mod:`netscope.web.requests`) is answered with an ``error`` message."""
        try:
            request = parse_request(raw)
        except RequestError as exc:
            client.reply(error_message(str(exc)))
            return
        if isinstance(request, PerfPing):
            pong = {
                "type": "perf_pong",
                "client_ts": request.client_ts,
                "server_ts": time.time() * 1000.0,
            }
            client.reply(json.dumps(pong))
            return
        if isinstance(request, ReplayControl):
            client.reply(json.dumps(self._replay_control(request)))
            return
        stored = self.ring.get(request.id)
        if stored is None:
            reply: dict[str, Any] = {
                "type": "packet_detail",
                "id": request.id,
                "error": "packet no longer in the buffer (web.packet_buffer)",
                "layers": [],
                "hex_dump": "",
            }
        else:
            reply = packet_detail(stored)
        client.reply(json.dumps(reply))

    def _replay_control(self, request: ReplayControl) -> dict[str, Any]:
        """Pause, resume or seek the paced replay; answers its new state."""
        pacer = self.replay
        if pacer is None:
            return {"type": "error", "message": "replay_control: this run is not a paced replay"}
        if request.action == "pause":
            pacer.pause()
        elif request.action == "resume":
            pacer.resume()
        elif request.to is not None:
            pacer.seek(int(request.to * 1e9))
        return {"type": "replay_state", "replay": pacer.state().as_dict()}

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": self.version,
            "uptime_secs": round(time.time() - self.started, 3),
            "clients": len(self.clients),
            "frame_seq": self.frame_seq,
            "packets": self.totals.get("packets", 0),
        }

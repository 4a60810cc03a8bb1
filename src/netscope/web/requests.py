"""Client → server WebSocket messages: parse and validate before anything acts on them.

A browser tab sends three kinds of message, all tiny: ``get_packet_detail {id}``,
``perf_ping {client_ts}`` and, in a paced replay, ``replay_control {action, to}``.
Anything else — text that is not JSON, JSON that is not an object,
an unknown ``type``, an ``id`` that is not a non-negative integer below 2**63 (``1e400``
parses as infinity, ``1.5`` is not an id), a ``client_ts`` that is not a finite number,
a message over :data:`MAX_REQUEST_BYTES` or nested deeper than the JSON decoder allows —
is a :class:`RequestError`. The server answers it with an ``error`` message and keeps the
connection: a bad message is the client's mistake, not a reason to drop its dashboard.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

# The largest client message handled; the dashboard's own are under 100 bytes. Larger text
# (up to server.WS_FRAME_LIMIT, where aiohttp closes the connection) gets an error reply.
MAX_REQUEST_BYTES = 4096
# Packet ids are int64 in the packet ring; larger integers can never name a packet.
MAX_PACKET_ID = 2**63 - 1


class RequestError(ValueError):
    """A client message the server will not act on; ``str(exc)`` is the error reply's text."""


@dataclass(frozen=True)
class PerfPing:
    client_ts: float


@dataclass(frozen=True)
class GetPacketDetail:
    id: int


@dataclass(frozen=True)
class ReplayControl:
    """``replay_control``: pause / resume a paced replay, or seek to ``to`` (capture time, s)."""

    action: str
    to: float | None = None


REPLAY_ACTIONS = ("pause", "resume", "seek")

Request = PerfPing | GetPacketDetail | ReplayControl


def error_message(text: str) -> str:
    """The ``error`` server message: ``{"type": "error", "message": text}``."""
    return json.dumps({"type": "error", "message": text})


def _finite_number(value: object) -> float | None:
    """``value`` if it is a finite JSON number (booleans are not numbers here), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def parse_request(raw: str) -> Request:
    """The request in ``raw`` (a WebSocket text message), or RequestError saying why not."""
    # Every character is at least one byte: count characters first, encode only short text.
    if len(raw) > MAX_REQUEST_BYTES or len(raw.encode("utf-8", "replace")) > MAX_REQUEST_BYTES:
        raise RequestError(f"message larger than {MAX_REQUEST_BYTES} bytes")
    try:
        msg = json.loads(raw)
    except RecursionError:
        raise RequestError("message nested too deeply") from None
    except ValueError:
        raise RequestError("message is not JSON") from None
    if not isinstance(msg, dict):
        raise RequestError("message is not a JSON object")
    kind = msg.get("type")
    if kind == "perf_ping":
        ts = _finite_number(msg.get("client_ts"))
        if ts is None:
            raise RequestError("perf_ping needs client_ts, a finite number")
        return PerfPing(ts)
    if kind == "get_packet_detail":
        pid = msg.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool) or not 0 <= pid <= MAX_PACKET_ID:
            raise RequestError(f"get_packet_detail needs id, an integer from 0 to {MAX_PACKET_ID}")
        return GetPacketDetail(pid)
    if kind == "replay_control":
        action = msg.get("action")
        if action not in REPLAY_ACTIONS:
            raise RequestError("replay_control needs action: pause, resume or seek")
        to = _finite_number(msg.get("to"))
        if action == "seek" and to is None:
            raise RequestError("replay_control seek needs to, a finite number (seconds)")
        return ReplayControl(action, to)
    if isinstance(kind, str):
        shown = kind if len(kind) <= 40 else kind[:40] + "…"
        raise RequestError(f"unknown message type {shown!r}")
    raise RequestError("message has no string 'type'")

"""Malformed WebSocket messages get an ``error`` reply and the connection keeps working.

Against a real server (in-process, real sockets): every bad message of the issue and its
neighbours is answered ``{"type": "error", "message": …}``, and afterwards the same
connection still answers a valid ``perf_ping``. Past the frame limit aiohttp closes with
1009 (message too big), which is the documented hard cap.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from netscope.web.requests import MAX_REQUEST_BYTES, RequestError, parse_request
from netscope.web.server import WS_FRAME_LIMIT

from .conftest import serving


def nested(depth: int) -> str:
    return '{"type":"perf_ping","client_ts":1,"x":' + "[" * depth + "]" * depth + "}"


BAD_MESSAGES: list[tuple[str, str]] = [
    ('{"type":"get_packet_detail","id":1e400}', "get_packet_detail needs id"),
    (nested(5000), "larger than"),  # the 5,000 levels: over the size cap
    (nested(1900), "nested too deeply"),  # under the size cap, deeper than json allows
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('"perf_ping"', "not a JSON object"),
    ("{}", "no string 'type'"),
    ('{"type": 5}', "no string 'type'"),
    ('{"type": "drop_tables"}', "unknown message type 'drop_tables'"),
    ('{"type":"get_packet_detail"}', "get_packet_detail needs id"),
    ('{"type":"get_packet_detail","id":-1}', "get_packet_detail needs id"),
    ('{"type":"get_packet_detail","id":1.5}', "get_packet_detail needs id"),
    ('{"type":"get_packet_detail","id":"7"}', "get_packet_detail needs id"),
    ('{"type":"get_packet_detail","id":true}', "get_packet_detail needs id"),
    ('{"type":"get_packet_detail","id":9223372036854775808}', "get_packet_detail needs id"),
    ('{"type":"perf_ping"}', "perf_ping needs client_ts"),
    ('{"type":"perf_ping","client_ts":"now"}', "perf_ping needs client_ts"),
    ('{"type":"perf_ping","client_ts":NaN}', "perf_ping needs client_ts"),
    ('{"type":"perf_ping","client_ts":-Infinity}', "perf_ping needs client_ts"),
    ('{"type":"perf_ping","client_ts":1e400}', "perf_ping needs client_ts"),
    ('{"type":"perf_ping","client_ts":false}', "perf_ping needs client_ts"),
    ('{"type":"perf_ping","client_ts":1,"pad":"' + "é" * 2100 + '"}', "larger than"),
]


async def _reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next message that is not a broadcast (hello / frame)."""
    while True:
        msg = await ws.receive(timeout=30)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] not in ("hello", "frame"):
            return data


async def _ping(ws: aiohttp.ClientWebSocketResponse, ts: float) -> None:
    await ws.send_str(json.dumps({"type": "perf_ping", "client_ts": ts}))
    pong = await _reply(ws)
    assert pong["type"] == "perf_pong" and pong["client_ts"] == ts


def test_malformed_messages_get_an_error_and_the_connection_stays() -> None:
    async def check(port: int) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws,
        ):
            for i, (text, needle) in enumerate(BAD_MESSAGES):
                await ws.send_str(text)
                reply = await _reply(ws)
                assert reply["type"] == "error", (text[:60], reply)
                assert needle in reply["message"], (text[:60], reply)
                assert set(reply) == {"type", "message"}
                await _ping(ws, 1000.0 + i)  # still answering
            await ws.send_bytes(b"\x00\x01")
            assert (await _reply(ws))["message"] == "binary messages are not supported"
            await ws.send_str(json.dumps({"type": "get_packet_detail", "id": 12}))
            missing = await _reply(ws)
            assert missing["type"] == "packet_detail" and missing["error"]
            await _ping(ws, 1733333333333)

    with serving() as server:
        asyncio.run(check(server.cfg.port))


def test_a_message_over_the_frame_limit_closes_with_1009() -> None:
    async def check(port: int) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws,
        ):
            await ws.send_str('{"type":"perf_ping","x":"' + "a" * WS_FRAME_LIMIT + '"}')
            while (msg := await ws.receive(timeout=30)).type == aiohttp.WSMsgType.TEXT:
                pass
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG

    with serving() as server:
        asyncio.run(check(server.cfg.port))


def test_parse_request_limits() -> None:
    pad = MAX_REQUEST_BYTES - len('{"type":"perf_ping","client_ts":1,"p":""}')
    exact = '{"type":"perf_ping","client_ts":1,"p":"' + "a" * pad + '"}'
    assert parse_request(exact).client_ts == 1  # type: ignore[union-attr]
    with pytest.raises(RequestError, match="larger than"):
        parse_request(exact.replace('"p":"', '"p":"a'))
    big = f'{{"type":"get_packet_detail","id":{2**63 - 1}}}'
    assert parse_request(big).id == 2**63 - 1  # type: ignore[union-attr]
    assert parse_request('{"type":"get_packet_detail","id":0}').id == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"type":"replay_control"}', "needs action"),
        ('{"type":"replay_control","action":"rewind"}', "needs action"),
        ('{"type":"replay_control","action":"seek"}', "seek needs to"),
        ('{"type":"replay_control","action":"seek","to":1e400}', "seek needs to"),
        ('{"type":"replay_control","action":"seek","to":true}', "seek needs to"),
    ],
)
def test_replay_control_is_validated(raw: str, reason: str) -> None:
    with pytest.raises(RequestError, match=reason):
        parse_request(raw)


def test_replay_control_outside_a_replay_is_an_error_reply() -> None:
    from netscope.config import WebConfig
    from netscope.web.feed import ring_for
    from netscope.web.hub import Client, Hub

    hub = Hub(ring_for(WebConfig()), 1000, "test")
    client = Client()
    hub.handle_request(client, '{"type":"replay_control","action":"pause"}')
    reply = json.loads(client.control.popleft())
    assert reply == {"type": "error", "message": "replay_control: this run is not a paced replay"}

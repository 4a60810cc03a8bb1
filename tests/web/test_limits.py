"""Connection limits of the dashboard server, with real sockets.

- idle and slow (slowloris) connections are closed after the idle timeout, an open WebSocket
  is not (``ServerLimits.idle_timeout_s`` shrunk to 1 s so the test is quick); a stalled TLS
  handshake is closed after the handshake timeout;
- connections beyond the per-address cap are answered 503 and closed while the admitted
  ones, and other addresses, keep working;
- requests with oversized headers leave one log line per client per interval on the real
  process's stderr: no traceback, no header bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import re
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.http_exceptions import LineTooLong

from netscope.config import WebConfig, WebTlsConfig
from netscope.web.errorlog import ClientErrorLog, PerKeyInterval
from netscope.web.guard import ServerLimits

from .conftest import WebRun, free_port, serving, start_web
from .test_http import make_cert

HANG_GUARD_S = 30.0  # only bounds a broken run; nothing is asserted about elapsed time


def test_idle_and_slow_connections_are_closed_but_websockets_stay() -> None:
    async def check(port: int) -> None:
        silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
        slow_r, slow_w = await asyncio.open_connection("127.0.0.1", port)
        kept_r, kept_w = await asyncio.open_connection("127.0.0.1", port)

        async def trickle() -> None:  # one header byte every 100 ms, never finishing
            with contextlib.suppress(ConnectionError):
                for byte in b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000:
                    slow_w.write(bytes([byte]))
                    await slow_w.drain()
                    await asyncio.sleep(0.1)

        trickler = asyncio.create_task(trickle())
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws,
        ):
            assert (await ws.receive_json(timeout=HANG_GUARD_S))["type"] == "hello"
            # A keep-alive connection that had one request and then goes quiet.
            kept_w.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await asyncio.wait_for(silent_r.read(), HANG_GUARD_S) == b""
            assert await asyncio.wait_for(slow_r.read(), HANG_GUARD_S) == b""
            kept = await asyncio.wait_for(kept_r.read(), HANG_GUARD_S)
            assert kept.startswith(b"HTTP/1.1 200 OK") and b'"status": "ok"' in kept
            trickler.cancel()
            # The WebSocket was just as silent all along, and it still answers.
            await ws.send_str(json.dumps({"type": "perf_ping", "client_ts": 5}))
            assert (await ws.receive_json(timeout=HANG_GUARD_S))["type"] == "perf_pong"
        for writer in (silent_w, slow_w, kept_w):
            writer.close()

    with serving(ServerLimits(idle_timeout_s=1.0)) as server:
        asyncio.run(check(server.cfg.port))


def test_a_stalled_tls_handshake_is_closed(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    cfg = WebConfig(tls=WebTlsConfig(enabled=True, cert_path=cert, key_path=key))
    limits = ServerLimits(tls_handshake_timeout_s=1.0, idle_timeout_s=600.0)
    with serving(limits, cfg) as server, _connect(server.cfg.port) as sock:
        sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, never finished
        assert _read_all(sock) == b""


def _health(port: int, conn: http.client.HTTPConnection | None = None) -> int:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_S)
    conn.request("GET", "/api/health")
    resp = conn.getresponse()
    resp.read()
    return resp.status


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), HANG_GUARD_S, (source, 0))


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_connections_over_the_per_address_cap_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="netscope.web")
    with serving(ServerLimits(max_connections_per_address=3)) as server:
        port = server.cfg.port
        admitted = [http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_S)
                    for _ in range(3)]  # fmt: skip
        for conn in admitted:
            assert _health(port, conn) == 200  # each is open and counted now
        for _ in range(3):
            with _connect(port) as extra:  # sends nothing: the refusal is all it reads
                assert _read_all(extra).startswith(b"HTTP/1.1 503 Service Unavailable")
        for conn in admitted:  # the admitted connections are untouched
            assert _health(port, conn) == 200
        # Another address (all of 127/8 is loopback on Linux) has its own count.
        other = _connect(port, "127.0.0.2")
        other.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_all(other).startswith(b"HTTP/1.1 200 OK")
        other.close()
        # Closing one admitted connection frees a slot (once the server has seen the close).
        admitted.pop().close()
        for _ in range(int(HANG_GUARD_S / 0.05)):
            with contextlib.suppress(ConnectionError):
                if _health(port) == 200:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("no connection admitted after one was closed")
        for conn in admitted:
            conn.close()
    refused = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
    assert refused == ["dashboard: refused a connection from 127.0.0.1: it already has 3 open"]


SECRET = b"S3CRET-HEADER-VALUE"


def _oversized(port: int, source: str, kind: int) -> bytes:
    """One request aiohttp cannot parse; returns the server's answer."""
    heads = [
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + SECRET * 1000 + b"\r\n\r\n",
        b"GET /" + SECRET * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, SECRET) for i in range(200))
        + b"\r\n",
    ]  # fmt: skip
    with _connect(port, source) as sock:
        sock.sendall(heads[kind % len(heads)])
        return _read_all(sock)


def test_oversized_headers_log_one_line_per_client_without_their_bytes(
    small_trace: Path, tmp_path: Path, web_run: list[WebRun]
) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret-pass\n")
    port = free_port()
    run = start_web(
        ["--read-pcap", str(small_trace), "--quiet", "--web-auth", "--web-auth-user", "admin",
         "--web-auth-pass-file", str(pw)],
        port,
    )  # fmt: skip
    web_run.append(run)
    run.wait_for("dashboard: input finished")
    for i in range(6):  # unauthenticated, every kind of oversized head, from two addresses
        for source in ("127.0.0.1", "127.0.0.2"):
            assert _oversized(port, source, i).startswith(b"HTTP/1.0 400"), (i, source)
    rc, _, err = run.stop()
    assert rc == 0, err
    assert "Traceback" not in err and SECRET.decode() not in err, err
    lines = [ln for ln in err.splitlines() if "request from" in ln]
    assert len(lines) == 2, err
    for line, source in zip(sorted(lines), ("127.0.0.1", "127.0.0.2"), strict=True):
        assert re.fullmatch(
            rf"WARNING netscope\.web\.server: dashboard: Error handling request from "
            rf"{re.escape(source)}: \w+ \(HTTP 4\d\d\)",
            line,
        ), line


def test_error_log_rate_limit_and_redaction(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    logger = logging.getLogger("netscope.web.test_errorlog")
    adapter = ClientErrorLog(logger, PerKeyInterval(60.0, clock=lambda: now[0]))
    exc = LineTooLong(SECRET.decode() * 10, "8190")
    caplog.set_level(logging.DEBUG, logger=logger.name)

    def bad_request(client: str) -> None:
        adapter.exception("Error handling request from %s", client, exc_info=exc)

    for _ in range(4):
        bad_request("10.0.0.1")
    bad_request("10.0.0.2")
    now[0] = 61.0
    bad_request("10.0.0.1")
    adapter.exception("Unhandled exception", exc_info=RuntimeError("boom"))
    texts = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert texts[:3] == [
        ("WARNING", "dashboard: Error handling request from 10.0.0.1: LineTooLong (HTTP 400)"),
        ("WARNING", "dashboard: Error handling request from 10.0.0.2: LineTooLong (HTTP 400)"),
        ("WARNING", "dashboard: Error handling request from 10.0.0.1: LineTooLong (HTTP 400) "
                    "(3 more from this client not logged)"),
    ]  # fmt: skip
    # A server-side exception keeps its traceback, at DEBUG only.
    assert texts[3:] == [
        ("DEBUG", "dashboard: Unhandled exception: RuntimeError"),
        ("ERROR", "dashboard: Unhandled exception: RuntimeError"),
    ]
    assert caplog.records[3].exc_info is not None and caplog.records[4].exc_info is None
    assert all(r.exc_info is None for r in caplog.records[:3])
    assert SECRET.decode() not in caplog.text

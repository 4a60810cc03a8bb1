"""HTTP side of the dashboard against a real ``netscope --read-pcap … --web`` process.

Basic auth on every route (the WebSocket handshake included), HTTPS with a certificate the
test makes with ``openssl``, /metrics parsed by prometheus_client and checked against the
run's summary, and the one-line start-up errors (bad cert/key, port in use, missing asset).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import REPO_ROOT, WebRun, free_port, start_web

ROUTES = ["/", "/static/app.js", "/static/style.css", "/static/vendor/chart.umd.js",
          "/api/health", "/metrics"]  # fmt: skip


def summary_value(out: str, label: str) -> int:
    m = re.search(rf"^\s+{re.escape(label)}:\s+(\d+)", out, re.M)
    assert m, out
    return int(m.group(1))


def _auth_headers(auth: aiohttp.BasicAuth | None) -> dict[str, str]:
    return {"Authorization": auth.encode()} if auth is not None else {}


async def _status(url: str, auth: aiohttp.BasicAuth | None, ssl_ctx: object = None) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=_auth_headers(auth), ssl=ssl_ctx) as resp,
    ):
        await resp.read()
        return resp.status


async def _ws_status(url: str, auth: aiohttp.BasicAuth | None, ssl_ctx: object = None) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, headers=_auth_headers(auth), ssl=ssl_ctx) as ws:
                msg = await ws.receive_json(timeout=10)
                assert msg["type"] == "hello"
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def make_cert(tmp: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_auth_on_every_route_and_metrics_match_summary(
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
    good = aiohttp.BasicAuth("admin", "s3cret-pass")
    bad = aiohttp.BasicAuth("admin", "s3cret-pasS")
    wrong_user = aiohttp.BasicAuth("root", "s3cret-pass")
    base = run.url.rstrip("/")

    async def check() -> None:
        for route in ROUTES:
            assert await _status(base + route, None) == 401, route
            assert await _status(base + route, bad) == 401, route
            assert await _status(base + route, wrong_user) == 401, route
            assert await _status(base + route, good) == 200, route
        ws = base.replace("http", "ws") + "/ws"
        assert await _ws_status(ws, None) == 401
        assert await _ws_status(ws, bad) == 401
        assert await _ws_status(ws, good) == 101

    asyncio.run(check())

    async def fetch(route: str) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(base + route, headers=_auth_headers(good)) as resp,
        ):
            assert resp.status == 200
            return await resp.text()

    health = json.loads(asyncio.run(fetch("/api/health")))
    assert health["status"] == "ok"
    metrics_text = asyncio.run(fetch("/metrics"))
    rc, out, err = run.stop()
    assert rc == 0, err
    samples = {
        s.name: s.value for fam in text_string_to_metric_families(metrics_text) for s in fam.samples
    }
    assert samples["netscope_capture_packets_total"] == summary_value(out, "Packets captured")
    assert samples["netscope_parse_errors_total"] == summary_value(out, "Parse errors")
    flows = re.search(r"Flows:\s+(\d+) active \((\d+) seen, (\d+) expired", out)
    assert flows, out
    assert samples["netscope_active_flows"] == int(flows.group(1))
    assert samples["netscope_flows_created_total"] == int(flows.group(2))
    assert samples["netscope_expired_flows_total"] == int(flows.group(3))
    assert samples["netscope_capture_bytes_total"] > 0
    assert samples["netscope_uptime_seconds"] > 0
    assert "netscope_build_info" in samples
    for name in ("netscope_kernel_drops_total", "netscope_kernel_if_drops_total",
                 "netscope_dispatch_drops_total", "netscope_alerts_total"):  # fmt: skip
        assert samples[name] == 0


def test_https_with_self_signed_certificate(
    small_trace: Path, tmp_path: Path, web_run: list[WebRun]
) -> None:
    cert, key = make_cert(tmp_path)
    port = free_port()
    run = start_web(
        ["--read-pcap", str(small_trace), "--quiet", "--web-tls", "--web-tls-cert", str(cert),
         "--web-tls-key", str(key)],
        port,
        scheme="https",
    )  # fmt: skip
    web_run.append(run)
    line = run.wait_for("dashboard: https://")
    assert f"127.0.0.1:{port}" in line
    ctx = ssl.create_default_context(cafile=str(cert))
    base = run.url.rstrip("/")

    async def check() -> None:
        for route in ROUTES:
            assert await _status(base + route, None, ctx) == 200, route
        assert await _ws_status(base.replace("https", "wss") + "/ws", None, ctx) == 101
        # Plain HTTP on the TLS port is not served.
        with pytest.raises(aiohttp.ClientError):
            await _status(f"http://127.0.0.1:{port}/api/health", None)

    asyncio.run(check())
    rc, _, err = run.stop()
    assert rc == 0, err


def run_cli(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netscope", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize("which", ["cert", "key"])
def test_missing_tls_file_is_a_one_line_error(
    small_trace: Path, tmp_path: Path, which: str
) -> None:
    cert, key = make_cert(tmp_path)
    missing = tmp_path / "nope.pem"
    args = ["--read-pcap", str(small_trace), "--quiet", "--web", "--web-port", str(free_port()),
            "--web-tls", "--web-tls-cert", str(missing if which == "cert" else cert),
            "--web-tls-key", str(missing if which == "key" else key)]  # fmt: skip
    proc = run_cli(args)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    label = "certificate" if which == "cert" else "key"
    assert f"cannot read TLS {label} {missing}" in lines[0]


def test_mismatched_key_is_a_clear_error(small_trace: Path, tmp_path: Path) -> None:
    cert, _ = make_cert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, key2 = make_cert(other)
    proc = run_cli(["--read-pcap", str(small_trace), "--quiet", "--web", "--web-port",
                    str(free_port()), "--web-tls", "--web-tls-cert", str(cert),
                    "--web-tls-key", str(key2)])  # fmt: skip
    assert proc.returncode == 1
    assert "error: cannot load TLS certificate" in proc.stderr


def test_port_in_use_exits_1(small_trace: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = run_cli(["--read-pcap", str(small_trace), "--quiet", "--web", "--web-port",
                        str(port)])  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}: address already in use" in proc.stderr
    assert "Capture complete" not in proc.stdout  # failed before reading anything


def test_non_loopback_bind_without_tls_and_auth_warns(
    small_trace: Path, web_run: list[WebRun]
) -> None:
    port = free_port()
    run = start_web(["--read-pcap", str(small_trace), "--quiet", "--web-bind", "0.0.0.0"], port)
    web_run.append(run)
    run.wait_for("dashboard: input finished")
    rc, _, err = run.stop()
    assert rc == 0
    assert "warning: the dashboard on 0.0.0.0" in err
    assert "without TLS and auth" in err


def test_missing_vendor_asset_message(tmp_path: Path) -> None:
    from netscope.errors import NetScopeError
    from netscope.web.server import check_assets

    with pytest.raises(NetScopeError) as info:
        check_assets(tmp_path)
    assert "dashboard asset missing" in str(info.value)
    assert "build-web-assets" in info.value.one_line()


def test_auth_without_tls_off_loopback_warns_once(
    small_trace: Path, tmp_path: Path, web_run: list[WebRun]
) -> None:
    """Basic auth over plain HTTP on a reachable address: the one specific warning (the
    password crosses the network), not the generic "without TLS and auth" line as well."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    port = free_port()
    run = start_web(
        ["--read-pcap", str(small_trace), "--quiet", "--web-bind", "0.0.0.0", "--web-auth",
         "--web-auth-user", "u", "--web-auth-pass-file", str(secret)],
        port,
    )  # fmt: skip
    web_run.append(run)
    run.wait_for("dashboard: input finished")
    rc, _, err = run.stop()
    assert rc == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert "serves Basic auth without TLS on 0.0.0.0" in warnings[0]

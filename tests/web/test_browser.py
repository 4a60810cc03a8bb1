"""The dashboard in a real browser: Debian's chromium driven by playwright (no download).

- Live on ``lo`` (root): traffic the test sends; the page connects, cards and chart update,
  top flows has rows, packets appear, clicking one shows its layers and hex, ``?perf=1``
  shows fps.
- A generated SYN flood read with ``--anomalies --web`` shows in the alerts tab (skipped
  while anomaly detection is not available).
- Offline (any user): ``--read-pcap`` with ``--web`` keeps serving the final state after EOF.

Screenshots go to ``artifacts/web/`` (``NETSCOPE_ARTIFACTS`` overrides the root); the
docs' image was taken from one of them. No request may leave the server's origin.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ARTIFACTS, CHROMIUM, WebRun, free_port, generate, open_page, start_web

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="chromium not installed (install-system-deps)"
    ),
]


def check_page_basics(page: Any) -> None:
    page.wait_for_function(
        "document.getElementById('status').dataset.state === 'connected'", timeout=20_000
    )
    page.wait_for_function(
        "document.getElementById('card-mbps').textContent !== '–'", timeout=20_000
    )
    page.wait_for_function("document.querySelectorAll('#flows tbody tr').length > 0")
    # the Community ID column (join key with Zeek/Suricata), e.g. "1:…="
    page.wait_for_function(
        "[...document.querySelectorAll('#flows tbody td:last-child')]"
        ".some(td => /^1:[A-Za-z0-9+\\/]{27}=$/.test(td.textContent))"
    )
    page.wait_for_function("document.querySelectorAll('#packets tbody tr').length > 0")
    # Inspector: click a packet, its layers and hex dump appear.
    page.click("#packets tbody tr")
    page.wait_for_function("document.querySelectorAll('#layers details').length >= 2")
    page.wait_for_function("document.getElementById('hex').textContent.startsWith('0000')")
    names = page.eval_on_selector_all("#layers summary", "els => els.map(e => e.textContent)")
    assert "IPv4" in names or "IPv6" in names, names


class Traffic(threading.Thread):
    """UDP datagrams and short TCP exchanges on loopback until stopped."""

    def __init__(self, udp_port: int, tcp_port: int) -> None:
        super().__init__(daemon=True)
        self.udp_port = udp_port
        self.tcp_port = tcp_port
        self.stop_flag = threading.Event()

    def run(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.tcp_port))
        srv.listen(16)
        srv.settimeout(0.05)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        payload = b"netscope-dashboard-test " * 20
        n = 0
        while not self.stop_flag.is_set():
            for _ in range(20):
                udp.sendto(payload, ("127.0.0.1", self.udp_port))
            n += 1
            if n % 10 == 0:
                try:
                    c = socket.create_connection(("127.0.0.1", self.tcp_port), timeout=1)
                    s, _ = srv.accept()
                    c.sendall(b"GET / HTTP/1.0\r\n\r\n" * 10)
                    s.recv(65536)
                    s.sendall(b"x" * 4000)
                    c.recv(65536)
                    c.close()
                    s.close()
                except OSError:
                    pass
            time.sleep(0.01)
        udp.close()
        srv.close()


@pytest.mark.timing  # ?perf=1 asserts an fps floor
@pytest.mark.privileged
@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root / CAP_NET_RAW")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux loopback 'lo'")
def test_live_dashboard_in_chromium(browser: Any, tmp_path: Path, web_run: list[WebRun]) -> None:
    udp_port, tcp_port = free_port(), free_port()
    cfg = tmp_path / "web.toml"
    text = "[web]\ntick_ms = 100\nsample_rate = 1\n"
    cfg.write_text(text)
    port = free_port()
    run = start_web(
        ["-i", "lo", "-t", "20", "--quiet", "--config", str(cfg), "-f",
         f"port {udp_port} or port {tcp_port}"],
        port,
    )  # fmt: skip
    web_run.append(run)
    run.wait_for("dashboard: http://")
    traffic = Traffic(udp_port, tcp_port)
    traffic.start()
    external: list[str] = []
    try:
        page = open_page(browser, run.url, external)
        check_page_basics(page)
        page.wait_for_function("window.__netscopeChart.data.labels.length >= 5", timeout=20_000)
        # Cards keep updating: the frame counter in the header moves.
        first = page.text_content("#meta")
        page.wait_for_function(
            f"document.getElementById('meta').textContent !== {first!r}", timeout=10_000
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)
        page.close()

        perf = open_page(browser, run.url + "?perf=1", external)
        perf.wait_for_function("window.__netscopePerf.summary().fps > 0", timeout=20_000)
        time.sleep(2.5)
        text = perf.text_content("#perf")
        assert text is not None and "fps" in text
        summary = perf.evaluate("window.__netscopePerf.summary()")
        assert summary["fps"] >= 5, summary  # tick_ms = 100 → ~10 frames/s
        perf.screenshot(path=str(ARTIFACTS / "dashboard-perf.png"))
        perf.close()
    finally:
        traffic.stop_flag.set()
        traffic.join(5)
    rc, out, err = run.stop()
    assert rc == 0, err
    assert not external, external


def test_offline_final_state_in_chromium(
    browser: Any, small_trace: Path, web_run: list[WebRun]
) -> None:
    port = free_port()
    run = start_web(["--read-pcap", str(small_trace), "--quiet"], port)
    web_run.append(run)
    run.wait_for("dashboard: input finished")
    external: list[str] = []
    page = open_page(browser, run.url, external)
    check_page_basics(page)
    # The header says what the input was and that it has been read to the end (not "live").
    page.wait_for_function("document.getElementById('source').dataset.state === 'finished'")
    assert page.text_content("#source") == f"file {small_trace.name} · finished"
    status = (page.text_content("#status") or "") + (page.text_content("#source") or "")
    assert "live" not in status.lower(), status
    # The chart starts with the run's tick history (hello.history), not a single point.
    page.wait_for_function("window.__netscopeChart.data.labels.length >= 5")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-offline.png"), full_page=True)
    page.close()
    rc, _, err = run.stop()
    assert rc == 0, err
    assert not external, external


def test_syn_flood_shows_in_alerts_tab(browser: Any, tmp_path: Path, web_run: list[WebRun]) -> None:
    """A generated SYN flood read with --anomalies --web: the alert reaches the alerts tab
    (through the alert sink's dashboard hook) and stays there in the final state."""
    trace = generate(tmp_path / "flood.pcap", "--scenario", "syn-flood")
    port = free_port()
    run = start_web(["--read-pcap", str(trace), "--quiet", "--anomalies"], port)
    web_run.append(run)
    run.wait_for("dashboard: input finished")
    external: list[str] = []
    page = open_page(browser, run.url, external)
    page.wait_for_function(
        "document.getElementById('status').dataset.state === 'connected'", timeout=20_000
    )
    page.wait_for_function("document.getElementById('card-alerts').textContent !== '0'")
    page.click("#tab-alerts")
    page.wait_for_function("document.querySelectorAll('#alerts li .kind').length > 0")
    kinds = page.eval_on_selector_all("#alerts li .kind", "e => e.map(x => x.textContent)")
    assert "syn_flood" in kinds
    text = page.text_content("#alerts") or ""
    assert "SYN flood" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-alerts.png"), full_page=True)
    page.close()
    rc, out, err = run.stop()
    assert rc == 0, err
    assert "[alert] SYN flood" in out
    assert not external, external


def test_page_reconnects_to_a_restarted_server(
    browser: Any, small_trace: Path, web_run: list[WebRun]
) -> None:
    """Status turns offline when the server goes, back to live when one returns on the same
    port; the new server's frames (frame_seq from 1 again) are rendered, not dropped as
    duplicates."""
    port = free_port()
    first = start_web(["--read-pcap", str(small_trace), "--quiet"], port)
    web_run.append(first)
    first.wait_for("dashboard: input finished")
    external: list[str] = []
    page = open_page(browser, first.url, external)
    page.wait_for_function("document.getElementById('status').dataset.state === 'connected'")
    page.wait_for_function("document.getElementById('meta').textContent.startsWith('frame')")
    rc, _, err = first.stop()
    assert rc == 0, err
    page.wait_for_function(
        "document.getElementById('status').dataset.state === 'offline'", timeout=10_000
    )
    page.evaluate("document.getElementById('meta').textContent = 'cleared'")
    second = start_web(["--read-pcap", str(small_trace), "--quiet", "-c", "5000"], port)
    web_run.append(second)
    second.wait_for("dashboard: input finished")
    page.wait_for_function(
        "document.getElementById('status').dataset.state === 'connected'", timeout=20_000
    )
    page.wait_for_function(
        "document.getElementById('meta').textContent.startsWith('frame')", timeout=10_000
    )
    page.close()
    rc, _, err = second.stop()
    assert rc == 0, err
    assert not external, external

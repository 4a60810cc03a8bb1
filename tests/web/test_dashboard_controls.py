"""The dashboard's update-rate selector and Pause button, in Debian's chromium.

Live capture on ``lo`` with traffic the test sends (root), so frames keep arriving while the
page is paused: the page must freeze (no redraw, chart and tables unchanged) while frames keep
flowing in, then catch up on resume; the chosen update rate survives a reload (localStorage,
under the original dashboard's key).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import WebRun, free_port, open_page, start_web
from .test_browser import Traffic

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root / CAP_NET_RAW"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux loopback 'lo'"),
]


def _live_run(tmp_path: Path, web_run: list[WebRun]) -> tuple[WebRun, Traffic]:
    udp_port, tcp_port = free_port(), free_port()
    cfg = tmp_path / "web.toml"
    cfg.write_text("[web]\ntick_ms = 100\nsample_rate = 1\n")
    run = start_web(
        ["-i", "lo", "-t", "20", "--quiet", "--config", str(cfg), "-f",
         f"port {udp_port} or port {tcp_port}"],
        free_port(),
    )  # fmt: skip
    web_run.append(run)
    run.wait_for("dashboard: http://")
    traffic = Traffic(udp_port, tcp_port)
    traffic.start()
    return run, traffic


def test_pause_freezes_the_page_and_resume_catches_up(
    browser: Any, tmp_path: Path, web_run: list[WebRun]
) -> None:
    run, traffic = _live_run(tmp_path, web_run)
    external: list[str] = []
    try:
        page = open_page(browser, run.url, external)
        page.wait_for_function("window.__netscopePerf.frames >= 2", timeout=20_000)
        page.click("#pause")
        assert page.text_content("#pause") == "Resume"
        drawn = page.evaluate("window.__netscopePerf.frames")
        seq = page.evaluate("window.__netscopeState.lastSeq")
        meta = page.text_content("#meta")
        shown_points = page.evaluate("window.__netscopeChart.getDatasetMeta(0).data.length")
        # data keeps flowing in while paused ...
        page.wait_for_function(f"window.__netscopeState.lastSeq >= {seq + 10}", timeout=20_000)
        # ... but nothing is redrawn
        assert page.evaluate("window.__netscopePerf.frames") == drawn
        assert page.text_content("#meta") == meta
        assert page.evaluate("window.__netscopeChart.getDatasetMeta(0).data.length") == shown_points
        page.click("#pause")
        assert page.text_content("#pause") == "Pause"
        page.wait_for_function(f"window.__netscopePerf.frames > {drawn}", timeout=10_000)
        # the chart caught up: the ticks that came during the pause are drawn now
        page.wait_for_function(
            "window.__netscopeChart.getDatasetMeta(0).data.length >= "
            f"{min(shown_points + 10, 240)}",
            timeout=10_000,
        )
        assert page.text_content("#meta") != meta
        # the packet list fills up to the original's 500 rows and holds no more
        page.wait_for_function(
            "document.querySelectorAll('#packets tbody tr').length === 500", timeout=20_000
        )
        page.wait_for_function(f"window.__netscopePerf.frames > {drawn + 3}", timeout=10_000)
        assert page.evaluate("document.querySelectorAll('#packets tbody tr').length") == 500
        page.close()
    finally:
        traffic.stop_flag.set()
        traffic.join(5)
    rc, _, err = run.stop()
    assert rc == 0, err
    assert not external, external


def test_update_rate_is_applied_and_remembered(
    browser: Any, tmp_path: Path, web_run: list[WebRun]
) -> None:
    run, traffic = _live_run(tmp_path, web_run)
    external: list[str] = []
    try:
        page = open_page(browser, run.url, external)
        assert page.eval_on_selector_all(
            "#update-rate option", "els => els.map(e => e.textContent)"
        ) == ["1x/s", "2x/s", "4x/s", "10x/s", "Live"]
        assert page.input_value("#update-rate") == "1000"  # the original's default
        page.select_option("#update-rate", "33")
        assert page.evaluate("localStorage.getItem('netscope.updateIntervalMs')") == "33"
        page.reload()
        assert page.input_value("#update-rate") == "33"
        # Live draws every 100 ms tick; 1x/s at most once a second
        page.wait_for_function("window.__netscopePerf.frames >= 3", timeout=20_000)
        start = page.evaluate("[window.__netscopePerf.frames, window.__netscopeState.lastSeq]")
        page.wait_for_function(f"window.__netscopeState.lastSeq >= {start[1] + 15}", timeout=20_000)
        live = page.evaluate("[window.__netscopePerf.frames, window.__netscopeState.lastSeq]")
        assert live[0] - start[0] >= (live[1] - start[1]) // 2  # most frames drawn
        page.select_option("#update-rate", "1000")
        slow0 = page.evaluate("[window.__netscopePerf.frames, window.__netscopeState.lastSeq]")
        page.wait_for_function(f"window.__netscopeState.lastSeq >= {slow0[1] + 20}", timeout=20_000)
        slow = page.evaluate("[window.__netscopePerf.frames, window.__netscopeState.lastSeq]")
        # 20+ frames arrived (>= 2 s at 100 ms): at 1 draw/s that is a handful of draws
        assert slow[0] - slow0[0] <= (slow[1] - slow0[1]) // 3
        page.close()
    finally:
        traffic.stop_flag.set()
        traffic.join(5)
    rc, _, err = run.stop()
    assert rc == 0, err
    assert not external, external


def test_chart_holds_the_originals_240_points() -> None:
    """The page's chart and the server's hello.history agree on the original's 240 points."""
    from netscope.web.hub import HISTORY

    app = (Path(__file__).resolve().parents[2] / "src/netscope/web/static/app.js").read_text()
    assert HISTORY == 240
    assert f"const CHART_POINTS = {HISTORY};" in app

"""``--replay-speed`` with the dashboard, in Debian's chromium: a recorded capture unfolds at
its recorded pace, Pause in the page pauses the replay itself, and the seek bar jumps ahead."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHROMIUM, WebRun, free_port, generate, open_page, start_web

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium not installed"),
]

DURATION_S = 12.0  # capture time of the trace: long enough to pause and seek within it


@pytest.fixture(scope="module")
def slow_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SYN flood spread evenly over DURATION_S of capture time."""
    return generate(
        tmp_path_factory.mktemp("replay") / "flood.pcap",
        "--scenario", "syn-flood", "--duration", str(DURATION_S), "--rate", "200",
    )  # fmt: skip


def _packets_in(path: Path) -> int:
    from netscope.sources import open_capture_file

    source = open_capture_file(path)
    try:
        return sum(batch.count for batch in source.batches())
    finally:
        source.close()


def _health(run: WebRun) -> dict[str, Any]:
    with urllib.request.urlopen(run.url + "api/health", timeout=5) as resp:
        data: dict[str, Any] = json.load(resp)
    return data


@pytest.mark.timing
def test_replay_paces_pauses_and_seeks(
    browser: Any, tmp_path: Path, slow_trace: Path, web_run: list[WebRun]
) -> None:
    cfg = tmp_path / "web.toml"
    cfg.write_text("[web]\ntick_ms = 100\n")
    run = start_web(
        ["--read-pcap", str(slow_trace), "--quiet", "--replay-speed", "1", "--config", str(cfg)],
        free_port(),
    )
    web_run.append(run)
    run.wait_for("dashboard: http://")
    external: list[str] = []
    page = open_page(browser, run.url, external)
    page.wait_for_function("window.__netscopeState.lastSeq >= 3", timeout=20_000)
    assert page.is_visible("#replay")
    assert page.text_content("#source") == f"file {slow_trace.name} · reading"

    # Paced: capture-time ticks of 100 ms arrive ~10 times per wall second (±10 %).
    seq0, t0 = page.evaluate("[window.__netscopeState.lastSeq, performance.now()]")
    page.wait_for_timeout(3000)
    seq1, t1 = page.evaluate("[window.__netscopeState.lastSeq, performance.now()]")
    rate = (seq1 - seq0) / ((t1 - t0) / 1000.0)
    assert 9.0 <= rate <= 11.0, rate

    # Pause in the page pauses the replay: the server's packet counter stops.
    page.click("#pause")
    page.wait_for_function("window.__netscopeState.replay && window.__netscopeState.replay.paused")
    before = _health(run)["packets"]
    time.sleep(1.5)
    assert _health(run)["packets"] == before
    page.click("#pause")
    deadline = time.monotonic() + 10
    while _health(run)["packets"] == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _health(run)["packets"] > before

    # Seek to the end: the rest is processed at once (nothing skipped) and the input finishes.
    page.eval_on_selector(
        "#seek", "el => { el.value = '1000'; el.dispatchEvent(new Event('change')); }"
    )
    run.wait_for("dashboard: input finished", timeout=5)
    assert _health(run)["packets"] == _packets_in(slow_trace)
    page.wait_for_function("document.getElementById('source').dataset.state === 'finished'")
    page.close()
    rc, _, err = run.stop()
    assert rc == 0, err
    assert not external, external

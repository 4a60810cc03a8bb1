"""Helpers for the dashboard tests: free ports, generated traces, a ``netscope --web`` process,
an in-process server (``serving``).

``WebRun`` starts ``python -m netscope … --web`` as a subprocess, waits for its
``dashboard: URL`` line on stderr and stops it with SIGINT (offline runs keep serving the
final state until then). Ports: ``web.port = 0`` is rejected by the config, so each test
finds a free one first.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from netscope.config import WebConfig
from netscope.web.feed import ring_for
from netscope.web.guard import ServerLimits
from netscope.web.hub import Hub
from netscope.web.server import WebServer

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 120.0  # first run may compile kernels
ARTIFACTS = Path(os.environ.get("NETSCOPE_ARTIFACTS", str(REPO_ROOT / "artifacts"))) / "web"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def generate(path: Path, *args: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", *args, str(path)],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )
    return path


@dataclass
class WebRun:
    """A running ``netscope --web`` process and its collected stderr."""

    proc: subprocess.Popen[str]
    port: int
    scheme: str = "http"
    stderr_lines: queue.Queue[str] = field(default_factory=queue.Queue)
    stderr_all: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    def wait_for(self, prefix: str, timeout: float = STARTUP_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.stderr_lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith(prefix):
                return line
        self.proc.kill()
        out, _ = self.proc.communicate()
        pytest.fail(f"netscope never printed {prefix!r}:\n{''.join(self.stderr_all)}\n{out}")

    def stop(self, timeout: float = 30.0) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            pytest.fail(f"netscope did not stop:\n{''.join(self.stderr_all)}")
        time.sleep(0.05)
        return self.proc.returncode, out, "".join(self.stderr_all)


def start_web(
    args: list[str], port: int, scheme: str = "http", command: list[str] | None = None
) -> WebRun:
    """``netscope ARGS --web`` (``command``: another installation's entry point)."""
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    proc = subprocess.Popen(
        [*(command or [sys.executable, "-m", "netscope"]), *args, "--web", "--web-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    run = WebRun(proc, port, scheme)

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            run.stderr_all.append(line)
            run.stderr_lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return run


@pytest.fixture(scope="session")
def small_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(
        tmp_path_factory.mktemp("web") / "traffic.pcap", "--packets", "20000", "--flows", "60"
    )


@pytest.fixture
def web_run() -> Iterator[list[WebRun]]:
    """Collects started runs and makes sure none outlives its test."""
    runs: list[WebRun] = []
    yield runs
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()


@contextmanager
def serving(
    limits: ServerLimits | None = None, cfg: WebConfig | None = None
) -> Iterator[WebServer]:
    """An in-process dashboard server (its own thread and loop, real sockets) on a free port;
    ``limits`` lets a test shrink the connection limits so it runs fast."""
    cfg = replace(cfg or WebConfig(), enabled=True, port=free_port())
    server = WebServer(cfg, Hub(ring_for(cfg), cfg.tick_ms, "test"), limits)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---- the browser (Debian's chromium through playwright; no browser download) ----

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api  # a test dependency: missing is a failure, not a skip

    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_page(browser: Any, url: str, external: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    origin = url.split("/", 3)[:3]
    prefix = "/".join(origin)

    def on_request(req: Any) -> None:
        if not (req.url.startswith(prefix) or req.url.startswith("data:")):
            external.append(req.url)

    page.on("request", on_request)
    page.goto(url)
    return page

#!/usr/bin/env python3
"""Dashboard frame rate and render latency in headless Chromium (``?perf=1``).

Starts ``netscope -i lo --web`` (root) with ``[web] tick_ms`` and ``sample_rate`` from the
command line, sends UDP on loopback at ``--pps`` from this process, opens the page with
``?perf=1`` in Debian's chromium (playwright, no browser download), lets it warm up, then
reads the page's own perf counters (``window.__netscopePerf``): frames rendered per second,
render latency p50/p95/p99 (render time on the client clock, moved onto the server clock
with the ping/pong offset, minus the frame's ``server_ts``) and dropped frames.

    sudo .venv/bin/python scripts/perf/dashboard_fps.py --tick-ms 33 --sample-rate 0
    sudo .venv/bin/python scripts/perf/dashboard_fps.py --tick-ms 33 --sample-rate 1 --pps 100000

Target (docs/performance.md): tick_ms = 33, sample_rate = 0 → >= 29 fps, p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sender(threading.Thread):
    """UDP datagrams to 127.0.0.1:port at about ``pps`` (best effort from Python)."""

    def __init__(self, port: int, pps: int) -> None:
        super().__init__(daemon=True)
        self.port, self.pps = port, pps
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        payload = b"p" * 64
        addr = ("127.0.0.1", self.port)
        start = time.perf_counter()
        while not self.stop.is_set():
            due = int((time.perf_counter() - start) * self.pps) - self.sent
            for _ in range(min(due, 2000)):
                s.sendto(payload, addr)
            self.sent += max(0, min(due, 2000))
            time.sleep(0.001)
        s.close()


def captured_packets(port: int) -> float:
    """netscope_captured_packets_total from /metrics (the capture's own count)."""
    from urllib.request import urlopen

    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("netscope_captured_packets_total "):
                return float(line.split()[1])
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tick-ms", type=int, default=33)
    ap.add_argument("--sample-rate", type=int, default=0)
    ap.add_argument("--pps", type=int, default=2000, help="UDP packets/s sent on lo")
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement time")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("dashboard_fps: live capture on lo needs root", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    web_port, udp_port = free_port(), free_port(socket.SOCK_DGRAM)
    cfg = Path(tempfile.mkdtemp()) / "perf.toml"
    cfg.write_text(f"[web]\ntick_ms = {args.tick_ms}\nsample_rate = {args.sample_rate}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", "-i", "lo", "--quiet", "--config", str(cfg),
         "-f", f"udp port {udp_port}", "--web", "--web-port", str(web_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("dashboard: "):
            break
    else:
        print("netscope did not start", file=sys.stderr)
        return 1
    threading.Thread(target=lambda: [None for _ in proc.stderr or []], daemon=True).start()
    sender = Sender(udp_port, args.pps)
    sender.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{web_port}/?perf=1")
            page.wait_for_function("window.__netscopePerf.summary().fps > 0", timeout=30_000)
            time.sleep(args.warmup)
            page.evaluate(
                "() => { const p = window.__netscopePerf; p.latencies = []; p.dropped = 0;"
                " p.frames = 0; }"
            )
            fps: list[int] = []
            start, packets0 = time.monotonic(), captured_packets(web_port)
            end = start + args.seconds
            while time.monotonic() < end:
                time.sleep(1.0)
                fps.append(page.evaluate("window.__netscopePerf.summary().fps"))
            pps = (captured_packets(web_port) - packets0) / (time.monotonic() - start)
            s = page.evaluate("window.__netscopePerf.summary()")
            browser.close()
    finally:
        sender.stop.set()
        proc.send_signal(2)
        proc.wait(30)
    mean_fps = statistics.fmean(fps)
    print(
        f"tick_ms={args.tick_ms} sample_rate={args.sample_rate} "
        f"captured {pps:.0f} pps (sent {sender.sent}) | "
        f"fps mean {mean_fps:.1f} min {min(fps)} | latency p50 {s['p50']:.1f} p95 {s['p95']:.1f} "
        f"p99 {s['p99']:.1f} ms over {s['samples']} frames | dropped {s['dropped']} | "
        f"clock offset {s['offset']:.1f} ms, rtt {s['rtt']:.1f} ms"
    )
    ok = mean_fps >= 29 and s["p95"] < 50
    if args.tick_ms == 33 and args.sample_rate == 0:
        print("target (>= 29 fps, p95 < 50 ms):", "PASS" if ok else "FAIL")
    return 0


if __name__ == "__main__":
    sys.exit(main())

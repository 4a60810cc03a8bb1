"""A wheel built from a clean clone serves a working dashboard (Chart.js bundled by the build).

The clone has no ``node_modules`` and no ``vendor/chart.umd.js`` (both are ignored by git), so
only the build hook in setup.py can put Chart.js into the wheel: ``python -m build`` makes an
sdist and then the wheel *from the sdist*, the path PyPI users and ``pip install git+…`` take.
The wheel is installed in a fresh venv, run with ``--web`` on the bundled sample, and the page
is loaded in chromium: Chart.js must be the one served locally, the chart must draw.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHROMIUM, REPO_ROOT, WebRun, free_port, open_page, start_web

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="chromium not installed (install-system-deps)"
    ),
]

VENDOR_IN_WHEEL = "netscope/web/static/vendor/chart.umd.js"


def _run(cmd: list[str], cwd: Path, timeout: float = 900) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_wheel_from_clean_clone_serves_the_dashboard(
    browser: Any, tmp_path: Path, web_run: list[WebRun]
) -> None:
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", "--depth", "1", f"file://{REPO_ROOT}", str(clone)], tmp_path)
    assert not (clone / "src/netscope/web/static/vendor").exists()
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(clone)], tmp_path)
    wheels = list(dist.glob("netscope-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    with zipfile.ZipFile(wheels[0]) as wheel:
        chart = wheel.read(VENDOR_IN_WHEEL)
    assert b"Chart.js v4.5.1" in chart[:400]  # the version package-lock.json pins

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    _run([str(venv / "bin/pip"), "install", "-q", str(wheels[0])], tmp_path)

    sample = REPO_ROOT / "samples" / "demo.pcap"
    run = start_web(
        ["--read-pcap", str(sample), "--quiet"], free_port(), command=[str(venv / "bin/netscope")]
    )
    web_run.append(run)
    run.wait_for("dashboard: input finished", timeout=600)  # first run compiles the kernels
    external: list[str] = []
    page = open_page(browser, run.url, external)
    page.wait_for_function("window.Chart !== undefined && window.__netscopeChart !== null")
    page.wait_for_function("window.__netscopeChart.data.labels.length >= 2", timeout=20_000)
    page.close()
    rc, _, err = run.stop()
    assert rc == 0, err
    assert not external, external

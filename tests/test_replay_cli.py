"""``--replay-speed`` on the command line: parsing, the offline-only rule, and that a paced run
is the same analysis as an unpaced one, only slower (never faster than the capture's pace)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests_support import run_netscope as run_cli

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "flood.pcap"
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", "--scenario", "syn-flood", "--duration", "2",
         "--rate", "500", str(path)],
        check=True, cwd=REPO_ROOT, capture_output=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("value", ["0", "-2", "abc", "nan", ""])
def test_bad_speed_is_a_usage_error(trace: Path, value: str) -> None:
    res = run_cli(["--read-pcap", str(trace), "--quiet", "--replay-speed", value])
    assert res.code == 2, res
    assert "--replay-speed" in res.stderr and "Traceback" not in res.stderr
    assert res.stderr.startswith("error: ")


def test_replay_needs_offline_input() -> None:
    res = run_cli(["-i", "lo", "--replay-speed", "2"])
    assert res.code == 2
    assert "--replay-speed paces offline input" in res.stderr


def test_config_key_and_max(trace: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text("[run]\nreplay_speed = -1\n")
    res = run_cli(["--read-pcap", str(trace), "--quiet", "--config", str(cfg)])
    assert res.code == 2 and "run.replay_speed" in res.stderr
    res = run_cli(["--read-pcap", str(trace), "--quiet", "--replay-speed", "max"])
    assert res.code == 0, res.stderr


@pytest.mark.slow
def test_paced_run_is_the_same_analysis_at_the_capture_pace(trace: Path, tmp_path: Path) -> None:
    fast, paced = tmp_path / "fast.json", tmp_path / "paced.json"
    assert run_cli(["--read-pcap", str(trace), "--quiet", "--export-json", str(fast)]).code == 0
    started = time.monotonic()
    res = run_cli(
        ["--read-pcap", str(trace), "--quiet", "--replay-speed", "1", "--stats",
         "--stats-interval-ms", "100", "--export-json", str(paced)]
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert res.code == 0, res.stderr
    assert json.loads(paced.read_text()) == json.loads(fast.read_text())
    # 2 s of capture as captured cannot finish in less than 2 s (a lower bound: an unpaced
    # run of this file, start-up included, takes well under that)
    assert elapsed >= 2.0
    assert res.stdout.count("[stats]") >= 19  # capture-time ticks, as unpaced

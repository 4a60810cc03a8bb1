"""The CI skip policy (tests/skip_policy.py) really fails a run, and the allow-list is tight.

A separate pytest process runs a throw-away test file with the policy loaded as a plugin, so
what is checked is the exit code CI would see, not the hook functions in isolation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skip_policy import ALLOWED_SKIPS, allowed

TESTS_DIR = Path(__file__).resolve().parent

_PROBE = """
import pytest

def test_passes():
    pass

def test_needs_an_oracle():
    pytest.skip("tshark not installed")
"""


def _run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(_PROBE)
    env = dict(os.environ)
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "skip_policy", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip


def test_unlisted_skip_fails_in_ci(tmp_path: Path) -> None:
    proc = _run_probe(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 skips not on the allow-list: FAIL (CI)" in proc.stdout
    assert "test_needs_an_oracle: " in proc.stdout and "tshark not installed" in proc.stdout


@pytest.mark.parametrize("ci", [None, "false", "0"])
def test_unlisted_skip_is_reported_but_allowed_outside_ci(tmp_path: Path, ci: str | None) -> None:
    proc = _run_probe(tmp_path, ci)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "allowed outside CI" in proc.stdout


def test_oracle_ledger_counts_tool_runs(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text(
        "import subprocess\n"
        "def test_uses_tcpdump():\n"
        "    subprocess.run(['tcpdump', '--version'], capture_output=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(TESTS_DIR))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "skip_policy", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "oracle comparisons: 1 passed tests consulted an oracle (tcpdump 1)" in proc.stdout


def test_missing_corpus_or_tool_is_never_allowed() -> None:
    """The skips a bare machine would produce are not on the list."""
    for nodeid, message in [
        ("tests/test_corpus.py::test_x[no-corpus]", "no corpus at /nowhere"),
        ("tests/flows/test_oracle.py::test_y[dpkt-http.pcap]", "corpus file x not available"),
        ("tests/bpf/test_equivalence.py::test_z[a.pcap]", "tcpdump not installed"),
        ("tests/live/test_live_capture.py::test_w", "live capture needs root / CAP_NET_RAW"),
        ("tests/web/test_browser.py::test_v", "chromium not installed (install-system-deps)"),
        ("tests/sinks/test_exports.py::test_u", "could not import 'pandas'"),
    ]:
        assert allowed(nodeid, message) is None, (nodeid, message)


def test_every_allow_list_entry_says_why() -> None:
    for entry in ALLOWED_SKIPS:
        assert len(entry.why) > 20, entry

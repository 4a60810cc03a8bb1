"""memory_scale_1m: one million scale-mode flows within the memory budget (SPEC §8).

Opt-in (it allocates a few hundred MB): skipped unless NETSCOPE_SCALE_TESTS=1, which
.ci/run sets, so CI always runs it. Same check as `netscope --synthetic-flows 1000000`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("NETSCOPE_SCALE_TESTS") != "1",
        reason="opt-in: set NETSCOPE_SCALE_TESTS=1 (CI does)",
    ),
]


def test_memory_scale_1m():
    proc = subprocess.run(
        [sys.executable, "-m", "netscope", "--synthetic-flows", "1000000"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Synthetic flow benchmark complete." in out
    assert re.search(r"^  Flows inserted:\s+1000000$", out, re.M), out
    rss = float(re.search(r"^  RSS \(estimated\):\s+([\d.]+) MB$", out, re.M).group(1))
    elapsed = float(re.search(r"^  Elapsed:\s+([\d.]+)s$", out, re.M).group(1))
    assert re.search(r"^  Budget check:\s+PASS", out, re.M), out
    assert rss < 500.0
    assert elapsed > 0.0


def test_synthetic_fail_exits_nonzero(monkeypatch):
    """A budget overrun is reported as FAIL with a non-zero exit code."""
    from netscope.flows import synthetic

    monkeypatch.setattr(synthetic, "BUDGET_MB", 1.0)
    result = synthetic.run_synthetic(1000)
    assert not result.passed
    from io import StringIO

    buf = StringIO()
    synthetic.print_synthetic(result, buf)
    assert "Budget check:" in buf.getvalue() and "FAIL" in buf.getvalue()

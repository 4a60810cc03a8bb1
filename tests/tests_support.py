"""Helpers importable by test modules (conftest.py fixtures cannot be imported by name)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[1]


class Result(NamedTuple):
    code: int
    stdout: str
    stderr: str


def run_netscope(args: list[str], timeout: float = 120.0) -> Result:
    """``python -m netscope ARGS`` in a subprocess, as a user runs it."""
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run(
        [sys.executable, "-m", "netscope", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)

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


CLI_TIMEOUT_S = 120.0


class CliResult(NamedTuple):
    """Exit code and captured output of one ``python -m netscope`` process."""

    code: int
    stdout: str
    stderr: str


def run_cli(
    args: list[str], timeout: float = CLI_TIMEOUT_S, env: dict[str, str] | None = None
) -> CliResult:
    """Run ``python -m netscope ARGS`` in a fresh process, as a user would.

    A subprocess (rather than calling ``cli.main`` in-process) exercises the real entry point,
    exit code, stdout/stderr separation and start-up imports, and keeps global state (logging
    configuration, the kernel warm-up flag) from leaking between tests.
    """
    proc_env = dict(os.environ)
    proc_env.pop("NUMBA_DISABLE_JIT", None)
    proc_env.setdefault("PYTHONIOENCODING", "utf-8")
    if env:
        proc_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "netscope", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=proc_env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)

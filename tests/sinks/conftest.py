"""Helpers for the output-safety tests: the CLI run from a chosen directory and umask.

``tests/conftest.py::run_cli`` runs in the repository root; outputs such as ``-`` (which
older code created as a file named ``-`` in the working directory) must be tried somewhere
disposable, and file modes depend on the umask, so these tests set both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 120.0


class CliResult(NamedTuple):
    code: int
    stdout: Any  # str, or bytes with text=False
    stderr: Any


def run_in(
    cwd: Path,
    args: list[str],
    umask: int | None = None,
    stdout: int | None = None,
    text: bool = True,
    stderr: Any = None,
) -> CliResult:
    """``python -m netscope ARGS`` with ``cwd`` as working directory (and ``umask``);
    ``stdout``/``stderr`` replace the pipes (e.g. an open file)."""
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)

    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)

    proc = subprocess.run(
        [sys.executable, "-m", "netscope", *args],
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE if stderr is None else stderr,
        text=text,
        timeout=CLI_TIMEOUT_S,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        preexec_fn=set_umask,  # noqa: PLW1509 (no threads in the test process that matter)
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli_in() -> Callable[..., CliResult]:
    """``cli_in(cwd, args, umask=None)`` (see :func:`run_in`)."""
    return run_in


def need_root() -> None:
    """Skip unless we may create device nodes / mount file systems (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (device nodes)")

"""Shared test fixtures: the public capture corpus, its tshark oracle, and a CLI runner.

The corpus lives outside the repository (``<repo>/../shared/corpus``) because it is shared by
every checkout and by CI, which lays a copy of ``shared/`` beside its clone. Tests that need it
skip cleanly when it is absent (e.g. on a laptop clone), instead of failing on a missing path.

Importing :mod:`netscope.engine` here, before any kernel module, matters: it chooses the numba
cache directory (``NUMBA_CACHE_DIR``), which numba reads once at import time. A test that reached
``netscope.kernels`` first would compile into the source tree and recompile on every run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import netscope.engine  # noqa: F401  (sets NUMBA_CACHE_DIR before numba is imported)
from corpus_support import CORPUS_DIR, corpus_file, corpus_files, expected  # noqa: F401
from tests_support import CliResult, run_cli  # noqa: F401 (re-exported for fixtures)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Generous: the slowest corpus file reads in milliseconds once kernels are cached; this only
# turns a hang (a reader that never advances) into a failure instead of a stuck CI job.
READ_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120.0


@dataclass
class ReadPacket:
    """One packet as a reader delivered it, copied out of the reused batch buffer."""

    ts_ns: int
    data: bytes
    wirelen: int
    linktype: int
    index: int


@dataclass
class ReadResult:
    """Everything a test wants to know after draining a capture reader."""

    packets: list[ReadPacket] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    report: Any = None


def read_capture(path: str | os.PathLike[str], **kwargs: Any) -> ReadResult:
    """Open ``path`` with ``open_capture_file(**kwargs)`` and copy out every packet.

    Packets are copied immediately because a batch is only valid until the next one is
    requested (the reader reuses its buffer): keeping views would test nothing.
    """
    from netscope.sources import open_capture_file

    result = ReadResult()
    reader = open_capture_file(path, **kwargs)
    try:
        for batch in reader.batches():
            result.batch_sizes.append(batch.count)
            for i in range(batch.count):
                result.packets.append(
                    ReadPacket(
                        ts_ns=int(batch.ts_ns[i]),
                        data=bytes(batch.packet_bytes(i)),
                        wirelen=int(batch.wirelens[i]),
                        linktype=int(batch.linktypes[i]),
                        index=batch.first_index + i,
                    )
                )
    finally:
        reader.close()
    result.report = reader.report
    return result


def run_with_timeout(fn: Callable[[], Any], timeout: float = READ_TIMEOUT_S) -> Any:
    """Call ``fn`` in a worker thread; fail the test if it has not returned after ``timeout``.

    A plain call would hang the whole suite if a reader looped forever on a corrupt file; the
    worker thread is a daemon, so a hung one cannot keep the interpreter alive either.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        pytest.fail(f"did not finish within {timeout:.0f} s (reader stuck?)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture(scope="session")
def warm_kernels() -> Iterator[None]:
    """Compile or load every kernel once per session, so the first test is not slower."""
    netscope.engine.warm_up(announce=False)
    yield


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize any test that asks for ``corpus_capture`` over every corpus file.

    Ids are the file names, so ``pytest -k ndpi-reddit`` selects one capture. With no corpus
    present the single parameter is a skip marker rather than an empty (silently green) set.
    """
    if "corpus_capture" in metafunc.fixturenames:
        files = corpus_files()
        if files:
            metafunc.parametrize("corpus_capture", files, ids=[p.name for p in files])
        else:
            metafunc.parametrize(
                "corpus_capture",
                [pytest.param(None, marks=pytest.mark.skip(reason=f"no corpus at {CORPUS_DIR}"))],
                ids=["no-corpus"],
            )


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """``cli(args, timeout=..., env=...)`` runs ``python -m netscope`` (see :func:`run_cli`)."""
    return run_cli


@pytest.fixture
def capture_reader() -> Callable[..., ReadResult]:
    """``capture_reader(path, **open_kwargs)`` drains a reader (see :func:`read_capture`)."""
    return read_capture


@pytest.fixture
def with_timeout() -> Callable[..., Any]:
    """``with_timeout(fn, timeout=...)`` guards a call against hangs (see run_with_timeout)."""
    return run_with_timeout


@pytest.fixture
def oracle() -> Callable[[Path], dict[str, Any]]:
    """``oracle(capture_path)`` loads the tshark expectations of a corpus capture."""
    return expected


@pytest.fixture
def corpus() -> Callable[[str], Path]:
    """``corpus(name)`` is the path of a named corpus capture (skips if the corpus is absent)."""
    return corpus_file


# Skip policy and oracle ledger: the hooks live in tests/skip_policy.py (so its own test can
# load them as a plugin into a separate pytest run); importing them here registers them.
from skip_policy import (  # noqa: E402
    pytest_collection_modifyitems,  # noqa: F401
    pytest_runtest_logreport,  # noqa: F401
    pytest_runtest_setup,  # noqa: F401
    pytest_sessionfinish,  # noqa: F401
    pytest_terminal_summary,  # noqa: F401
)

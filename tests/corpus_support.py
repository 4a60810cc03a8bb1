"""Where the public capture corpus is, and its tshark oracle (``FILE.expected.json``).

A module of its own (not only conftest.py) so test modules can import it by name: several
``conftest.py`` files exist under tests/, and a bare ``from conftest import …`` resolves to
whichever was imported first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from skip_policy import LEDGER

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = Path(
    os.environ.get("NETSCOPE_CORPUS_DIR", str(REPO_ROOT.parent / "shared" / "corpus"))
).resolve()

_CAPTURE_SUFFIXES = (".pcap", ".pcapng")


def corpus_files() -> list[Path]:
    """Every capture in the corpus (sorted by name), or [] if the corpus is not present."""
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p for p in CORPUS_DIR.iterdir() if p.suffix in _CAPTURE_SUFFIXES)


def expected(capture: Path) -> dict[str, Any]:
    """The tshark oracle (``FILE.expected.json``) that sits next to a corpus capture."""
    with open(f"{capture}.expected.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    LEDGER.note("corpus expected.json")
    return data


def corpus_file(name: str) -> Path:
    """Path of one named corpus capture; skips the test if the corpus is not available."""
    path = CORPUS_DIR / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not available at {CORPUS_DIR}")
    return path

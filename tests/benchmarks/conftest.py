"""The benchmark package lives at the repository root (``benchmarks/``), not under ``src``:
make it importable however pytest was started (``pytest`` or ``python -m pytest``).

This directory has no ``__init__.py`` on purpose: as a package it would be named
``benchmarks`` and shadow the real one.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

"""The one place numba options are chosen, so every kernel compiles the same way.

- ``nogil``: pipeline shards are threads; kernels must release the GIL.
- ``cache``: compiled machine code is kept on disk (``NUMBA_CACHE_DIR``, set by
  ``netscope.engine`` to a per-user cache) so only the first run pays for the JIT.
- ``boundscheck`` stays off: kernels check lengths explicitly against captured
  lengths, which is what keeps malformed packets from reading out of bounds.
"""

from __future__ import annotations

import os
from typing import Any


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "netscope", "numba")


# Compiled kernels are cached per user, so a read-only site-packages still works and only
# the first run after install pays for compilation. Set here, before numba is imported,
# so every path into the kernels (CLI, library, tests) shares the one cache.
os.environ.setdefault("NUMBA_CACHE_DIR", _default_cache_dir())

import numba  # noqa: E402

_OPTIONS: dict[str, Any] = {"nogil": True, "cache": True, "error_model": "numpy"}


def kernel(fn: Any) -> Any:
    """Compile ``fn`` as a NetScope kernel (nopython, nogil, cached)."""
    return numba.njit(**_OPTIONS)(fn)


def inline_helper(fn: Any) -> Any:
    """Small helper called from kernels; numba inlines it at the IR level."""
    return numba.njit(inline="always", **_OPTIONS)(fn)

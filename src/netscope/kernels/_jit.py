"""The one place numba options are chosen, so every kernel compiles the same way.

- ``nogil``: pipeline shards are threads; kernels must release the GIL.
- ``cache``: compiled machine code is kept on disk (``NUMBA_CACHE_DIR``, set by
  ``netscope.engine`` to a per-user cache) so only the first run pays for the JIT.
- ``boundscheck`` stays off: kernels check lengths explicitly against captured
  lengths, which is what keeps malformed packets from reading out of bounds.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Any

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Sources whose contents end up inside compiled kernels: the kernels themselves plus the
# constants and the flow-table layout they inline. numba invalidates a cached kernel only
# when the kernel's own file changes, so a changed constant or helper elsewhere would
# otherwise keep running stale machine code.
_KERNEL_INPUTS = ("kernels", "constants.py", os.path.join("flows", "layout.py"))


@functools.cache
def kernel_fingerprint() -> str:
    """Changes whenever the package version or any kernel input file changes (computed
    once per process: the cache directory and every group marker use it)."""
    from netscope._version import __version__

    digest = hashlib.sha1(__version__.encode())
    paths: list[str] = []
    for name in _KERNEL_INPUTS:
        path = os.path.join(_PACKAGE_DIR, name)
        if os.path.isdir(path):
            paths.extend(
                os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".py")
            )
        else:
            paths.append(path)
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        digest.update(f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "netscope", "numba", kernel_fingerprint())


# Compiled kernels are cached per user and per kernel fingerprint, so a read-only
# site-packages still works, only the first run after install (or after a kernel change)
# pays for compilation, and an upgrade never loads another version's machine code. Set
# here, before numba is imported, so every path into the kernels (CLI, library, tests)
# shares the one cache.
os.environ.setdefault("NUMBA_CACHE_DIR", _default_cache_dir())

import numba  # noqa: E402
from numba.core.caching import FunctionCache  # noqa: E402


class LeanLoadCache(FunctionCache):
    """numba's on-disk cache, minus the target refresh on every load.

    numba's ``Cache.load_overload`` calls ``target_context.refresh()`` before loading, which
    on the first load imports and registers every lowering library numba has (arrays, linalg,
    random, typed containers, ... and, through its BLAS probe, SciPy when installed): 0.25 s
    of the 0.75 s of CPU a one-packet run took (docs/performance.md, "Start-up"). A cached
    kernel is machine code: loading it needs the codegen and the C helper symbols (both set
    up when the context is created) and, for kernels that allocate, the NRT's symbols, which
    ``rtsys.initialize`` registers; nothing from the registries. A cache miss still compiles
    through numba's pipeline, which refreshes the context itself.
    """

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        from numba.core.runtime import rtsys

        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
        return None  # the guard swallowed an I/O error: compile instead


# The numba internals LeanLoadCache builds on (numba 0.68's); a numba without them keeps
# its own loading, only slower to start.
_LEAN_OK = all(
    hasattr(FunctionCache, name) for name in ("_load_overload", "_guard_against_spurious_io_errors")
)


def _lean(dispatcher: Any) -> Any:
    """Give a cached dispatcher the lean cache (NUMBA_DISABLE_JIT: a plain function)."""
    if _LEAN_OK and type(getattr(dispatcher, "_cache", None)) is FunctionCache:
        dispatcher._cache = LeanLoadCache(dispatcher.py_func)
    return dispatcher


_OPTIONS: dict[str, Any] = {"nogil": True, "cache": True, "error_model": "numpy"}
# The same without numba's reference-counting runtime (see ``kernel``).
NO_RUNTIME_OPTIONS: dict[str, Any] = {**_OPTIONS, "_nrt": False}


def kernel(fn: Any) -> Any:
    """Compile ``fn`` as a NetScope kernel (nopython, nogil, cached, no NRT).

    Kernels run without numba's reference-counting runtime (NRT). With it, every array
    view, slice and helper call costs an atomic incref/decref pair; on the flow kernel that
    was a third of an existing-flow update and two thirds of an eviction (measured: 26.6 ->
    22.8 ns and 275 -> 82 ns per packet). The price is that a kernel cannot allocate:
    the few that must (an ``np.empty`` scratch array) use ``runtime_kernel``. numba
    refuses to compile an allocation without NRT, so a mistake fails at the first compile.
    """
    return _lean(numba.njit(**NO_RUNTIME_OPTIONS)(fn))


def runtime_kernel(fn: Any) -> Any:
    """A kernel that keeps numba's runtime: it allocates a scratch array or copies slices
    (``out[a:b] = buf[c:d]``, a memmove)."""
    return _lean(numba.njit(**_OPTIONS)(fn))


def inline_helper(fn: Any) -> Any:
    """Small helper called from kernels; numba inlines it at the IR level."""
    return numba.njit(inline="always", **_OPTIONS)(fn)


def large_helper(fn: Any) -> Any:
    """A helper with a large body: inlined by LLVM (``alwaysinline``), not by numba.

    numba's IR inlining deep-copies the callee's IR at every call site, nested helpers
    included, and that copying dominated the anomaly kernel's compile (14.9 s, of which
    LLVM took ~1.5). Compiled once and inlined by LLVM, the same helpers compile in ~5 s.
    LLVM's inlined code ran ~10 % slower than numba's on the hot paths measured, so small,
    hot leaf helpers stay ``inline_helper``s.
    """
    return _lean(numba.njit(forceinline=True, **NO_RUNTIME_OPTIONS)(fn))

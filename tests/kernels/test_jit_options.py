"""Every compiled function in ``netscope.kernels`` is built through ``kernels/_jit.py``.

Pins the compile options the engine's speed and threading depend on, so a kernel added with
a bare ``numba.njit`` (or a helper that quietly reintroduces the reference-counting runtime)
fails here instead of in a benchmark: nogil (pipeline shards are threads), cache (only the
first run compiles), and no NRT except in the few kernels that must allocate or copy slices.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from numba.core.caching import FunctionCache
from numba.core.registry import CPUDispatcher

import netscope.kernels

# The kernels that keep numba's runtime (they allocate or copy array slices).
RUNTIME_KERNELS = {
    "netscope.kernels.flowtable.select_top",
    "netscope.kernels.bpf.filter_batch",
    "netscope.kernels.ring.pack_pcap_records",
    "netscope.kernels.router.route_copy",
}


def _dispatchers() -> list[tuple[str, CPUDispatcher]]:
    found = []
    for info in pkgutil.iter_modules(netscope.kernels.__path__):
        module = importlib.import_module(f"netscope.kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", obj))
    return found


DISPATCHERS = _dispatchers()


def test_kernels_are_found() -> None:
    names = {name for name, _ in DISPATCHERS}
    assert "netscope.kernels.decode.decode_batch" in names
    assert "netscope.kernels.flowtable.observe" in names
    assert names >= RUNTIME_KERNELS


@pytest.mark.parametrize("name,dispatcher", DISPATCHERS, ids=[n for n, _ in DISPATCHERS])
def test_compile_options(name: str, dispatcher: CPUDispatcher) -> None:
    options = dispatcher.targetoptions
    assert options.get("nogil") is True, "kernels must release the GIL"
    # FunctionCache or its LeanLoadCache subclass (entry points: see tests/test_startup.py)
    assert isinstance(dispatcher._cache, FunctionCache), "kernels are cached"
    if options.get("inline") == "always":
        return  # IR-inlined helper: compiled as part of its caller, with the caller's options
    if name in RUNTIME_KERNELS:
        assert options.get("_nrt", True) is True
    else:
        assert options.get("_nrt") is False, f"{name} would pay NRT reference counting"

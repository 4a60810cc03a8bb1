"""A module imported at its first attribute access, for kernel modules a run may not need.

Importing a kernel module runs numba's decorators over every function in it (and the module
itself can be large): a run that never calls those kernels should not pay for them. Code
that keeps a module-level alias (``K.detect(...)``) gets the same spelling through a
:class:`LazyModule`; type checkers see the real module via ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``; imports it on the first attribute lookup."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded"
        return f"<LazyModule {self._name!r} ({state})>"

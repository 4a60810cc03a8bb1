"""NetScope: packet capture and network analysis at native speed.

Importing ``netscope`` is cheap (no numba); the engine compiles lazily the first
time a batch is decoded.
"""

from netscope._version import __version__

__all__ = ["__version__"]

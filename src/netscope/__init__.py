"""NetScope: packet capture and network analysis at native speed.

Importing ``netscope`` is cheap (no numba): the library API below is loaded on
first use, and the engine compiles (or loads its cache) the first time it runs.

- ``netscope.analyze(path, **options)`` → AnalysisResult (flows, counters); ``path`` may be
  a list of files, directories and globs read as one capture
- ``netscope.analyze_many(paths, client=None)`` → the same result, computed on a Dask cluster
- ``netscope.open_capture(path)`` → source whose ``.batches()`` yields PacketBatch
- ``netscope.decode_packet(data, linktype)`` → readable per-layer decode
"""

from typing import Any

from netscope._version import __version__

__all__ = ["__version__", "analyze", "analyze_many", "open_capture", "decode_packet"]


def __getattr__(name: str) -> Any:
    if name in ("analyze", "analyze_many", "open_capture"):
        from netscope import api

        return getattr(api, name)
    if name == "decode_packet":
        from netscope.decode import decode_packet

        return decode_packet
    raise AttributeError(f"module 'netscope' has no attribute {name!r}")

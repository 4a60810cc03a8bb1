"""Flow addresses as an Arrow string column, without a per-flow Python loop.

One compiled loop (``kernels.addresses``) writes the text of every row straight into the
Arrow buffers; the text equals ``ipaddress``'s, which the JSON export uses.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

import numpy as np


@functools.cache
def _mapped_dotted() -> bool:
    """Whether this Python prints IPv4-mapped IPv6 addresses dotted (3.13+)."""
    return str(ipaddress.IPv6Address("::ffff:1.2.3.4")) == "::ffff:1.2.3.4"


def _as_i64(a: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(a)
    return arr.view(np.int64) if arr.dtype == np.uint64 else arr.astype(np.int64)


def address_text(version: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> Any:
    """``pyarrow.string()`` array of the addresses stored as (hi, lo) halves."""
    import pyarrow as pa

    from netscope.kernels.addresses import IPV4_MAX, IPV6_MAX, write_address_text

    n = int(version.shape[0])
    n6 = int(np.count_nonzero(version != 4))
    offsets = np.zeros(n + 1, dtype=np.int32)
    data = np.zeros(IPV4_MAX * (n - n6) + IPV6_MAX * n6, dtype=np.uint8)
    write_address_text(
        np.ascontiguousarray(version, dtype=np.uint8),
        _as_i64(hi),
        _as_i64(lo),
        _mapped_dotted(),
        np.zeros(8, dtype=np.int64),
        offsets,
        data,
    )
    used = int(offsets[n])
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data[:used])]
    )

"""Flow addresses as an Arrow string column, without a per-flow Python loop.

IPv4 text comes from a compiled loop; IPv6 text is formatted by ``ipaddress`` once per
distinct address (hosts repeat across flows), so the text equals the JSON export's.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np


def address_text(version: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> Any:
    """``pyarrow.string()`` array of the addresses stored as (hi, lo) halves."""
    import pyarrow as pa

    from netscope.kernels.addresses import write_address_text

    n = int(version.shape[0])
    is6 = version != 4
    v6_index = np.zeros(n, dtype=np.int64)
    v6_offsets = np.zeros(1, dtype=np.int64)
    v6_data = np.zeros(0, dtype=np.uint8)
    v6_bytes = 0
    if is6.any():
        pairs = np.stack([hi[is6], lo[is6]], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        texts = [
            str(ipaddress.IPv6Address((int(h) << 64) | int(v))).encode("ascii")
            for h, v in uniq.tolist()
        ]
        lengths = np.array([len(t) for t in texts], dtype=np.int64)
        v6_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        v6_data = np.frombuffer(b"".join(texts), dtype=np.uint8)
        inverse = inverse.reshape(-1)
        v6_index[is6] = inverse
        v6_bytes = int(lengths[inverse].sum())
    offsets = np.zeros(n + 1, dtype=np.int32)
    data = np.zeros(15 * int(n - is6.sum()) + v6_bytes, dtype=np.uint8)
    write_address_text(
        np.ascontiguousarray(version, dtype=np.uint8),
        np.ascontiguousarray(lo).view(np.int64) if lo.dtype == np.uint64 else lo.astype(np.int64),
        v6_index,
        v6_offsets,
        v6_data,
        offsets,
        data,
    )
    used = int(offsets[n])
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data[:used])]
    )

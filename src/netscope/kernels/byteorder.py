"""Fixed-width integer reads from a uint8 buffer (big and little endian).

Callers guarantee ``off + width <= len(buf)``; these helpers do no bounds checks.
"""

from __future__ import annotations

import numpy as np

from netscope.kernels._jit import inline_helper


@inline_helper
def u16be(buf, off):  # type: ignore[no-untyped-def]
    return (np.int64(buf[off]) << 8) | np.int64(buf[off + 1])


@inline_helper
def u16le(buf, off):  # type: ignore[no-untyped-def]
    return (np.int64(buf[off + 1]) << 8) | np.int64(buf[off])


@inline_helper
def u32be(buf, off):  # type: ignore[no-untyped-def]
    return (
        (np.int64(buf[off]) << 24)
        | (np.int64(buf[off + 1]) << 16)
        | (np.int64(buf[off + 2]) << 8)
        | np.int64(buf[off + 3])
    )


@inline_helper
def u32le(buf, off):  # type: ignore[no-untyped-def]
    return (
        (np.int64(buf[off + 3]) << 24)
        | (np.int64(buf[off + 2]) << 16)
        | (np.int64(buf[off + 1]) << 8)
        | np.int64(buf[off])
    )


@inline_helper
def u32(buf, off, big_endian):  # type: ignore[no-untyped-def]
    if big_endian:
        return u32be(buf, off)
    return u32le(buf, off)


@inline_helper
def u16(buf, off, big_endian):  # type: ignore[no-untyped-def]
    if big_endian:
        return u16be(buf, off)
    return u16le(buf, off)


@inline_helper
def u64be(buf, off):  # type: ignore[no-untyped-def]
    hi = np.uint64(u32be(buf, off))
    lo = np.uint64(u32be(buf, off + 4))
    return (hi << np.uint64(32)) | lo

"""The unaligned-load helpers read the same values as byte-wise reads, at every offset.

They compile to single unaligned loads on contiguous buffers and fall back to byte reads on
strided views; both paths and the interpreted bodies must agree.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from netscope.kernels.byteorder import u16, u16be, u16le, u32, u32be, u32le, u32ne, u64be


@numba.njit
def _read_all(buf, off):  # type: ignore[no-untyped-def]
    return (
        u16be(buf, off),
        u16le(buf, off),
        u32be(buf, off),
        u32le(buf, off),
        u32ne(buf, off),
        u64be(buf, off),
        u16(buf, off, True),
        u16(buf, off, False),
        u32(buf, off, True),
        u32(buf, off, False),
    )


def _expected(raw: bytes, off: int) -> tuple[int, ...]:
    def be(n: int) -> int:
        return int.from_bytes(raw[off : off + n], "big")

    def le(n: int) -> int:
        return int.from_bytes(raw[off : off + n], "little")

    native = le(4) if np.little_endian else be(4)
    return (be(2), le(2), be(4), le(4), native, be(8), be(2), le(2), be(4), le(4))


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_compiled_reads_match_bytes_at_every_alignment(layout: str) -> None:
    raw = bytes(np.random.default_rng(7).integers(0, 256, 40, dtype=np.uint8))
    if layout == "contiguous":
        buf = np.frombuffer(raw, dtype=np.uint8).copy()
    else:
        doubled = np.zeros(2 * len(raw), dtype=np.uint8)
        doubled[::2] = np.frombuffer(raw, dtype=np.uint8)
        buf = doubled[::2]
        assert not buf.flags.c_contiguous
    for off in range(0, len(raw) - 8):
        assert tuple(int(v) for v in _read_all(buf, off)) == _expected(raw, off)


def test_interpreted_bodies_match_bytes() -> None:
    raw = bytes(range(200, 240))
    buf = np.frombuffer(raw, dtype=np.uint8)
    for off in (0, 1, 3, 7):
        got = (
            u16be(buf, off),
            u16le(buf, off),
            u32be(buf, off),
            u32le(buf, off),
            u32ne(buf, off),
            u64be(buf, off),
            u16(buf, off, True),
            u16(buf, off, False),
            u32(buf, off, True),
            u32(buf, off, False),
        )
        assert got == _expected(raw, off)

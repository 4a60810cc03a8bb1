"""The prefetch hint never changes results and never faults, even far past the buffer."""

from __future__ import annotations

import numba
import numpy as np

from netscope.kernels.prefetch import prefetch


@numba.njit
def _sum_with_prefetch(buf, ahead):  # type: ignore[no-untyped-def]
    total = 0
    for i in range(buf.shape[0]):
        prefetch(buf, i + ahead)
        total += buf[i]
    return total


def test_prefetch_is_only_a_hint() -> None:
    buf = np.arange(1000, dtype=np.int64).astype(np.uint8)
    expected = int(buf.astype(np.int64).sum())
    for ahead in (0, 64, 2048, 1 << 30, -(1 << 20)):
        assert _sum_with_prefetch(buf, ahead) == expected

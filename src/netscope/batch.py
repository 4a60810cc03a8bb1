"""The columnar packet batch every source produces and every kernel consumes.

A batch is one contiguous byte buffer plus per-packet arrays, so the hot path never
creates a Python object per packet (SPEC §2). Sources own and reuse the buffer; a
consumer that needs bytes beyond the batch's lifetime copies them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@dataclass
class PacketBatch:
    """``count`` packets stored in ``buf``.

    Arrays hold at least ``count`` entries (they may be longer: sources reuse
    pre-allocated arrays); only ``[:count]`` is meaningful.

    - ``buf``: uint8 bytes; packet ``i`` is ``buf[offsets[i] : offsets[i] + caplens[i]]``.
    - ``offsets``: int64 start of each packet's data in ``buf``.
    - ``caplens``: int32 captured length (bytes present in ``buf``).
    - ``wirelens``: int32 original length on the wire (>= caplen normally).
    - ``ts_ns``: int64 timestamp, nanoseconds since the Unix epoch (UTC).
    - ``linktypes``: int32 LINKTYPE_* of each packet (pcapng mixes interfaces).
    - ``first_index``: 1-based global index of packet 0 within its source.
    """

    buf: U8
    offsets: I64
    caplens: I32
    wirelens: I32
    ts_ns: I64
    linktypes: I32
    count: int
    first_index: int = 1

    def packet_bytes(self, i: int) -> memoryview:
        """Zero-copy view of packet ``i`` (valid while the batch's buffer is)."""
        start = int(self.offsets[i])
        return memoryview(self.buf.data)[start : start + int(self.caplens[i])]

    def sliced(self, count: int) -> PacketBatch:
        """The first ``count`` packets of this batch (views, no copies)."""
        count = min(count, self.count)
        return PacketBatch(
            self.buf,
            self.offsets[:count],
            self.caplens[:count],
            self.wirelens[:count],
            self.ts_ns[:count],
            self.linktypes[:count],
            count,
            self.first_index,
        )

    def window(self, start: int, stop: int) -> PacketBatch:
        """Packets ``[start, stop)`` of this batch (views, no copies; indices stay global)."""
        start = max(0, min(start, self.count))
        stop = max(start, min(stop, self.count))
        return PacketBatch(
            self.buf,
            self.offsets[start:stop],
            self.caplens[start:stop],
            self.wirelens[start:stop],
            self.ts_ns[start:stop],
            self.linktypes[start:stop],
            stop - start,
            self.first_index + start,
        )


def batch_from_packets(
    packets: list[bytes],
    ts_ns: list[int] | None = None,
    linktype: int = 1,
    wirelens: list[int] | None = None,
    first_index: int = 1,
) -> PacketBatch:
    """Build a batch from Python byte strings (tests, benchmarks and small tools)."""
    n = len(packets)
    lengths = np.fromiter((len(p) for p in packets), dtype=np.int32, count=n)
    offsets = np.zeros(n, dtype=np.int64)
    if n:
        offsets[1:] = np.cumsum(lengths[:-1], dtype=np.int64)
    buf = np.frombuffer(b"".join(packets), dtype=np.uint8).copy()
    if buf.size == 0:
        buf = np.zeros(1, dtype=np.uint8)
    ts = np.asarray(ts_ns if ts_ns is not None else range(n), dtype=np.int64)
    wl = np.asarray(wirelens, dtype=np.int32) if wirelens is not None else lengths.copy()
    return PacketBatch(
        buf=buf,
        offsets=offsets,
        caplens=lengths,
        wirelens=wl,
        ts_ns=ts,
        linktypes=np.full(n, linktype, dtype=np.int32),
        count=n,
        first_index=first_index,
    )

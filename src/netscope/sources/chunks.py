"""Read buffers filled with ``readinto`` in large chunks, optionally by a reader thread.

SPEC §3: streaming 16 MB chunks into reused buffers beats walking an mmap
(DRAM-latency bound) and leaves each chunk in cache for the kernels. Batches are
views into the current buffer, so a buffer is only reused once the consumer has
asked for the next batch.

With ``prefetch`` (the default for files) a reader thread fills the next buffer
while the kernels work on the current one: ``readinto`` releases the GIL and the
kernels are ``nogil``, so on two cores reading and computing overlap. Each buffer
keeps ``RESERVE`` bytes free at its front; the unconsumed tail of the previous
buffer (a record cut by the chunk boundary) is copied there, which is the only
copy besides the read itself.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, BinaryIO, cast

import numpy as np

RESERVE = 1 << 18  # room for a record cut by a chunk boundary (larger ones take a slow path)
PREFETCH_BUFFERS = 3  # one being decoded, up to two read ahead


def _read_full(fileobj: BinaryIO, view: memoryview) -> int:
    """readinto until ``view`` is full or the file ends; returns bytes read."""
    got_total = 0
    reader = cast(Any, fileobj)
    while got_total < len(view):
        got = reader.readinto(view[got_total:])
        if not got:
            break
        got_total += got
    return got_total


class ChunkBuffer:
    """Unconsumed bytes of a file live in ``buf[pos:end]``; ``refill`` brings more."""

    def __init__(self, fileobj: BinaryIO, capacity: int, prefetch: bool = True) -> None:
        self._file = fileobj
        self._capacity = max(capacity, 64)
        self.buf = np.empty(RESERVE + self._capacity, dtype=np.uint8)
        self.pos = RESERVE
        self.end = RESERVE
        self.eof = False
        # file offset of buf[0] (so file_offset(pos) = bytes_consumed_before + pos)
        self.bytes_consumed_before = -RESERVE
        self._prefetch = prefetch
        self._thread: threading.Thread | None = None
        if prefetch:
            self._free: queue.Queue[np.ndarray | None] = queue.Queue()
            self._filled: queue.Queue[tuple[np.ndarray, int, bool] | BaseException] = queue.Queue()
            self._stop = threading.Event()
            for _ in range(PREFETCH_BUFFERS - 1):
                self._free.put(np.empty(RESERVE + self._capacity, dtype=np.uint8))
            self._thread = threading.Thread(
                target=self._reader, name="netscope-reader", daemon=True
            )
            self._thread.start()

    def set_file_offset(self, offset: int) -> None:
        """Declare the file offset of the first byte ``refill`` will deliver."""
        self.bytes_consumed_before = offset - self.end

    @property
    def available(self) -> int:
        return self.end - self.pos

    def file_offset(self, pos: int) -> int:
        """File offset of buffer position ``pos`` (for error messages)."""
        return self.bytes_consumed_before + pos

    # ---- reader thread ------------------------------------------------------
    def _reader(self) -> None:
        try:
            while not self._stop.is_set():
                buf = self._free.get()
                if buf is None or self._stop.is_set():
                    return
                n = _read_full(self._file, memoryview(buf.data)[RESERVE:])
                last = n < self._capacity
                self._filled.put((buf, n, last))
                if last:
                    return
        except BaseException as exc:  # reported to the consumer, which raises it
            self._filled.put(exc)

    def _next_chunk(self) -> tuple[np.ndarray, int, bool]:
        """The next filled buffer (blocking) — from the thread or read right here."""
        if not self._prefetch:
            spare = np.empty(RESERVE + self._capacity, dtype=np.uint8)
            n = _read_full(self._file, memoryview(spare.data)[RESERVE:])
            return spare, n, n < self._capacity
        item = self._filled.get()
        if isinstance(item, BaseException):
            raise item
        return item

    # ---- consumer -----------------------------------------------------------
    def refill(self, need: int = 0) -> bool:
        """Bring in the next chunk behind the unconsumed bytes.

        ``need`` is how many bytes from ``pos`` the caller wants (a whole record);
        chunks are appended until that many are available or the file ends.
        Returns False when nothing more could be read (end of file).
        """
        got_any = False
        while not self.eof:
            chunk, n, last = self._next_chunk()
            self.eof = last
            got_any = got_any or n > 0
            self._append(chunk, n)
            if self.available >= max(need, 1):
                break
        return got_any

    def _append(self, chunk: np.ndarray, n: int) -> None:
        rest = self.end - self.pos
        new_file_offset = self.file_offset(self.end)  # file offset of chunk[RESERVE]
        old = self.buf
        if rest <= RESERVE:
            chunk[RESERVE - rest : RESERVE] = old[self.pos : self.end]
            self.buf = chunk
            self.pos = RESERVE - rest
            self.end = RESERVE + n
            self._recycle(old)
        else:
            # A record longer than RESERVE straddles the boundary: merge into a private
            # buffer big enough for both (rare: jumbo records, huge pcapng blocks).
            merged = np.empty(RESERVE + rest + n, dtype=np.uint8)
            merged[RESERVE : RESERVE + rest] = old[self.pos : self.end]
            merged[RESERVE + rest :] = chunk[RESERVE : RESERVE + n]
            self.buf = merged
            self.pos = RESERVE
            self.end = RESERVE + rest + n
            self._recycle(chunk)
            if old.shape[0] == RESERVE + self._capacity:
                self._recycle(old)
        self.bytes_consumed_before = new_file_offset - (self.end - n)

    def _recycle(self, buf: np.ndarray) -> None:
        if self._prefetch and buf.shape[0] == RESERVE + self._capacity:
            self._free.put(buf)

    def close(self) -> None:
        """Stop the reader thread (before the file is closed under it)."""
        if self._thread is not None:
            self._stop.set()
            self._free.put(None)
            self._thread.join(timeout=5.0)
            self._thread = None

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

Pipes, FIFOs and other non-regular files (``--read-pcap -``) are read as streams: nothing
seeks, a short read is not the end (only a read of 0 bytes is), and a chunk is handed over
as soon as the writer has nothing more ready rather than when 16 MB have arrived, so
``tcpdump -w - | netscope --read-pcap -`` shows packets as they come. The reader thread
waits for data with ``poll`` in short slices so ``close`` never waits on a silent writer.
"""

from __future__ import annotations

import os
import queue
import select
import stat
import threading
from typing import Any, BinaryIO, cast

import numpy as np

from netscope import signals

RESERVE = 1 << 18  # room for a record cut by a chunk boundary (larger ones take a slow path)
PREFETCH_BUFFERS = 3  # one being decoded, up to two read ahead


STREAM_POLL_S = 0.2  # how often a reader waiting on a silent pipe checks for close()


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


def read_exact(fileobj: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of file (a pipe's ``read`` may return less)."""
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        part = fileobj.read(remaining)
        if part is None:  # a non-blocking descriptor with nothing ready yet
            _wait_readable(fileobj.fileno(), None)
            continue
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def is_stream(fileobj: BinaryIO) -> bool:
    """True for anything but a regular file: pipes, FIFOs, sockets, character devices."""
    try:
        return not stat.S_ISREG(os.fstat(fileobj.fileno()).st_mode)
    except (OSError, AttributeError, ValueError):  # no descriptor (BytesIO): behaves as a file
        return False


def _poll(fd: int, timeout_s: float) -> bool:
    """True if ``fd`` has data, end of file or an error to report (``poll``, unlike
    ``select``, has no limit on descriptor numbers)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(int(timeout_s * 1000)))


def _readable_now(fd: int) -> bool:
    return _poll(fd, 0)


def _wait_readable(fd: int, stop: threading.Event | None) -> bool:
    """Block until ``fd`` has data or end of file; False if ``stop`` was set meanwhile."""
    while not _poll(fd, STREAM_POLL_S):
        if stop is not None and stop.is_set():
            return False
    return True


def _read_available(
    fileobj: BinaryIO, view: memoryview, stop: threading.Event | None
) -> tuple[int, bool]:
    """Stream read: wait for data, then take what is ready (up to ``len(view)``).

    Returns ``(bytes read, end of stream)``. Keeps reading while more is ready, so a fast
    writer still gives large chunks; stops at the first moment nothing is pending.
    """
    reader = cast(Any, fileobj)
    fd = fileobj.fileno()
    if not _wait_readable(fd, stop):
        return 0, False
    total = 0
    while total < len(view):
        got = reader.readinto(view[total:])
        if got is None:  # a non-blocking descriptor with nothing ready after all
            if total or not _wait_readable(fd, stop):
                break
            continue
        if got == 0:
            return total, True
        total += got
        if not _readable_now(fd):
            break
    return total, False


class ChunkBuffer:
    """Unconsumed bytes of a file live in ``buf[pos:end]``; ``refill`` brings more."""

    def __init__(
        self, fileobj: BinaryIO, capacity: int, prefetch: bool = True, head: bytes = b""
    ) -> None:
        """``head``: bytes already read from the start of ``fileobj`` (the magic number,
        read to choose the format), served first so a pipe never has to seek back."""
        self._file = fileobj
        self._capacity = max(capacity, 64, len(head))
        self.stream = is_stream(fileobj)
        self.buf = np.empty(RESERVE + self._capacity, dtype=np.uint8)
        self.pos = RESERVE
        self.end = RESERVE + len(head)
        self.buf[RESERVE : self.end] = np.frombuffer(head, dtype=np.uint8)
        self.eof = False
        # file offset of buf[0] (so file_offset(pos) = bytes_consumed_before + pos)
        self.bytes_consumed_before = -RESERVE
        self._prefetch = prefetch
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if prefetch:
            self._free: queue.Queue[np.ndarray | None] = queue.Queue()
            self._filled: queue.Queue[tuple[np.ndarray, int, bool] | BaseException] = queue.Queue()
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
                n, last = self._fill(buf)
                if self._stop.is_set():
                    return
                self._filled.put((buf, n, last))
                if last:
                    return
        except BaseException as exc:  # reported to the consumer, which raises it
            self._filled.put(exc)

    def _fill(self, buf: np.ndarray) -> tuple[int, bool]:
        """Read into ``buf[RESERVE:]``: ``(bytes read, end of file)``."""
        view = memoryview(buf.data)[RESERVE:]
        if self.stream:
            return _read_available(self._file, view, self._stop)
        n = _read_full(self._file, view)
        return n, n < self._capacity

    def _next_chunk(self) -> tuple[np.ndarray, int, bool]:
        """The next filled buffer (blocking) — from the thread or read right here."""
        if not self._prefetch:
            spare = np.empty(RESERVE + self._capacity, dtype=np.uint8)
            n, last = self._fill(spare)
            return spare, n, last
        while True:
            try:
                item = self._filled.get(timeout=STREAM_POLL_S if self.stream else None)
                break
            except queue.Empty:
                # a pipe that stays open and silent (``tcpdump -w - | netscope -r -``): a
                # stop request (Ctrl-C, SIGTERM: netscope.signals) ends the input here, as
                # end of file would, so the run still summarises and writes its exports
                if signals.stop_requested():
                    return np.empty(RESERVE, dtype=np.uint8), 0, True
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
        self._stop.set()
        if self._thread is not None:
            self._free.put(None)
            self._thread.join(timeout=5.0)
            self._thread = None

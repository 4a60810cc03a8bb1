"""``--write-pcap``: packets to classic pcap files, optionally rotated by size.

Format: classic pcap, little-endian, with the capture's link type and snaplen in the file
header. Timestamps are **microseconds** (magic ``0xa1b2c3d4``), what libpcap writes by
default and every pcap reader, old or new, understands. With ``--write-pcap-nanos``
(``output.write_pcap_nanos``) and an input that has nanosecond precision (a nanosecond
pcap, a pcapng interface finer than 1 µs, a live capture) the file uses the nanosecond
magic ``0xa1b23c4d`` instead, so rewriting such a capture loses nothing; tcpdump, tshark
and libpcap >= 1.5 read those. Microsecond records truncate the sub-microsecond digits,
as libpcap does.

Writing is batch-at-a-time: a compiled kernel packs a whole batch into pcap records in an
output buffer (record headers and packet bytes, no per-packet Python), and the buffer goes
to the file in large ``write`` calls when it fills, on :meth:`PcapSink.maybe_flush` (called
by the runners at least once per second of wall time) and at :meth:`PcapSink.close`.

Where the bytes go: a single (unrotated) output is opened by
:func:`netscope.sinks.targets.open_in_place_fd`: ``-`` and devices/FIFOs are written
through, a regular file is created ``0644`` under the umask or truncated in place.

Rotation (``--write-pcap-rotate-mb MB --write-pcap-max-files N``, SPEC §4): packets go to
segments ``NAME.000001.EXT``, … (naming in :mod:`netscope.sinks.segments`). Numbering
continues after the highest segment of the series already on disk. A segment is closed
before the packet that would take it past ``MB`` MiB (``MB × 1 048 576`` bytes, as the
original; a single packet larger than that gets a segment of its own). Existing segments
count towards ``N``: when a segment opens and the series holds more than ``N``, its oldest
segments are deleted. Files of other names are never touched; the unsuffixed ``PATH`` is
never created.

Any failure to open, write or flush raises :class:`~netscope.errors.OutputError` (exit 1):
the runners stop the capture, print the summary and then the error, so a full disk never
silently loses packets.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from pathlib import Path

import numpy as np

from netscope.batch import PacketBatch
from netscope.errors import OutputError
from netscope.sinks import segments
from netscope.sinks.targets import NEW_FILE_MODE, open_in_place_fd

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
FILE_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
MIB = 1024 * 1024
BUFFER_BYTES = 4 * 1024 * 1024
FLUSH_INTERVAL_S = 1.0


def file_header(linktype: int, snaplen: int, nanos: bool = False) -> bytes:
    """The 24-byte pcap global header (version 2.4, little-endian; µs or ns magic)."""
    magic = MAGIC_NS if nanos else MAGIC_US
    return struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def microsecond_timestamps(ts_ns: np.ndarray) -> np.ndarray:
    """``ts_ns`` with the fraction of each second cut to whole microseconds, in the
    layout the packing kernel writes (``seconds × 10⁹ + fraction``): its records then
    carry microseconds. Vectorised: one pass per batch, no per-packet Python."""
    sec = ts_ns // 1_000_000_000
    frac = ts_ns - sec * 1_000_000_000
    result: np.ndarray = sec * 1_000_000_000 + frac // 1000
    return result


def source_has_nanoseconds(source: object) -> bool:
    """Whether a capture-file reader's timestamps are finer than a microsecond: a
    nanosecond pcap, or a pcapng with an interface whose ``if_tsresol`` is finer than 1 µs.
    """
    header = getattr(source, "header", None)
    if header is not None and getattr(header, "nanosecond", None) is not None:
        return bool(header.nanosecond)
    interfaces = getattr(source, "interfaces", None) or ()
    return any(int(getattr(i, "units_per_second", 0)) > 1_000_000 for i in interfaces)


class PcapSink:
    """Writes batches to ``path`` (or its rotated segments)."""

    def __init__(
        self,
        path: Path,
        linktype: int,
        snaplen: int,
        rotate_mb: int = 0,
        max_files: int = 0,
        buffer_bytes: int = BUFFER_BYTES,
        nanos: bool = False,
    ) -> None:
        self.path = Path(path)
        self.linktype = linktype
        self.snaplen = snaplen
        self.nanos = nanos
        self.rotate_bytes = rotate_mb * MIB if rotate_mb > 0 else 0
        self.max_files = max_files
        self.packets = 0
        self.segments = 0  # segments this run opened
        # Rotation: indices of the series on disk (an earlier run's, then ours), oldest first.
        self._series: list[int] = segments.existing_series(self.path) if self.rotate_bytes else []
        self._first_index = (self._series[-1] if self._series else 0) + 1
        self._out = np.empty(max(buffer_bytes, 1 << 16), dtype=np.uint8)
        self._pending = 0  # bytes of _out not yet written
        self._seg_bytes = 0  # size of the current segment, pending bytes included
        self._seg_packets = 0
        self._fd = -1
        self._current = ""
        self._last_flush = time.monotonic()
        self._failed = False
        self._open_next()

    # ---------------------------------------------------------------- files

    @property
    def current_file(self) -> str:
        return self._current

    def _fail(self, action: str, exc: OSError) -> OutputError:
        self._failed = True
        reason = exc.strerror or str(exc)
        return OutputError(f"cannot {action} pcap {self._current}: {reason}")

    def _open_next(self) -> None:
        """Open the next segment (or the single file) and queue its header."""
        if self._fd >= 0:
            self._write_pending()
            self._close_fd()
        if self.rotate_bytes:
            index = self._first_index + self.segments
            self.segments += 1
            self._current = segments.segment_path(self.path, index)
            try:
                # O_EXCL: numbering starts past every segment on disk, so an existing file
                # here appeared since (another writer): never overwrite it.
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                self._fd = os.open(self._current, flags, NEW_FILE_MODE)
            except OSError as exc:
                raise self._fail("create", exc) from None
            self._series.append(index)
            self._delete_oldest()
        else:
            self.segments = 1
            self._current = os.fspath(self.path)
            try:
                self._fd = open_in_place_fd(self._current)
            except OSError as exc:
                raise self._fail("create", exc) from None
        header = np.frombuffer(file_header(self.linktype, self.snaplen, self.nanos), np.uint8)
        self._out[self._pending : self._pending + FILE_HEADER_LEN] = header
        self._pending += FILE_HEADER_LEN
        self._seg_bytes = FILE_HEADER_LEN
        self._seg_packets = 0

    def _delete_oldest(self) -> None:
        """Keep at most ``max_files`` segments of the series: delete its oldest."""
        while len(self._series) > self.max_files:
            old = segments.segment_path(self.path, self._series.pop(0))
            try:
                os.unlink(old)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise OutputError(f"cannot delete old pcap segment {old}: {exc.strerror}") from None

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError as exc:
                raise self._fail("close", exc) from None

    def _write_pending(self) -> None:
        """Hand the buffered bytes to the OS (loops over short writes)."""
        view = memoryview(self._out.data)[: self._pending]
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            raise self._fail("write", exc) from None
        self._pending = 0

    # ---------------------------------------------------------------- packets

    def write(self, batch: PacketBatch) -> None:
        """Append every packet of ``batch`` (rotating segments as they fill)."""
        from netscope.kernels.ring import pack_pcap_records

        if self._failed:
            return
        n = batch.count
        i = 0
        cap = len(self._out)
        ts = batch.ts_ns if self.nanos else microsecond_timestamps(batch.ts_ns[:n])
        while i < n:
            limit = cap
            if self.rotate_bytes:
                limit = min(cap, self._pending + (self.rotate_bytes - self._seg_bytes))
            packed, pos = pack_pcap_records(
                batch.buf, batch.offsets, batch.caplens, batch.wirelens, ts,
                i, n, self._out, self._pending, max(limit, self._pending),
            )  # fmt: skip
            self._seg_bytes += pos - self._pending
            self._seg_packets += packed
            self.packets += packed
            self._pending = pos
            i += packed
            if i >= n:
                break
            record = RECORD_HEADER_LEN + int(batch.caplens[i])
            if self.rotate_bytes and self._seg_bytes + record > self.rotate_bytes:
                if self._seg_packets:
                    self._open_next()
                    continue
                # a lone packet larger than a whole segment: it gets one to itself
                if self._pending + record <= cap:
                    self._force_one(batch, ts, i)
                    i += 1
                    continue
            self._write_pending()
            if record + FILE_HEADER_LEN > cap:
                self._out = np.empty(record + FILE_HEADER_LEN, dtype=np.uint8)
                cap = len(self._out)

    def _force_one(self, batch: PacketBatch, ts: np.ndarray, i: int) -> None:
        from netscope.kernels.ring import pack_pcap_records

        limit = self._pending + RECORD_HEADER_LEN + int(batch.caplens[i])
        packed, pos = pack_pcap_records(
            batch.buf, batch.offsets, batch.caplens, batch.wirelens, ts,
            i, i + 1, self._out, self._pending, limit,
        )  # fmt: skip
        self._seg_bytes += pos - self._pending
        self._seg_packets += packed
        self.packets += packed
        self._pending = pos

    def flush(self) -> None:
        """Write everything buffered so far to the file."""
        if self._failed or self._fd < 0:
            return
        self._write_pending()
        self._last_flush = time.monotonic()

    def maybe_flush(self, interval_s: float = FLUSH_INTERVAL_S) -> None:
        """Flush if ``interval_s`` of wall time passed since the last flush."""
        if time.monotonic() - self._last_flush >= interval_s:
            self.flush()

    def close(self) -> None:
        """Final flush and close; OutputError if the data could not be written."""
        if self._fd < 0:
            return
        try:
            if not self._failed:
                self._write_pending()
        finally:
            try:
                self._close_fd()
            except OutputError:
                if not self._failed:
                    raise

    def abandon(self) -> None:
        """Close without flushing (after a failure has already been reported)."""
        self._failed = True
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def summary(self) -> str:
        """What the summary's ``Pcap written`` row says."""
        if not self.rotate_bytes:
            return f"{self.path} ({self.packets} packets)"
        first = segments.segment_path(self.path, self._first_index)
        noun = "segment" if self.segments == 1 else "segments"
        return (
            f"{first} .. {os.path.basename(self._current)} "
            f"({self.packets} packets, {self.segments} {noun}, "
            f"{len(self._series)} of the series kept)"
        )

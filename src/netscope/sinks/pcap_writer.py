"""``--write-pcap``: packets to classic pcap files, optionally rotated by size.

Format: classic pcap, little-endian, **nanosecond** timestamps (magic ``0xa1b23c4d``), with
the capture's link type and snaplen in the file header. Nanoseconds because every source
we read (AF_PACKET, pcapng, ns pcap) can carry them: rewriting a capture must not lose
precision. tcpdump, tshark and libpcap >= 1.5 read these files.

Writing is batch-at-a-time: a compiled kernel packs a whole batch into pcap records in an
output buffer (record headers and packet bytes, no per-packet Python), and the buffer goes
to the file in large ``write`` calls when it fills, on :meth:`PcapSink.maybe_flush` (called
by the runners at least once per second of wall time) and at :meth:`PcapSink.close`.

Rotation (``--write-pcap-rotate-mb MB --write-pcap-max-files N``, SPEC §4): packets go to
segments ``NAME.000001.pcap``, ``NAME.000002.pcap``, … where ``NAME`` is the given path
with a final ``.pcap`` removed (``out.pcap`` → ``out.000001.pcap``; ``cap.dump`` →
``cap.dump.000001.pcap``). A segment is closed before the packet that would take it past
``MB × 1 000 000`` bytes (a single packet larger than that gets a segment of its own).
When segment ``k`` opens, segment ``k − N`` is deleted, so exactly the ``N`` newest
segments remain. The unsuffixed ``PATH`` is never created.

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

MAGIC_NS = 0xA1B23C4D
FILE_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
MB = 1_000_000
BUFFER_BYTES = 4 * 1024 * 1024
FLUSH_INTERVAL_S = 1.0


def file_header(linktype: int, snaplen: int) -> bytes:
    """The 24-byte pcap global header (version 2.4, nanosecond magic, little-endian)."""
    return struct.pack("<IHHiIII", MAGIC_NS, 2, 4, 0, 0, snaplen, linktype)


def segment_base(path: Path) -> str:
    """``NAME`` of the rotated segments: ``path`` without a final ``.pcap``."""
    text = os.fspath(path)
    return text[: -len(".pcap")] if text.endswith(".pcap") else text


def segment_path(path: Path, index: int) -> str:
    """The ``index``-th (1-based) rotated segment of ``path``: ``NAME.000001.pcap``."""
    return f"{segment_base(path)}.{index:06d}.pcap"


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
    ) -> None:
        self.path = Path(path)
        self.linktype = linktype
        self.snaplen = snaplen
        self.rotate_bytes = rotate_mb * MB if rotate_mb > 0 else 0
        self.max_files = max_files
        self.packets = 0
        self.segments = 0  # segments opened so far (the current one is number `segments`)
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
            if self.segments == 0:
                self._remove_stale_segments()
            self.segments += 1
            self._current = segment_path(self.path, self.segments)
        else:
            self.segments = 1
            self._current = os.fspath(self.path)
        try:
            self._fd = os.open(self._current, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise self._fail("create", exc) from None
        if self.rotate_bytes and self.segments > self.max_files:
            old = segment_path(self.path, self.segments - self.max_files)
            try:
                os.unlink(old)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise OutputError(f"cannot delete old pcap segment {old}: {exc.strerror}") from None
        header = np.frombuffer(file_header(self.linktype, self.snaplen), dtype=np.uint8)
        self._out[self._pending : self._pending + FILE_HEADER_LEN] = header
        self._pending += FILE_HEADER_LEN
        self._seg_bytes = FILE_HEADER_LEN
        self._seg_packets = 0

    def _remove_stale_segments(self) -> None:
        """Delete ``NAME.NNNNNN.pcap`` segments an earlier run left at this path.

        A run restarts numbering at 000001, so an earlier, longer run's higher-numbered
        segments would otherwise survive and look like the newest data; a plain (unrotated)
        output file is truncated the same way.
        """
        base = segment_base(self.path)
        folder, prefix = os.path.split(base)
        try:
            names = os.listdir(folder or ".")
        except OSError:
            return  # creating the first segment reports the problem
        for name in names:
            index = name[len(prefix) + 1 : -len(".pcap")]
            if (
                name.startswith(prefix + ".")
                and name.endswith(".pcap")
                and len(index) == 6
                and index.isdigit()
            ):
                stale = os.path.join(folder, name)
                try:
                    os.unlink(stale)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise OutputError(
                        f"cannot delete old pcap segment {stale}: {exc.strerror}"
                    ) from None

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
        while i < n:
            limit = cap
            if self.rotate_bytes:
                limit = min(cap, self._pending + (self.rotate_bytes - self._seg_bytes))
            packed, pos = pack_pcap_records(
                batch.buf, batch.offsets, batch.caplens, batch.wirelens, batch.ts_ns,
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
                    self._force_one(batch, i)
                    i += 1
                    continue
            self._write_pending()
            if record + FILE_HEADER_LEN > cap:
                self._out = np.empty(record + FILE_HEADER_LEN, dtype=np.uint8)
                cap = len(self._out)

    def _force_one(self, batch: PacketBatch, i: int) -> None:
        from netscope.kernels.ring import pack_pcap_records

        limit = self._pending + RECORD_HEADER_LEN + int(batch.caplens[i])
        packed, pos = pack_pcap_records(
            batch.buf, batch.offsets, batch.caplens, batch.wirelens, batch.ts_ns,
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
        first = max(1, self.segments - self.max_files + 1)
        kept = self.segments - first + 1
        return (
            f"{segment_path(self.path, first)} .. {os.path.basename(self._current)} "
            f"({self.packets} packets, {self.segments} segments, {kept} kept)"
        )

"""Classic pcap files: both byte orders, microsecond and nanosecond timestamps."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from netscope.batch import PacketBatch
from netscope.errors import CaptureError
from netscope.sources.base import DEFAULT_BATCH_PACKETS, DEFAULT_CHUNK_BYTES, SourceReport
from netscope.sources.chunks import ChunkBuffer, read_exact

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
HEADER_LEN = 24
RECORD_HEADER_LEN = 16
# libpcap refuses records larger than max(snaplen, 256 KiB); we allow up to 16 MiB
# for odd snaplens but never trust a header blindly (a corrupt length must not make
# us allocate gigabytes).
MIN_CAPLEN_LIMIT = 262144
MAX_CAPLEN_LIMIT = 16 * 1024 * 1024


class PcapHeader:
    """The parsed 24-byte global header."""

    def __init__(self, raw: bytes, path: str) -> None:
        (magic_le,) = struct.unpack_from("<I", raw, 0)
        if magic_le in (MAGIC_US, MAGIC_NS):
            self.big_endian = False
            magic = magic_le
        else:
            (magic,) = struct.unpack_from(">I", raw, 0)
            self.big_endian = True
        if magic not in (MAGIC_US, MAGIC_NS):
            raise CaptureError(f"{path}: not a pcap file (magic 0x{magic_le:08x})")
        self.nanosecond = magic == MAGIC_NS
        order = ">" if self.big_endian else "<"
        self.version_major, self.version_minor, _, _, self.snaplen, lt = struct.unpack_from(
            order + "HHiIII", raw, 4
        )
        if self.version_major != 2:
            raise CaptureError(
                f"{path}: unsupported pcap version "
                f"{self.version_major}.{self.version_minor} (expected 2.x)"
            )
        # The upper 16 bits may carry FCS flags (pcap "LinkType and additional info").
        self.linktype = lt & 0xFFFF


def is_pcap_magic(first4: bytes) -> bool:
    if len(first4) < 4:
        return False
    return struct.unpack("<I", first4)[0] in (MAGIC_US, MAGIC_NS) or struct.unpack(">I", first4)[
        0
    ] in (MAGIC_US, MAGIC_NS)


class PcapReader:
    """Streams a classic pcap file as PacketBatches (views into one reused buffer)."""

    def __init__(
        self,
        fileobj: BinaryIO,
        path: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        batch_packets: int = DEFAULT_BATCH_PACKETS,
        head: bytes = b"",
    ) -> None:
        """``head``: the first bytes of the file, already read (by format detection)."""
        raw = head + read_exact(fileobj, HEADER_LEN - len(head))
        if len(raw) < HEADER_LEN:
            raise CaptureError(f"{path}: not a capture file (only {len(raw)} bytes)")
        self.header = PcapHeader(raw, path)
        self.path = path
        self._file = fileobj
        self._chunks = ChunkBuffer(fileobj, chunk_bytes)
        self._chunks.set_file_offset(HEADER_LEN)
        self.report = SourceReport(kind="pcap", link_types={self.header.linktype})
        self._batch_packets = batch_packets
        self._caplen_limit = max(MIN_CAPLEN_LIMIT, min(self.header.snaplen, MAX_CAPLEN_LIMIT))

    def batches(self) -> Iterator[PacketBatch]:
        from netscope.kernels.records import BATCH_FULL, CORRUPT, scan_pcap

        cap = self._batch_packets
        offsets = np.empty(cap, dtype=np.int64)
        caplens = np.empty(cap, dtype=np.int32)
        wirelens = np.empty(cap, dtype=np.int32)
        ts_ns = np.empty(cap, dtype=np.int64)
        linktypes = np.full(cap, self.header.linktype, dtype=np.int32)
        frac_to_ns = 1 if self.header.nanosecond else 1000
        chunks = self._chunks
        index = 1
        while True:
            n, pos, status = scan_pcap(
                chunks.buf,
                chunks.pos,
                chunks.end,
                self.header.big_endian,
                frac_to_ns,
                self.header.version_minor < 3,
                self._caplen_limit,
                cap,
                offsets,
                caplens,
                wirelens,
                ts_ns,
            )
            chunks.pos = pos
            if n:
                self.report.packets_read += n
                yield PacketBatch(
                    chunks.buf, offsets, caplens, wirelens, ts_ns, linktypes, n, index
                )
                index += n
            if status == BATCH_FULL:
                continue
            if status == CORRUPT:
                self._corrupt(pos)
                return
            # NEED_MORE: the next record straddles the end of the buffer.
            need = RECORD_HEADER_LEN
            if chunks.available >= RECORD_HEADER_LEN:
                order = ">I" if self.header.big_endian else "<I"
                incl, orig = struct.unpack_from(order[0] + "II", chunks.buf.data, chunks.pos + 8)
                if self.header.version_minor < 3:
                    incl = min(incl, orig)
                need = RECORD_HEADER_LEN + incl
            if chunks.eof or not chunks.refill(need):
                if chunks.available:
                    self._truncated(chunks.available)
                return

    def _truncated(self, leftover: int) -> None:
        self.report.truncated = True
        self.report.stop_reason = (
            f"{self.path}: file is truncated: the last record is cut short "
            f"({leftover} stray bytes); {self.report.packets_read} packets read"
        )

    def _corrupt(self, pos: int) -> None:
        self.report.truncated = True
        offset = self._chunks.file_offset(pos)
        self.report.stop_reason = (
            f"{self.path}: corrupt record header at byte {offset} (captured length over "
            f"{self._caplen_limit}); stopped after {self.report.packets_read} packets"
        )

    def close(self) -> None:
        self._chunks.close()
        self._file.close()

"""pcapng files: SHB/IDB/EPB/SPB (and the obsolete PB), several interfaces.

The compiled scanner walks packet blocks; this module parses only the rare
structural blocks (section headers, interface descriptions) and skips unknown
ones, which is where pcapng's flexibility lives.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from netscope.batch import PacketBatch
from netscope.errors import CaptureError
from netscope.sources.base import DEFAULT_BATCH_PACKETS, DEFAULT_CHUNK_BYTES, SourceReport
from netscope.sources.chunks import ChunkBuffer

SHB = 0x0A0D0D0A
IDB = 0x00000001
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14
MAX_BLOCK_BYTES = 64 * 1024 * 1024  # larger "blocks" are corruption, not data


@dataclass
class Interface:
    linktype: int
    snaplen: int
    units_per_second: int  # if_tsresol: 10**6 by default
    offset_s: int  # if_tsoffset: signed seconds added to every timestamp (any int64)


def is_pcapng_magic(first4: bytes) -> bool:
    return len(first4) >= 4 and struct.unpack("<I", first4[:4])[0] == SHB


def parse_tsresol(value: int) -> int:
    """if_tsresol byte → ticks per second (MSB set: power of two, else power of ten)."""
    exponent = value & 0x7F
    if value & 0x80:
        return 1 << min(exponent, 62)
    return 10 ** min(exponent, 18)


def parse_idb(body: bytes, big_endian: bool) -> Interface:
    """Parse an Interface Description Block body (after type and length)."""
    order = ">" if big_endian else "<"
    if len(body) < 8:
        raise ValueError("interface description block too short")
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
    units, offset_s = 1_000_000, 0
    pos = 8
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, pos)
        pos += 4
        if code == 0:
            break
        value = body[pos : pos + length]
        if code == OPT_IF_TSRESOL and length >= 1:
            units = parse_tsresol(value[0])
        elif code == OPT_IF_TSOFFSET and length >= 8:
            # kept in seconds: in ns a large offset would not fit int64 (the scanner adds
            # it in seconds and clamps out-of-range results)
            offset_s = struct.unpack_from(order + "q", value, 0)[0]
        pos += (length + 3) & ~3
    return Interface(linktype, snaplen, units, offset_s)


class PcapngReader:
    """Streams a pcapng file as PacketBatches (views into one reused buffer)."""

    def __init__(
        self,
        fileobj: BinaryIO,
        path: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        batch_packets: int = DEFAULT_BATCH_PACKETS,
        head: bytes = b"",
    ) -> None:
        """``head``: the first bytes of the file, already read (by format detection)."""
        self.path = path
        self._file = fileobj
        self._chunks = ChunkBuffer(fileobj, chunk_bytes, head=head)
        self._batch_packets = batch_packets
        self.report = SourceReport(kind="pcapng")
        self.interfaces: list[Interface] = []
        self.big_endian = False
        self._chunks.refill(12)
        if self._chunks.available < 12 or not self._starts_with_shb():
            self._chunks.close()
            raise CaptureError(f"{path}: not a pcapng file")

    def _starts_with_shb(self) -> bool:
        c = self._chunks
        return bool(struct.unpack_from("<I", c.buf.data, c.pos)[0] == SHB)

    def batches(self) -> Iterator[PacketBatch]:
        from netscope.kernels.records import (
            BATCH_FULL,
            CORRUPT,
            DAMAGED,
            NEED_MORE,
            ST_CLAMPED,
            STATE_SLOTS,
            scan_pcapng,
        )

        cap = self._batch_packets
        offsets = np.empty(cap, dtype=np.int64)
        caplens = np.empty(cap, dtype=np.int32)
        wirelens = np.empty(cap, dtype=np.int32)
        ts_ns = np.empty(cap, dtype=np.int64)
        linktypes = np.empty(cap, dtype=np.int32)
        state = np.zeros(STATE_SLOTS, dtype=np.int64)
        tables = self._interface_tables()
        chunks = self._chunks
        index = 1
        while True:
            n, pos, status = scan_pcapng(
                chunks.buf,
                chunks.pos,
                chunks.end,
                self.big_endian,
                MAX_BLOCK_BYTES,
                *tables,
                len(self.interfaces),
                cap,
                state,
                offsets,
                caplens,
                wirelens,
                ts_ns,
                linktypes,
            )
            chunks.pos = pos
            if n:
                self.report.packets_read += n
                if state[ST_CLAMPED] != self.report.timestamps_clamped:
                    self._clamped(int(state[ST_CLAMPED]))
                yield PacketBatch(
                    chunks.buf, offsets, caplens, wirelens, ts_ns, linktypes, n, index
                )
                index += n
            if status == BATCH_FULL:
                continue
            if status == DAMAGED:
                self._stop(pos, "damaged packet block (its two total lengths disagree, or an "
                           "option runs past the block)")  # fmt: skip
                return
            # An SHB can legitimately fail the length sanity check before we know
            # its byte order; otherwise this block is corrupt.
            if status == CORRUPT and not (chunks.available >= 12 and self._starts_with_shb()):
                self._stop(pos, "corrupt block")
                return
            if status in (NEED_MORE, CORRUPT):
                need = self._block_length_needed()
                if need is None:
                    self._stop(pos, "corrupt block")
                    return
                if chunks.available < need:
                    if chunks.eof or not chunks.refill(need):
                        if chunks.available:
                            self._truncated(chunks.available)
                        return
                    continue
            # A structural block (SHB, IDB, other) is entirely in the buffer.
            if not self._structural_block():
                return
            tables = self._interface_tables()

    def _block_length_needed(self) -> int | None:
        """Bytes needed from pos to hold the next whole block, or None if corrupt."""
        c = self._chunks
        if c.available < 12:
            return 12
        if self._starts_with_shb():
            bom = bytes(c.buf[c.pos + 8 : c.pos + 12])
            order = ">" if bom == b"\x1a\x2b\x3c\x4d" else "<"
            if bom not in (b"\x1a\x2b\x3c\x4d", b"\x4d\x3c\x2b\x1a"):
                return None
        else:
            order = ">" if self.big_endian else "<"
        (length,) = struct.unpack_from(order + "I", c.buf.data, c.pos + 4)
        if length < 12 or length % 4 or length > MAX_BLOCK_BYTES:
            return None
        return int(length)

    def _structural_block(self) -> bool:
        """Handle the non-packet block at pos (entirely buffered). False = stop."""
        c = self._chunks
        need = self._block_length_needed()
        if need is None or c.available < need:
            self._stop(c.pos, "corrupt block")
            return False
        start = c.pos
        block = bytes(c.buf[start : start + need])
        if struct.unpack_from("<I", block, 0)[0] == SHB:
            trailer_order = ">" if block[8:12] == b"\x1a\x2b\x3c\x4d" else "<"
        else:
            trailer_order = ">" if self.big_endian else "<"
        if struct.unpack_from(trailer_order + "I", block, need - 4)[0] != need:
            self._stop(start, "damaged block (its two total lengths disagree)")
            return False
        if struct.unpack_from("<I", block, 0)[0] == SHB:
            self.big_endian = block[8:12] == b"\x1a\x2b\x3c\x4d"
            self.interfaces = []  # interface ids restart in every section
        else:
            order = ">" if self.big_endian else "<"
            (btype,) = struct.unpack_from(order + "I", block, 0)
            if btype == IDB:
                try:
                    iface = parse_idb(block[8 : need - 4], self.big_endian)
                except (ValueError, struct.error):
                    self._stop(start, "corrupt interface description block")
                    return False
                self.interfaces.append(iface)
                self.report.link_types.add(iface.linktype)
        c.pos = start + need
        return True

    def _interface_tables(self) -> tuple[np.ndarray, ...]:
        n = max(len(self.interfaces), 1)
        linktype = np.zeros(n, dtype=np.int32)
        snaplen = np.zeros(n, dtype=np.int64)
        units = np.full(n, 1_000_000, dtype=np.int64)
        offset = np.zeros(n, dtype=np.int64)
        for i, iface in enumerate(self.interfaces):
            linktype[i] = iface.linktype
            snaplen[i] = iface.snaplen
            units[i] = min(iface.units_per_second, 2**62)
            offset[i] = iface.offset_s
        return linktype, snaplen, units, offset

    def _clamped(self, count: int) -> None:
        self.report.timestamps_clamped = count
        self.report.timestamp_note = (
            f"{self.path}: {count} packets have timestamps outside 1970-01-01..2262-04-11 "
            "(check if_tsoffset/if_tsresol); clamped to the nearer end of that range"
        )

    def _truncated(self, leftover: int) -> None:
        self.report.truncated = True
        self.report.stop_reason = (
            f"{self.path}: file is truncated: the last block is cut short "
            f"({leftover} stray bytes); {self.report.packets_read} packets read"
        )

    def _stop(self, pos: int, what: str) -> None:
        self.report.truncated = True
        self.report.stop_reason = (
            f"{self.path}: {what} at byte {self._chunks.file_offset(pos)}; "
            f"stopped after {self.report.packets_read} packets"
        )

    def close(self) -> None:
        self._chunks.close()
        self._file.close()

"""Writers (and a tiny reader) for classic pcap and pcapng files, for tests and generators.

These exist so tests can produce every file variant the readers must accept — both byte
orders, micro- and nanosecond pcap, pcapng with several interfaces, custom ``if_tsresol``,
simple packet blocks and unknown block types — without depending on external tools. They are
deliberately independent of NetScope's reader code, so a bug cannot cancel itself out.

All writers stream: records are buffered into ~1 MiB chunks and written as they fill, so a
multi-gigabyte trace never sits in memory. Timestamps are always integer nanoseconds since the
Unix epoch.
"""

from __future__ import annotations

import os
import queue
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import BinaryIO

__all__ = [
    "PCAPNG_UNKNOWN_BLOCK_TYPE",
    "PcapWriter",
    "iter_pcap",
    "pcap_linktype",
    "write_pcap",
    "write_pcapng",
]

PathOrFile = str | os.PathLike[str] | BinaryIO
Record = tuple[int, bytes] | tuple[int, bytes, int]

MAGIC_MICRO = 0xA1B2C3D4
MAGIC_NANO = 0xA1B23C4D

# Block types (pcapng spec, draft-ietf-opsawg-pcapng).
_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_SPB = 0x00000003
_EPB = 0x00000006
_BOM = 0x1A2B3C4D
# Block types with the most significant bit set are reserved for local use, so no reader can
# legitimately understand this one: it must be skipped by its length.
PCAPNG_UNKNOWN_BLOCK_TYPE = 0x80004E53

_CHUNK = 1 << 20


def _open(path_or_file: PathOrFile) -> tuple[BinaryIO, bool]:
    """Return (file, owned): files we open ourselves are closed by us, others are not."""
    if isinstance(path_or_file, (str, os.PathLike)):
        return open(path_or_file, "wb"), True  # noqa: SIM115 - closed by the caller's finally
    return path_or_file, False


class PcapWriter:
    """Streaming classic-pcap writer; usable as a context manager.

    ``write()`` takes one record; ``write_raw()`` takes bytes that already hold complete
    record headers and data in this file's byte order and resolution (used by the bulk
    generator, which formats records itself to avoid per-packet calls). Data longer than
    ``snaplen`` is truncated and the original length kept as the wire length, like a real
    capture with a short snaplen.

    With ``threaded=True`` the actual ``write`` calls run on a helper thread (at most a few
    chunks queued): the copy into the kernel releases the GIL, so for multi-gigabyte traces it
    overlaps with the producer instead of adding to its time. A write error is re-raised by
    the next :meth:`flush` or by :meth:`close`.
    """

    def __init__(
        self,
        path_or_file: PathOrFile,
        linktype: int = 1,
        nanosecond: bool = False,
        big_endian: bool = False,
        snaplen: int = 65535,
        threaded: bool = False,
    ) -> None:
        self.linktype = linktype
        self.nanosecond = nanosecond
        self.big_endian = big_endian
        self.snaplen = snaplen
        self.count = 0
        self._order = ">" if big_endian else "<"
        self._rec = struct.Struct(self._order + "IIII")
        self._file, self._owned = _open(path_or_file)
        self._parts: list[bytes] = []
        self._pending = 0
        magic = MAGIC_NANO if nanosecond else MAGIC_MICRO
        self._parts.append(
            struct.pack(self._order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
        )
        self._pending = 24
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._drain, name="pcap-writer", daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is None:
                try:
                    self._file.write(chunk)
                except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                    self._error = exc

    def write(self, ts_ns: int, data: bytes, wirelen: int | None = None) -> None:
        """Append one packet captured at ``ts_ns`` (wire length defaults to ``len(data)``)."""
        if wirelen is None:
            wirelen = len(data)
        if len(data) > self.snaplen:
            data = data[: self.snaplen]
        sec, frac = divmod(ts_ns, 1_000_000_000)
        if not self.nanosecond:
            frac //= 1000
        self._parts.append(self._rec.pack(sec, frac, len(data), wirelen))
        self._parts.append(data)
        self.count += 1
        self._pending += 16 + len(data)
        if self._pending >= _CHUNK:
            self.flush()

    def write_raw(self, chunk: bytes, records: int = 0) -> None:
        """Append pre-formatted record bytes; ``records`` only updates :attr:`count`."""
        self._parts.append(chunk)
        self.count += records
        self._pending += len(chunk)
        if self._pending >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write buffered bytes to the file (or hand them to the writer thread)."""
        if self._error is not None:
            raise self._error
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._pending = 0
            if self._queue is not None:
                self._queue.put(data)
            else:
                self._file.write(data)

    def close(self) -> None:
        """Flush, stop the writer thread, and close the file if this writer opened it."""
        try:
            self.flush()
        finally:
            if self._queue is not None and self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._queue = None
            if self._owned:
                self._file.close()
            else:
                self._file.flush()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_pcap(
    path_or_file: PathOrFile,
    records: Iterable[Record],
    linktype: int = 1,
    nanosecond: bool = False,
    big_endian: bool = False,
    snaplen: int = 65535,
) -> int:
    """Write a classic pcap file and return the number of records written.

    Args:
        path_or_file: destination path, or a binary file object (left open, only flushed).
        records: ``(ts_ns, data)`` or ``(ts_ns, data, wirelen)`` tuples. ``wirelen`` larger than
            ``len(data)`` describes a packet that was captured truncated.
        linktype: LINKTYPE_* value for the header's network field (1 = Ethernet).
        nanosecond: write the nanosecond variant (magic ``a1b23c4d``) instead of microseconds
            (``a1b2c3d4``, timestamps truncated to whole microseconds).
        big_endian: write header and record headers big-endian (as a big-endian host would);
            readers detect the order from the magic.
        snaplen: header snaplen; longer data is truncated to it (wire length kept).
    """
    with PcapWriter(path_or_file, linktype, nanosecond, big_endian, snaplen) as writer:
        for rec in records:
            if len(rec) == 2:
                writer.write(rec[0], rec[1])
            else:
                writer.write(rec[0], rec[1], rec[2])
        return writer.count


def _pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _ts_units(ts_ns: int, tsresol: int | None) -> int:
    """Convert nanoseconds to the interface's timestamp units (if_tsresol semantics)."""
    if tsresol is None:
        tsresol = 6
    if tsresol & 0x80:
        return (ts_ns << (tsresol & 0x7F)) // 1_000_000_000
    if tsresol <= 9:
        return ts_ns // 10 ** (9 - tsresol)
    return ts_ns * 10 ** (tsresol - 9)


def write_pcapng(
    path: PathOrFile,
    interfaces: Sequence[tuple[int, int | None, int]] = ((1, None, 65535),),
    records: Iterable[tuple[int, int, bytes, int | None]] = (),
    use_simple_blocks: bool = False,
    extra_unknown_block: bool = False,
    big_endian: bool = False,
) -> int:
    """Write a single-section pcapng file and return the number of packet blocks written.

    Args:
        path: destination path, or a binary file object (left open, only flushed).
        interfaces: one ``(linktype, tsresol, snaplen)`` per Interface Description Block, in
            interface-id order. ``tsresol`` is the raw ``if_tsresol`` option byte: ``6`` means
            microseconds, ``9`` nanoseconds, ``0x80 | n`` means units of 2**-n seconds; ``None``
            omits the option (the pcapng default, microseconds).
        records: ``(iface_idx, ts_ns, data, wirelen)``; ``wirelen`` ``None`` means
            ``len(data)``. Data longer than the interface snaplen (when non-zero) is truncated.
        use_simple_blocks: write packets of interface 0 as Simple Packet Blocks (which carry no
            interface id or timestamp, so the timestamp is lost); other interfaces still get
            Enhanced Packet Blocks, which is legal mixing.
        extra_unknown_block: insert a block of type :data:`PCAPNG_UNKNOWN_BLOCK_TYPE` (12 bytes
            of body) after the IDBs and another after the first packet, to prove readers skip
            block types they do not know by their length.
        big_endian: write the section big-endian (readers detect it from the byte-order magic).
    """
    order = ">" if big_endian else "<"
    out, owned = _open(path)
    parts: list[bytes] = []
    pending = 0

    def block(block_type: int, body: bytes) -> bytes:
        body = _pad4(body)
        total = 12 + len(body)
        return struct.pack(order + "II", block_type, total) + body + struct.pack(order + "I", total)

    unknown = block(PCAPNG_UNKNOWN_BLOCK_TYPE, b"NetScope-skip")
    count = 0
    try:
        # SHB: byte-order magic, version 1.0, section length -1 (unknown), no options.
        parts.append(block(_SHB, struct.pack(order + "IHHq", _BOM, 1, 0, -1)))
        for linktype, tsresol, snaplen in interfaces:
            options = b""
            if tsresol is not None:
                options = struct.pack(order + "HH", 9, 1) + _pad4(bytes([tsresol]))
                options += struct.pack(order + "HH", 0, 0)
            parts.append(block(_IDB, struct.pack(order + "HHI", linktype, 0, snaplen) + options))
        if extra_unknown_block:
            parts.append(unknown)
        for iface, ts_ns, data, wirelen in records:
            if not 0 <= iface < len(interfaces):
                raise ValueError(f"record refers to interface {iface}, only {len(interfaces)}")
            if wirelen is None:
                wirelen = len(data)
            _, tsresol, snaplen = interfaces[iface]
            if snaplen and len(data) > snaplen:
                data = data[:snaplen]
            if use_simple_blocks and iface == 0:
                parts.append(block(_SPB, struct.pack(order + "I", wirelen) + data))
            else:
                units = _ts_units(ts_ns, tsresol)
                head = struct.pack(
                    order + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data), wirelen
                )
                parts.append(block(_EPB, head + data))
            count += 1
            if extra_unknown_block and count == 1:
                parts.append(unknown)
            pending += len(data) + 32
            if pending >= _CHUNK:
                out.write(b"".join(parts))
                parts.clear()
                pending = 0
        out.write(b"".join(parts))
    finally:
        if owned:
            out.close()
        else:
            out.flush()
    return count


def pcap_linktype(path: str | os.PathLike[str]) -> int:
    """Link type from a classic pcap header."""
    with open(path, "rb") as f:
        header = f.read(24)
    order = _pcap_order(header)
    return int(struct.unpack(order + "I", header[20:24])[0])


def _pcap_order(header: bytes) -> str:
    if len(header) < 24:
        raise ValueError("not a pcap file: header shorter than 24 bytes")
    for order in ("<", ">"):
        (magic,) = struct.unpack(order + "I", header[:4])
        if magic in (MAGIC_MICRO, MAGIC_NANO):
            return order
    raise ValueError("not a classic pcap file (bad magic)")


def iter_pcap(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(ts_ns, data, wirelen)`` from a classic pcap (either byte order/resolution).

    A minimal reader for tests and for :func:`netscope.gen.traffic.mixed`; it reads in large
    chunks but makes Python objects per packet, so it is not NetScope's reader. A truncated
    last record raises ``ValueError``.
    """
    with open(path, "rb") as f:
        header = f.read(24)
        order = _pcap_order(header)
        (magic,) = struct.unpack(order + "I", header[:4])
        scale = 1 if magic == MAGIC_NANO else 1000
        rec = struct.Struct(order + "IIII")
        buf = b""
        pos = 0
        while True:
            if len(buf) - pos < 16:
                more = f.read(_CHUNK)
                buf = buf[pos:] + more
                pos = 0
                if len(buf) < 16:
                    if buf:
                        raise ValueError("truncated pcap record header")
                    return
            sec, frac, caplen, wirelen = rec.unpack_from(buf, pos)
            end = pos + 16 + caplen
            while end > len(buf):
                more = f.read(max(_CHUNK, end - len(buf)))
                if not more:
                    raise ValueError("truncated pcap record data")
                buf = buf[pos:] + more
                end -= pos
                pos = 0
            yield sec * 1_000_000_000 + frac * scale, buf[pos + 16 : end], wirelen
            pos = end

"""Several capture files read as one capture (``--read-pcap a.pcap b.pcap 'dir/*.pcap'``).

Files are ordered by the timestamp of their first packet (ties: the order given). While
only one file's packets are due, its batches pass through untouched (no copy). When files'
time ranges overlap, the batches of the files open at that moment are merged in timestamp
order, window by window: every packet up to the *horizon* H — the smallest of the open
files' last timestamps in their current batch and the next unopened file's first
timestamp — is due, the due prefixes are copied into one buffer and ordered by one stable
``argsort`` of ``ts_ns`` (ties: file order, then record order). No Python runs per packet.

A file's packets are assumed to be in time order, as capture tools write them; a file that
is not (``editcap`` can produce one) is still read in its own record order, and the merge
uses the running maximum of its timestamps, so no packet is lost or duplicated.

A file that cannot be opened or read is recorded (:class:`FileEntry.error`) and skipped;
the run reports it and exits 1 after processing the rest.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from netscope.batch import PacketBatch
from netscope.errors import CaptureError
from netscope.sources.base import DEFAULT_BATCH_PACKETS, DEFAULT_CHUNK_BYTES, SourceReport
from netscope.sources.files import STDIN_PATH, open_capture_file

PROBE_CHUNK_BYTES = 256 * 1024  # enough for the first record of any sane capture
GLOB_CHARS = frozenset("*?[")


@dataclass
class FileEntry:
    """One file of the set: where it sorts, what was read, what went wrong."""

    path: str
    rank: int = 0  # position in the order given (ties in first_ts keep it)
    first_ts: int | None = None  # first packet's timestamp; None: no packet (or unreadable)
    kind: str = ""  # "pcap" / "pcapng"
    packets: int = 0
    error: str | None = None  # one line: why the file could not be read
    warning: str | None = None  # the reader's end-of-file warning (truncation, clamping)
    report: SourceReport | None = field(default=None, repr=False)


def expand_paths(specs: Sequence[str | os.PathLike[str]]) -> list[FileEntry]:
    """Files named by ``specs``: plain files, directories (their regular, non-hidden files,
    sorted by name; not recursive) and glob patterns (``**`` recurses), in the order
    given, each file once. A pattern matching nothing, or a missing path, becomes an entry
    with its error, so the run can say which input it could not read."""
    seen: set[str] = set()
    entries: list[FileEntry] = []

    def add(path: str, error: str | None = None) -> None:
        key = os.path.realpath(path) if error is None and path != STDIN_PATH else path
        if key in seen:
            return
        seen.add(key)
        entries.append(FileEntry(path=path, rank=len(entries), error=error))

    for spec in specs:
        text = os.fspath(spec)
        if text != STDIN_PATH and os.path.isdir(text):
            names = sorted(n for n in os.listdir(text) if not n.startswith("."))
            files = [os.path.join(text, n) for n in names]
            for path in files:
                if os.path.isfile(path):
                    add(path)
        elif text != STDIN_PATH and not os.path.exists(text) and GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            files = [m for m in matches if os.path.isfile(m)]
            if not files:
                add(text, f"{text}: no file matches this pattern")
            for path in files:
                add(path)
        else:
            add(text)
    return entries


# classic pcap magic numbers as read little-endian -> (big endian, nanoseconds)
_PCAP_MAGIC = {
    0xA1B2C3D4: (False, False),
    0xA1B23C4D: (False, True),
    0xD4C3B2A1: (True, False),
    0x4D3CB2A1: (True, True),
}


def quick_pcap_probe(entry: FileEntry) -> bool:
    """The first timestamp of a plain classic pcap from its first 40 bytes, without
    starting a reader (its thread and buffer cost more than a small file's packets).
    False: not that simple (pcapng, unusual header, short file): use the reader."""
    try:
        with open(entry.path, "rb") as fh:
            head = fh.read(40)
    except OSError:
        return False
    if len(head) < 24:
        return False
    magic = int.from_bytes(head[:4], "little")
    if magic not in _PCAP_MAGIC:
        return False
    big, nanos = _PCAP_MAGIC[magic]
    order: Literal["big", "little"] = "big" if big else "little"
    if int.from_bytes(head[4:6], order) != 2:
        return False
    entry.kind = "pcap"
    if len(head) < 40:
        return len(head) == 24  # a header and no record: an empty capture
    sec = int.from_bytes(head[24:28], order)
    frac = int.from_bytes(head[28:32], order)
    if frac >= (1_000_000_000 if nanos else 1_000_000):
        return False  # the reader decides what such a record means
    entry.first_ts = sec * 1_000_000_000 + frac * (1 if nanos else 1000)
    return True


def probe(entry: FileEntry) -> None:
    """Read the first packet's timestamp (small chunk, one packet), or record the error."""
    if entry.error is not None or quick_pcap_probe(entry):
        return
    try:
        reader = open_capture_file(entry.path, PROBE_CHUNK_BYTES, 1)
    except CaptureError as exc:
        entry.error = str(exc)
        return
    try:
        entry.kind = reader.report.kind
        for batch in reader.batches():
            if batch.count:
                entry.first_ts = int(batch.ts_ns[0])
                break
    except CaptureError as exc:
        entry.error = str(exc)
    except OSError as exc:
        entry.error = f"{entry.path}: cannot read: {exc.strerror}"
    finally:
        reader.close()


class _Open:
    """A file being read: its reader, the batch in hand and how much of it was emitted."""

    def __init__(self, entry: FileEntry, reader: Any, chunk: int, batch: int) -> None:
        self.entry = entry
        self.reader = reader
        self._batches = reader.batches()
        self.pending: PacketBatch | None = None
        self.tail: Any = None  # running max of the pending batch's timestamps
        self.pos = 0

    def refill(self) -> bool:
        """Next non-empty batch into ``pending``; False at the end of the file."""
        while True:
            batch = next(self._batches, None)
            if batch is None:
                return False
            if batch.count:
                self.pending = batch
                self.tail = np.maximum.accumulate(batch.ts_ns[: batch.count])
                self.pos = 0
                return True

    @property
    def last(self) -> int:
        return int(self.tail[-1])

    def due(self, horizon: int) -> int:
        """How many of the pending packets (from ``pos``) are at or before ``horizon``."""
        return int(np.searchsorted(self.tail[self.pos :], horizon, side="right"))


class FileSetReader:
    """A set of capture files as one source of batches (see the module docstring).

    Looks like a file reader to the capture stage: ``header`` is the first file's pcap
    header (its snaplen and link type for ``--write-pcap``), ``interfaces`` the pcapng
    interfaces seen so far, ``big_endian`` the current file's byte order.
    """

    def __init__(
        self,
        entries: list[FileEntry],
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        batch_packets: int = DEFAULT_BATCH_PACKETS,
    ) -> None:
        for entry in entries:
            probe(entry)
        self.entries = entries
        self.chunk_bytes = chunk_bytes
        self.batch_packets = batch_packets
        readable = [e for e in entries if e.error is None]
        self.order = sorted(
            (e for e in readable if e.first_ts is not None),
            key=lambda e: (e.first_ts, e.rank),
        )
        kinds = {e.kind for e in readable}
        self.report = SourceReport(kind="+".join(sorted(kinds)) if kinds else "pcap")
        self.header: Any = None
        self.interfaces: list[Any] = []
        self.big_endian = False
        self._open: list[_Open] = []
        self.files_done = 0
        first = self.order[0] if self.order else (readable[0] if readable else None)
        if first is not None:  # the first file's header, known before any batch
            try:
                reader = open_capture_file(first.path, PROBE_CHUNK_BYTES, 1)
            except CaptureError:
                reader = None
            if reader is not None:
                self.header = getattr(reader, "header", None)
                self.big_endian = bool(getattr(self.header, "big_endian", False))
                if self.header is not None:
                    self.report.link_types.add(int(self.header.linktype))
                reader.close()

    # ------------------------------------------------------------------ reading

    def _start(self, entry: FileEntry) -> _Open | None:
        try:
            size = os.path.getsize(entry.path)
        except OSError:
            size = self.chunk_bytes
        # a small file gets a buffer its size, not the 16 MB a long capture streams through
        chunk = max(1 << 20, min(self.chunk_bytes, size + 4096))
        try:
            reader = open_capture_file(entry.path, chunk, self.batch_packets)
        except CaptureError as exc:
            entry.error = str(exc)
            self.files_done += 1
            return None
        opened = _Open(entry, reader, self.chunk_bytes, self.batch_packets)
        self._open.append(opened)
        return opened

    def _refill(self, opened: _Open) -> bool:
        """Next batch of ``opened``; at its end (or a read error) the file is closed."""
        try:
            ok = opened.refill()
        except CaptureError as exc:
            opened.entry.error = str(exc)
            ok = False
        except OSError as exc:
            opened.entry.error = f"{opened.entry.path}: cannot read: {exc.strerror}"
            ok = False
        self._sync(opened.reader)
        if not ok:
            self._finish(opened)
        return ok

    def _sync(self, reader: Any) -> None:
        """Link types, interfaces and byte order of the file being read, for the stage."""
        self.report.link_types |= reader.report.link_types
        self.big_endian = bool(
            reader.header.big_endian if getattr(reader, "header", None) is not None
            else getattr(reader, "big_endian", False)
        )  # fmt: skip
        for interface in getattr(reader, "interfaces", ()) or ():
            if interface not in self.interfaces:
                self.interfaces.append(interface)

    def _finish(self, opened: _Open) -> None:
        entry, report = opened.entry, opened.reader.report
        entry.packets = report.packets_read
        entry.warning = report.warning
        entry.report = report
        total = self.report
        total.packets_read += report.packets_read
        total.truncated = total.truncated or report.truncated
        total.timestamps_clamped += report.timestamps_clamped
        opened.reader.close()
        self._open.remove(opened)
        self.files_done += 1

    def batches(self) -> Iterator[PacketBatch]:
        queue = list(self.order)
        while True:
            for opened in [o for o in self._open if o.pending is None]:
                self._refill(opened)
            if not self._open:
                if not queue:
                    return
                opened_next = self._start(queue.pop(0))
                continue
            next_ts = queue[0].first_ts if queue else None
            least = min(o.last for o in self._open)
            horizon = least if next_ts is None else min(least, next_ts)
            parts = [(o, o.due(horizon)) for o in self._open]
            parts = [(o, k) for o, k in parts if k]
            if len(parts) == 1:
                o, k = parts[0]
                pending = o.pending
                assert pending is not None
                yield pending.window(o.pos, o.pos + k)
            elif parts:
                yield merge_windows(
                    [(o.pending, o.pos, o.pos + k) for o, k in parts],
                    [o.tail[o.pos : o.pos + k] for o, k in parts],
                )
            for o, k in parts:
                o.pos += k
                if o.pending is not None and o.pos >= o.pending.count:
                    o.pending = None
            if next_ts is not None and horizon == next_ts:
                opened_next = self._start(queue.pop(0))
                del opened_next

    def close(self) -> None:
        for opened in list(self._open):
            opened.reader.close()
        self._open.clear()

    # ------------------------------------------------------------------ reporting

    @property
    def unreadable(self) -> list[FileEntry]:
        return [e for e in self.entries if e.error is not None]

    def warnings(self) -> list[str]:
        return [e.warning for e in self.entries if e.warning]


def merge_windows(
    parts: list[tuple[PacketBatch | None, int, int]], keys: list[Any] | None = None
) -> PacketBatch:
    """Packets ``[lo, hi)`` of each batch in one new batch, in timestamp order.

    The packet bytes are copied once (each part's span, back to back); the per-packet
    arrays are concatenated and permuted by a stable argsort of the sort keys, so equal
    keys keep the parts' order (the files' order) and each file's record order. ``keys``
    (one array per part) default to the timestamps; the reader passes each file's running
    maximum of them, which is the timestamps for a file in time order and keeps a file
    that is not in its own record order.
    """
    bufs, offsets, caplens, wirelens, ts, linktypes = [], [], [], [], [], []
    base = 0
    for batch, lo, hi in parts:
        assert batch is not None
        off = batch.offsets[lo:hi]
        cap = batch.caplens[lo:hi]
        start = int(off.min())
        end = int((off + cap).max())
        bufs.append(batch.buf[start:end])
        offsets.append(off - start + base)
        base += end - start
        caplens.append(cap)
        wirelens.append(batch.wirelens[lo:hi])
        ts.append(batch.ts_ns[lo:hi])
        linktypes.append(batch.linktypes[lo:hi])
    all_ts = np.concatenate(ts)
    order_by = all_ts if keys is None else np.concatenate(keys)
    perm = np.argsort(order_by, kind="stable")
    buf = np.concatenate(bufs) if base else np.zeros(1, dtype=np.uint8)
    return PacketBatch(
        buf=buf,
        offsets=np.concatenate(offsets)[perm],
        caplens=np.concatenate(caplens)[perm],
        wirelens=np.concatenate(wirelens)[perm],
        ts_ns=all_ts[perm],
        linktypes=np.concatenate(linktypes)[perm],
        count=int(all_ts.size),
    )

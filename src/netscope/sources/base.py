"""What every packet source provides, whatever it reads from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from netscope.batch import PacketBatch

DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024  # SPEC §3: 16 MB readinto chunks stay cache-friendly
DEFAULT_BATCH_PACKETS = 32768


@dataclass
class SourceReport:
    """What a source has to say at the end of a run (summary lines, warnings)."""

    kind: str  # "pcap", "pcapng", "live"
    packets_read: int = 0
    link_types: set[int] = field(default_factory=set)
    truncated: bool = False  # file ended inside a record
    stop_reason: str | None = None  # one line: the truncation / corruption that ended reading
    timestamps_clamped: int = 0  # packets whose timestamp was out of range (see capture.md)
    timestamp_note: str | None = None  # one line about those packets, with the file name

    @property
    def warning(self) -> str | None:
        """Everything worth a ``warning:`` line at the end of the run, as one line."""
        parts = [p for p in (self.stop_reason, self.timestamp_note) if p]
        return "; ".join(parts) if parts else None


class BatchSource(Protocol):
    """A source yields batches; each batch is valid until the next one is requested."""

    report: SourceReport

    def batches(self) -> Iterator[PacketBatch]: ...

    def close(self) -> None: ...

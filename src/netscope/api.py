"""The small library API (SPEC §7): the CLI's engine for Python users.

>>> import netscope
>>> result = netscope.analyze("capture.pcap")
>>> for flow in result.top(5):
...     print(flow.label(), flow.bytes_total)
>>> rows = result.to_records()          # list of dicts, the JSON export's shape

``open_capture`` gives the raw columnar batches for custom kernels, and
``decode_packet`` the readable per-layer decoder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from netscope.analysis import Counters
from netscope.flows.records import FlowRecord, records_from_rows
from netscope.flows.table import FlowOptions
from netscope.sinks.exports import sorted_for_export, write_csv, write_json
from netscope.sources import open_capture_file
from netscope.sources.base import SourceReport


@dataclass
class AnalysisResult:
    """Flows and totals of one analysed capture."""

    flows: list[FlowRecord]  # sorted by bytes_total, largest first
    counters: Counters
    source: SourceReport
    expired: list[FlowRecord]  # flows that left the table (timeout / eviction)
    files: list[Any] = field(default_factory=list)  # file sets: sources.fileset.FileEntry each
    metadata: dict[str, Any] = field(default_factory=dict)  # analyze_many: tasks, exactness

    def __iter__(self) -> Iterator[FlowRecord]:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)

    def top(self, n: int) -> list[FlowRecord]:
        return self.flows[:n]

    def to_records(self) -> list[dict[str, Any]]:
        """The flows as dicts shaped like the JSON export (SPEC §6)."""
        return [f.to_dict() for f in self.flows]

    def export_json(self, path: str | os.PathLike[str]) -> int:
        return write_json(path, self.flows)

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        return write_csv(path, self.flows)


PathSet = str | os.PathLike[str] | list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...]


def _path_list(paths: PathSet) -> list[str]:
    if isinstance(paths, list | tuple):
        return [os.fspath(p) for p in paths]
    return [os.fspath(paths)]


def analyze(
    path: PathSet,
    *,
    count: int = 0,
    max_flows: int = 0,
    timeout_secs: float = 0.0,
    rtt: bool = True,
    retrans: bool = True,
    out_of_order: bool = True,
    keep_expired: bool = False,
) -> AnalysisResult:
    """Read a pcap/pcapng file — or a set: a list of files, directories and globs read as
    one capture (as ``netscope a.pcap b.pcap``) — and return its flow table.

    Library defaults differ from the CLI's on purpose: no flow cap and no
    inactivity timeout, so the result holds every flow of the file unless asked.
    ``keep_expired`` collects flows removed by ``timeout_secs``/``max_flows``.
    """
    from netscope import engine
    from netscope.flows.table import ExpiredBatch
    from netscope.pipeline.inline import InlineProcessor

    engine.warm_up(announce=False)
    options = FlowOptions(max_flows, timeout_secs, rtt, retrans, out_of_order, keep_expired)
    processor = InlineProcessor(options)
    expired: list[FlowRecord] = []

    def collect(batch: ExpiredBatch) -> None:
        expired.extend(records_from_rows(batch.keys, batch.i64, batch.f64, batch.u8))

    processor.flows.on_expired = collect
    from pathlib import Path

    from netscope.fileset_input import is_file_set

    paths = _path_list(path)
    source: Any
    if is_file_set(tuple(Path(p) for p in paths)):
        from netscope.sources.fileset import FileSetReader, expand_paths

        source = FileSetReader(expand_paths(paths))
    else:
        source = open_capture_file(paths[0])
    try:
        for batch in source.batches():
            seen = processor.analyzer.counters.packets
            if count and seen + batch.count > count:
                batch = batch.sliced(count - seen)
            processor.feed(batch)
            if count and processor.analyzer.counters.packets >= count:
                break
    finally:
        source.close()
    table = processor.flows
    records = records_from_rows(
        table.keys, table.i64, table.f64 if table.deep else None, table.u8, table.live_rows()
    )
    return AnalysisResult(
        flows=sorted_for_export(records),
        counters=processor.analyzer.counters,
        source=source.report,
        expired=expired,
        files=list(getattr(source, "entries", [])),
    )


def analyze_many(
    paths: PathSet,
    client: Any = None,
    *,
    tasks: int = 0,
    count: int = 0,
    max_flows: int = 0,
    timeout_secs: float = 0.0,
    rtt: bool = True,
    retrans: bool = True,
    out_of_order: bool = True,
) -> AnalysisResult:
    """:func:`analyze` of a file set, on a ``dask.distributed.Client`` when given one.

    The work is cut by flow (``tasks`` of them; 0 = one per worker thread), so every flow
    field equals the single-process result (docs/scale-out.md); ``metadata`` says how it
    ran. Without a client the tasks run here, one after the other. Expired flows are not
    collected (``expired`` is empty).
    """
    from netscope import distributed

    options = FlowOptions(max_flows, timeout_secs, rtt, retrans, out_of_order, False)
    names = _path_list(paths)
    if client is None:
        merged = distributed.run_local(names, options, count)
    else:
        merged = distributed.run_on(client, names, options, tasks, count)
    records = records_from_rows(merged.keys, merged.i64, merged.f64, merged.u8)
    report = SourceReport(kind="set", packets_read=sum(e.packets for e in merged.files))
    return AnalysisResult(
        flows=sorted_for_export(records),
        counters=merged.counters,
        source=report,
        expired=[],
        files=merged.files,
        metadata={**merged.metadata, "task_figures": merged.tasks, "merge_s": merged.merge_s},
    )


def open_capture(path: str | os.PathLike[str]) -> Any:
    """Open a capture file; ``.batches()`` yields PacketBatch objects (columnar)."""
    return open_capture_file(path)

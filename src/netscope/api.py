"""The small library API (SPEC §7): the CLI's engine for Python users.

>>> import netscope
>>> result = netscope.analyze("capture.pcap")
>>> for flow in result.top(5):
...     print(flow.label(), flow.bytes_total)
>>> rows = result.to_records()          # list of dicts, the JSON export's shape
>>> df = result.to_pandas()             # or .to_arrow(), .to_polars(); see docs/analysis.md

``open_capture`` gives the raw columnar batches for custom kernels, and
``decode_packet`` the readable per-layer decoder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from netscope.analysis import Counters
from netscope.flows.records import FlowRecord, records_from_rows
from netscope.flows.schema import FlowRows
from netscope.flows.table import FlowOptions
from netscope.sinks.exports import sorted_for_export, write_csv, write_json
from netscope.sources import open_capture_file
from netscope.sources.base import SourceReport


@dataclass
class AnalysisResult:
    """Flows and totals of one analysed capture.

    The flows are kept as numpy rows (``rows``); ``flows`` (Python records) and the Arrow,
    pandas and polars views are built from them when first asked for, so a caller who
    only wants a DataFrame never pays for a million ``FlowRecord`` objects.
    """

    rows: FlowRows  # active flows at the end, largest bytes_total first
    counters: Counters
    source: SourceReport
    expired_rows: FlowRows | None = None  # flows that left the table (keep_expired)
    community_id_seed: int = 0
    files: list[Any] = field(default_factory=list)  # file sets: sources.fileset.FileEntry each
    metadata: dict[str, Any] = field(default_factory=dict)  # analyze_many: tasks, exactness
    _arrow: dict[bool, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def flows(self) -> list[FlowRecord]:
        """Active flows as records, sorted by bytes_total (the JSON export's order)."""
        r = self.rows
        recs = records_from_rows(r.keys, r.i64, r.f64, r.u8, seed=self.community_id_seed)
        return sorted_for_export(recs)

    @cached_property
    def expired(self) -> list[FlowRecord]:
        """Flows removed by timeout/eviction (only with ``keep_expired``)."""
        r = self.expired_rows
        if r is None:
            return []
        return records_from_rows(r.keys, r.i64, r.f64, r.u8, seed=self.community_id_seed)

    def __iter__(self) -> Iterator[FlowRecord]:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.rows)

    def top(self, n: int) -> list[FlowRecord]:
        return self.flows[:n]

    def to_records(self) -> list[dict[str, Any]]:
        """The flows as dicts shaped like the JSON export (SPEC §6)."""
        return [f.to_dict() for f in self.flows]

    def to_arrow(self, *, expired: bool = False) -> Any:
        """The flows as a ``pyarrow.Table`` (schema: docs/exports.md).

        Built from the numpy columns (no per-flow Python) and cached. ``expired=True``
        appends the flows that left the table (``keep_expired``), marked by ``end_reason``.
        """
        table = self._arrow.get(expired)
        if table is None:
            parts = [self.rows]
            if expired and self.expired_rows is not None:
                parts.append(self.expired_rows)
            table = FlowRows.concat(parts).to_arrow(self.community_id_seed)
            self._arrow[expired] = table
        return table

    def to_pandas(self, *, expired: bool = False) -> Any:
        """A ``pandas.DataFrame`` (timestamps tz-aware UTC, categoricals for dictionaries)."""
        return self.to_arrow(expired=expired).to_pandas()

    def to_polars(self, *, expired: bool = False) -> Any:
        """A ``polars.DataFrame`` (needs ``pip install polars``)."""
        try:
            import polars as pl
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("to_polars() needs polars: pip install polars") from None
        return pl.from_arrow(self.to_arrow(expired=expired))

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> Any:
        """Arrow PyCapsule stream, so ``polars.DataFrame(result)`` and DuckDB read it."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def export_json(self, path: str | os.PathLike[str]) -> int:
        return write_json(path, self.flows)

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        return write_csv(path, self.flows)

    def export_parquet(self, path: str | os.PathLike[str]) -> int:
        """Write the flows (and kept expired ones) as one Parquet file; returns rows."""
        from netscope.sinks.parquet import write_parquet_table

        table = self.to_arrow(expired=True)
        write_parquet_table(path, table)
        return int(table.num_rows)


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
    community_id_seed: int = 0,
) -> AnalysisResult:
    """Read a pcap/pcapng file — or a set: a list of files, directories and globs read as
    one capture (as ``netscope a.pcap b.pcap``) — and return its flow table.

    Library defaults differ from the CLI's on purpose: no flow cap and no
    inactivity timeout, so the result holds every flow of the file unless asked.
    ``keep_expired`` collects flows removed by ``timeout_secs``/``max_flows``.
    ``community_id_seed`` is the Community ID seed of every export (0 = the usual one).
    """
    from netscope import engine
    from netscope.flows.table import ExpiredBatch
    from netscope.pipeline.inline import InlineProcessor

    engine.warm_up(announce=False)
    options = FlowOptions(max_flows, timeout_secs, rtt, retrans, out_of_order, keep_expired)
    processor = InlineProcessor(options)
    expired: list[FlowRows] = []

    def collect(batch: ExpiredBatch) -> None:
        expired.append(
            FlowRows.take(batch.keys, batch.i64, batch.f64, batch.u8, None, batch.reason)
        )

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
    live = FlowRows.take(
        table.keys, table.i64, table.f64 if table.deep else None, table.u8, table.live_rows()
    )
    return AnalysisResult(
        rows=live.sorted(),
        counters=processor.analyzer.counters,
        source=source.report,
        expired_rows=FlowRows.concat(expired) if expired else None,
        community_id_seed=community_id_seed,
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
    rows = FlowRows.take(merged.keys, merged.i64, merged.f64, merged.u8, None, None)
    report = SourceReport(kind="set", packets_read=sum(e.packets for e in merged.files))
    return AnalysisResult(
        rows=rows.sorted(),
        counters=merged.counters,
        source=report,
        files=merged.files,
        metadata={**merged.metadata, "task_figures": merged.tasks, "merge_s": merged.merge_s},
    )


def open_capture(path: str | os.PathLike[str]) -> Any:
    """Open a capture file; ``.batches()`` yields PacketBatch objects (columnar)."""
    return open_capture_file(path)

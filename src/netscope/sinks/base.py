"""The one interface every flow/packet output implements, and the list a run builds.

A *sink* is an output the run loop (:mod:`netscope.run_loop`) feeds without knowing what
it is: JSON/CSV exports, the expired-flows JSONL, and the Parquet, Zeek and IPFIX exports
being added are each one module with one class. To add one:

1. write a class in ``sinks/`` deriving from :class:`SinkBase` (or matching :class:`Sink`),
   overriding the hooks it needs and setting the ``wants_*`` flags for the costly ones;
2. add one ``if`` to :func:`build_sinks` that constructs it from the Config.

The loop never changes. Hooks, in the order a run calls them:

``on_batch(batch, cols)``
    after each batch is analysed (``wants_batches``). ``cols`` are the decoded columns of
    the inline processor, ``None`` in pipeline mode (the shards decode).
``on_expired(expired)``
    flows that left the table (timeout / eviction), as an :class:`ExpiredBatch`
    (``wants_expired``: the table then keeps them for the sinks).
``on_tick(tick)``
    each stats/dashboard tick (:class:`netscope.pipeline.inline.Tick`), when the run ticks
    at all (stats or dashboard on) (``wants_ticks``).
``finish(final) -> rows``
    the run is over (EOF, ``-c``, Ctrl-C, a failure): write the final output from the flow
    table (:class:`FinalFlows`) and return the summary rows, e.g. ``[("JSON export",
    "out.json (12 flows)")]``. Raise :class:`OutputError` on failure: the loop records the
    first failure (exit 1) and still finishes the other sinks and prints the summary.
``close()``
    release files and sockets; always called, also after a failure. Must not raise.

Other parts of a run are not sinks because they steer it: the capture stage (filter and
``--write-pcap`` before analysis, :mod:`netscope.capture_stage`), the stats lines, the
dashboard and the anomaly reporter (they attach to the processor and print as it goes).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from netscope.config import Config

if TYPE_CHECKING:
    from netscope.batch import PacketBatch
    from netscope.flows.records import FlowRecord
    from netscope.flows.table import ExpiredBatch

SummaryRows = list[tuple[str, str]]


class FinalFlows:
    """The flow table at the end of a run, as sinks read it.

    ``table`` is the (merged) :class:`FlowTable`; :meth:`records` converts its live rows to
    :class:`FlowRecord` objects once, however many sinks ask.
    """

    def __init__(self, table: Any, seed: int = 0) -> None:
        self.table = table
        self.seed = seed  # Community ID seed of the records
        self._records: list[FlowRecord] | None = None

    def records(self) -> list[FlowRecord]:
        if self._records is None:
            from netscope.flows.records import records_from_rows

            t = self.table
            self._records = records_from_rows(
                t.keys, t.i64, t.f64 if t.deep else None, t.u8, t.live_rows(), seed=self.seed
            )
        return self._records


@runtime_checkable
class Sink(Protocol):
    """What the run loop calls on every output (see the module docstring)."""

    wants_batches: bool
    wants_expired: bool
    wants_ticks: bool

    def on_batch(self, batch: PacketBatch, cols: Any) -> None: ...

    def on_expired(self, expired: ExpiredBatch) -> None: ...

    def on_tick(self, tick: Any) -> None: ...

    def finish(self, final: FinalFlows) -> SummaryRows: ...

    def close(self) -> None: ...


class SinkBase:
    """No-op hooks: a sink overrides the ones it needs and sets their ``wants_*`` flag."""

    wants_batches = False
    wants_expired = False
    wants_ticks = False

    def on_batch(self, batch: PacketBatch, cols: Any) -> None:
        return None

    def on_expired(self, expired: ExpiredBatch) -> None:
        return None

    def on_tick(self, tick: Any) -> None:
        return None

    def finish(self, final: FinalFlows) -> SummaryRows:
        return []

    def close(self) -> None:
        return None


def build_sinks(cfg: Config) -> list[Sink]:
    """Every output ``cfg`` asks for, in the order their summary rows are printed.

    Opening one can raise OutputError (exit 1); the sinks opened before it are closed.
    """
    from netscope.sinks.flow_exports import CsvExportSink, JsonExportSink
    from netscope.sinks.jsonl import ExpiredFlowsSink

    sinks: list[Sink] = []
    seed = cfg.output.community_id_seed
    try:
        if cfg.output.expired_flows_jsonl is not None:
            sinks.append(ExpiredFlowsSink(cfg.output.expired_flows_jsonl, seed=seed))
        if cfg.output.export_parquet is not None:
            from netscope.sinks.parquet import ParquetSink

            sinks.append(ParquetSink(cfg))
        if cfg.output.export_json is not None:
            sinks.append(JsonExportSink(cfg.output.export_json))
        if cfg.output.export_csv is not None:
            sinks.append(CsvExportSink(cfg.output.export_csv))
    except BaseException:
        close_all(sinks)
        raise
    return sinks


def close_all(sinks: list[Sink]) -> None:
    """``close()`` every sink (they must not raise; a stray OSError is not fatal here)."""
    for sink in sinks:
        with contextlib.suppress(OSError):
            sink.close()


class ExpiredFanout:
    """The table's single ``on_expired`` handler, handing each batch to every sink."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = [s for s in sinks if s.wants_expired]

    def __call__(self, expired: ExpiredBatch) -> None:
        for sink in self.sinks:
            sink.on_expired(expired)


class TickFanout:
    """Chains the run's own tick handler (stats, dashboard) with the sinks' ``on_tick``."""

    def __init__(self, first: Any, sinks: list[Sink]) -> None:
        self.first = first
        self.sinks = [s for s in sinks if s.wants_ticks]

    def __call__(self, tick: Any) -> None:
        if self.first is not None:
            self.first(tick)
        for sink in self.sinks:
            sink.on_tick(tick)

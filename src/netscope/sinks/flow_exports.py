"""``--export-json`` / ``--export-csv`` as sinks: the final flow table, written once."""

from __future__ import annotations

import os
from collections.abc import Callable

from netscope.flows.records import FlowRecord
from netscope.sinks.base import FinalFlows, SinkBase, SummaryRows


class _TableExportSink(SinkBase):
    label = ""

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = target

    def _writer(self) -> Callable[[str | os.PathLike[str], list[FlowRecord]], int]:
        raise NotImplementedError

    def finish(self, final: FinalFlows) -> SummaryRows:
        count = self._writer()(self.target, final.records())
        return [(self.label, f"{self.target} ({count} flows)")]


class JsonExportSink(_TableExportSink):
    """The JSON array of flows (SPEC §6)."""

    label = "JSON export"

    def _writer(self) -> Callable[[str | os.PathLike[str], list[FlowRecord]], int]:
        from netscope.sinks.exports import write_json

        return write_json


class CsvExportSink(_TableExportSink):
    """The CSV table of flows (SPEC §6)."""

    label = "CSV export"

    def _writer(self) -> Callable[[str | os.PathLike[str], list[FlowRecord]], int]:
        from netscope.sinks.exports import write_csv

        return write_csv

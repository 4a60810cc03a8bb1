"""Append-only JSON Lines sinks (expired flows now, alerts later).

Lines are flushed as they are written, so a tail -f or a crash sees every line
that was reported; a write failure raises OutputError (exit 1), never silent loss.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import IO, Any

from netscope.errors import OutputError
from netscope.flows.layout import REASON_EVICTED, REASON_TIMEOUT
from netscope.flows.records import records_from_rows
from netscope.flows.table import ExpiredBatch
from netscope.sinks.base import FinalFlows, SinkBase, SummaryRows
from netscope.sinks.targets import open_in_place_text


class JsonlWriter:
    """One JSON object per line, flushed after each group of writes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.lines = 0
        try:
            # Devices, FIFOs and stdout are written through; a file is created 0644 under
            # the umask or truncated in place (netscope.sinks.targets).
            self._file: IO[str] = open_in_place_text(self.path)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot open for writing: {exc.strerror}") from None

    def write_many(self, objects: list[dict[str, Any]]) -> None:
        if not objects:
            return
        try:
            self._file.write("".join(json.dumps(o, separators=(",", ":")) + "\n" for o in objects))
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed: {exc.strerror}") from None
        self.lines += len(objects)

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed: {exc.strerror}") from None


# The ``reason`` words the original NetScope wrote (its ExpiredFlowReason): a pipeline
# filtering on ``reason == "eviction"`` keeps working.
EXPORT_REASONS = {REASON_TIMEOUT: "timeout", REASON_EVICTED: "eviction"}


class ExpiredFlowsSink(SinkBase):
    """``--expired-flows-jsonl``: each flow removed from the table (timeout, eviction)
    becomes a line with its reason, as it happens (a :class:`~netscope.sinks.base.Sink`)."""

    wants_expired = True

    def __init__(self, path: str | os.PathLike[str], seed: int = 0) -> None:
        self.writer = JsonlWriter(path)
        self.seed = seed  # Community ID seed

    def on_expired(self, expired: ExpiredBatch) -> None:
        records = records_from_rows(
            expired.keys, expired.i64, expired.f64, expired.u8, seed=self.seed
        )
        objects = []
        for rec, reason in zip(records, expired.reason.tolist(), strict=True):
            obj = rec.to_dict()
            obj["reason"] = EXPORT_REASONS.get(reason, str(reason))
            objects.append(obj)
        self.writer.write_many(objects)

    __call__ = on_expired  # usable as a plain FlowTable.on_expired handler

    def finish(self, final: FinalFlows) -> SummaryRows:
        self.writer.close()
        return [("Expired flows", f"{self.writer.path} ({self.writer.lines} flows)")]

    def close(self) -> None:
        with contextlib.suppress(OutputError):
            self.writer.close()

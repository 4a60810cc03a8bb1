"""Append-only JSON Lines sinks (expired flows now, alerts later).

Lines are flushed as they are written, so a tail -f or a crash sees every line
that was reported; a write failure raises OutputError (exit 1), never silent loss.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

from netscope.errors import OutputError
from netscope.flows.layout import REASON_NAMES
from netscope.flows.records import records_from_rows
from netscope.flows.table import ExpiredBatch
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


class ExpiredFlowsSink:
    """FlowTable.on_expired handler: each removed flow becomes a line with its reason."""

    def __init__(self, path: str | os.PathLike[str], seed: int = 0) -> None:
        self.writer = JsonlWriter(path)
        self.seed = seed  # Community ID seed

    def __call__(self, batch: ExpiredBatch) -> None:
        records = records_from_rows(batch.keys, batch.i64, batch.f64, batch.u8, seed=self.seed)
        objects = []
        for rec, reason in zip(records, batch.reason.tolist(), strict=True):
            obj = rec.to_dict()
            obj["reason"] = REASON_NAMES.get(reason, str(reason))
            objects.append(obj)
        self.writer.write_many(objects)

    def close(self) -> None:
        self.writer.close()

"""Attach a Zeek conn.log export to a run (offline or live) and close it at the end.

Kept out of the runners so their edits stay one line each: ``ZeekConnExport.attach``
returns None unless ``--export-zeek-conn``/``--export-zeek-conn-json`` was given.
"""

from __future__ import annotations

from typing import Any

from netscope.config import Config, FlowConfig
from netscope.errors import OutputError, UsageError


def zeek_timeout(cfg: Config) -> float | None:
    """The user's flow timeout, or None (Zeek's per-protocol defaults) when it is the
    default: a config cannot tell "not set" from "set to the default" (docs/exports.md)."""
    if cfg.flow.timeout_secs == FlowConfig().timeout_secs:
        return None
    return cfg.flow.timeout_secs


class ZeekConnExport:
    """The tracker (a batch observer) and the conn.log sink it feeds."""

    def __init__(self, cfg: Config) -> None:
        # imported here: runs without a conn.log never load the Zeek kernel module
        from netscope.flows.zeek import ZeekConnTracker
        from netscope.sinks.zeek_conn import ZeekConnSink

        out = cfg.output
        tsv = str(out.export_zeek_conn) if out.export_zeek_conn is not None else None
        jsonl = str(out.export_zeek_conn_json) if out.export_zeek_conn_json is not None else None
        self.sink = ZeekConnSink(tsv, jsonl)
        self.tracker = ZeekConnTracker(zeek_timeout(cfg))
        self.tracker.on_finished = self.sink

    @classmethod
    def attach(cls, cfg: Config, processor: Any) -> ZeekConnExport | None:
        """Create the export and register its tracker with ``processor`` (inline only)."""
        out = cfg.output
        if out.export_zeek_conn is None and out.export_zeek_conn_json is None:
            return None
        if cfg.pipeline.enabled:
            raise UsageError(
                "--export-zeek-conn needs the single-threaded engine (pipeline.enabled = false)"
            )
        export = cls(cfg)
        processor.observers.append(export.tracker)
        return export

    def finish(self) -> tuple[list[tuple[str, str]], OutputError | None]:
        """Flush the open connections, close the logs; summary rows and any failure."""
        rows: list[tuple[str, str]] = []
        try:
            self.tracker.finish()
        except OutputError as exc:
            return rows, exc
        try:
            self.sink.close()
        except OutputError as exc:
            return rows, exc
        for writer in self.sink.writers:
            rows.append(("Zeek conn.log", f"{writer.path} ({writer.lines} connections)"))
        return rows, None

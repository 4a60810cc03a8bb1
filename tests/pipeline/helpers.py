"""Run a capture through the inline and the pipeline processors and compare results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netscope.flows.records import records_from_rows
from netscope.flows.table import FlowOptions
from netscope.pipeline.inline import InlineProcessor
from netscope.pipeline.sharded import PipelineProcessor
from netscope.sinks.exports import sorted_for_export
from netscope.sources import open_capture_file


def run_processor(path: str | Path, processor: Any) -> Any:
    """Feed every batch of ``path`` into ``processor`` and finish it."""
    source = open_capture_file(path)
    try:
        for batch in source.batches():
            processor.feed(batch)
        processor.finish()
    finally:
        source.close()
    return processor


def export_dicts(processor: Any) -> list[dict[str, Any]]:
    """The flow objects a JSON export would contain, in export order."""
    t = processor.flows
    recs = records_from_rows(t.keys, t.i64, t.f64 if t.deep else None, t.u8, t.live_rows())
    return [r.to_dict() for r in sorted_for_export(recs)]


def canonical(flows: list[dict[str, Any]]) -> list[str]:
    """Order-independent form (ties in bytes_total may list flows in another order)."""
    return sorted(repr(sorted(f.items())) for f in flows)


def inline_and_pipeline(
    path: str | Path, workers: int, options: FlowOptions | None = None, **kw: Any
) -> tuple[InlineProcessor, PipelineProcessor]:
    opts = options or FlowOptions()
    inline = run_processor(path, InlineProcessor(opts))
    pipe = run_processor(path, PipelineProcessor(opts, workers, **kw))
    return inline, pipe

"""Pipeline results equal inline results, flow for flow (issue 6).

Library-level processors for the bulk (every corpus file, generated traces, 2/3/4 workers,
with and without short timeouts so inactivity expiry and 5-tuple reuse are exercised), and the
CLI for a few files (exports and the stats lines, which only differ by the dispatch-drops field
and the summary title).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from netscope.errors import NetScopeError
from netscope.flows import layout as L
from netscope.flows.records import records_from_rows
from netscope.flows.table import ExpiredBatch, FlowOptions
from netscope.pipeline.inline import InlineProcessor
from netscope.pipeline.sharded import PipelineProcessor
from netscope.sources import open_capture_file

from .helpers import canonical, export_dicts, run_processor

WORKERS = (2, 3, 4)


def _readable(path: Path) -> bool:
    try:
        open_capture_file(path).close()
    except NetScopeError:
        return False
    return True


def _assert_same(path: Path, options: FlowOptions, workers: int) -> None:
    inline = run_processor(path, InlineProcessor(options))
    pipe = run_processor(path, PipelineProcessor(options, workers))
    a, b = export_dicts(inline), export_dicts(pipe)
    assert len(a) == len(b)
    assert canonical(a) == canonical(b)
    # export order: bytes_total descending in both (ties may differ)
    assert [f["bytes_total"] for f in a] == [f["bytes_total"] for f in b]
    ca, cb = inline.analyzer.counters, pipe.analyzer.counters
    assert (ca.packets, ca.parse_errors, ca.bytes_wire, ca.bytes_captured) == (
        cb.packets,
        cb.parse_errors,
        cb.bytes_wire,
        cb.bytes_captured,
    )
    assert ca.unsupported_linktypes == cb.unsupported_linktypes
    assert inline.flows.totals == pipe.flows.totals
    assert pipe.dispatch_drops == 0


def test_corpus_file_equal(corpus_capture: Path) -> None:
    if not _readable(corpus_capture):
        pytest.skip("the readers reject this file (covered by the reader tests)")
    for workers in WORKERS:
        _assert_same(corpus_capture, FlowOptions(), workers)


@pytest.mark.parametrize("workers", WORKERS)
def test_generated_equal(gen_trace: Path, gen_trace_dense: Path, workers: int) -> None:
    for path in (gen_trace, gen_trace_dense):
        _assert_same(path, FlowOptions(), workers)
        # 1 s timeout: many sweeps, expiries and recreated flows; scale mode too
        _assert_same(path, FlowOptions(timeout_secs=1.0), workers)
        _assert_same(path, FlowOptions(rtt=False, retrans=False, out_of_order=False), workers)


def _collect_expired(processor: Any) -> list[dict[str, Any]]:
    """Attach an expired-flows sink; returns the list it fills."""
    seen: list[dict[str, Any]] = []

    def sink(b: ExpiredBatch) -> None:
        for rec, reason in zip(
            records_from_rows(b.keys, b.i64, b.f64, b.u8), b.reason.tolist(), strict=True
        ):
            seen.append({**rec.to_dict(), "reason": reason})

    if isinstance(processor, InlineProcessor):
        processor.flows.on_expired = sink
    else:
        processor.on_expired = sink
    return seen


def test_expired_flows_equal(gen_trace: Path) -> None:
    """The expired-flows stream holds the same flows (order across shards may differ)."""
    opts = FlowOptions(timeout_secs=1.0, keep_expired=True)
    results = []
    for proc in (InlineProcessor(opts), PipelineProcessor(opts, 3)):
        seen = _collect_expired(proc)
        run_processor(gen_trace, proc)
        results.append(canonical(seen))
    assert results[0] and results[0] == results[1]


def test_ticks_and_top_flows_equal(gen_trace_dense: Path) -> None:
    """Stats ticks on capture time: same totals and the same top list, tick by tick."""
    interval = 200_000_000
    inline_ticks: list[Any] = []
    inline = InlineProcessor(FlowOptions(), interval)
    inline_top: list[list[tuple[int, int]]] = []

    def on_inline(tick: Any) -> None:
        inline_ticks.append(tick)
        t = inline.flows
        rows = t.top_rows(5)
        inline_top.append(
            [(int(t.i64[r, L.I_DELTA_BYTES]), int(t.keys[r, L.K_META])) for r in rows]
        )
        t.reset_delta(rows)

    inline.on_tick = on_inline
    run_processor(gen_trace_dense, inline)
    for workers in WORKERS:
        pipe = PipelineProcessor(FlowOptions(), workers, interval, top_n=5)
        got: list[Any] = []
        pipe.on_tick = got.append
        lines: list[list[int]] = []
        orig = pipe._deliver

        def spy(pending: Any, orig: Any = orig, lines: list[list[int]] = lines) -> None:
            parts = pending.parts.values()
            top = sorted((e[0] for p in parts for e in p.top), reverse=True)[:5]
            lines.append(top)
            orig(pending)

        pipe._deliver = spy  # type: ignore[method-assign]
        run_processor(gen_trace_dense, pipe)
        assert got == inline_ticks
        assert lines == [[d for d, _ in top] for top in inline_top]


def _cli_export(cli: Any, path: Path, out: Path, *extra: str) -> tuple[list[Any], str]:
    res = cli(
        ["--read-pcap", str(path), "--quiet", "--export-json", str(out), "--stats",
         "--top-flows", "3", *extra]
    )  # fmt: skip
    assert res.code == 0, res.stderr
    return json.loads(out.read_text()), res.stdout


@pytest.mark.parametrize("name", ["ndpi-reddit.pcap", "pcpp-VlanPackets.pcap", "dpkt-http.pcap"])
def test_cli_equal(cli: Any, corpus: Any, tmp_path: Path, name: str) -> None:
    path = corpus(name)
    a, out_a = _cli_export(cli, path, tmp_path / "inline.json")
    for workers in ("2", "4"):
        b, out_b = _cli_export(cli, path, tmp_path / f"w{workers}.json", "--workers", workers)
        assert canonical(a) == canonical(b)
        assert "Capture complete (pipeline mode)." in out_b
        assert "  Dispatch drops:    0" in out_b
        stripped = re.sub(r" drops=\d+ \(total=\d+\)", "", out_b)
        stripped = stripped.replace(" (pipeline mode)", "")
        stripped = re.sub(r"  Dispatch drops: +0\n", "", stripped)
        stripped = stripped.replace(f"Pipeline: {workers} worker shards\n", "")  # start-up line
        assert stripped.replace(str(tmp_path / f"w{workers}.json"), "X") == out_a.replace(
            str(tmp_path / "inline.json"), "X"
        )


def test_cli_generated_equal(cli: Any, tmp_path: Path, gen_trace: Path) -> None:
    a, _ = _cli_export(cli, gen_trace, tmp_path / "inline.json")
    b, out = _cli_export(cli, gen_trace, tmp_path / "p.json", "--pipeline", "--workers", "3")
    assert canonical(a) == canonical(b)
    assert re.search(r"drops=0 \(total=0\)", out)

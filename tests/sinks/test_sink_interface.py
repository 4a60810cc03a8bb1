"""The run loop feeds any Sink through its hooks, without knowing what it is."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netscope.config import load_config
from netscope.errors import OutputError
from netscope.run_inputs import FileInput
from netscope.run_loop import RunLoop
from netscope.sinks.base import FinalFlows, Sink, SinkBase, SummaryRows, build_sinks

SRC = str(Path(__file__).resolve().parents[2] / "src")


class Recorder(SinkBase):
    wants_batches = True
    wants_expired = True
    wants_ticks = True

    def __init__(self, fail: bool = False) -> None:
        self.batches = 0
        self.packets = 0
        self.expired = 0
        self.ticks = 0
        self.flows = -1
        self.closed = False
        self.fail = fail

    def on_batch(self, batch: Any, cols: Any) -> None:
        self.batches += 1
        self.packets += batch.count
        assert cols is not None and cols.capacity >= batch.count

    def on_expired(self, expired: Any) -> None:
        self.expired += len(expired.reason)

    def on_tick(self, tick: Any) -> None:
        self.ticks += 1

    def finish(self, final: FinalFlows) -> SummaryRows:
        if self.fail:
            raise OutputError("recorder: disk full")
        self.flows = len(final.records())
        return [("Recorder", f"{self.flows} flows")]

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sink") / "t.pcap"
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", "--packets", "5000", "--flows", "30", str(path)],
        check=True,
        capture_output=True,
        env={"PYTHONPATH": SRC},
    )
    return path


def run(trace: Path, sink: Sink, **settings: Any) -> tuple[int | Exception, str]:
    overrides = {"capture.read_pcap": str(trace), "output.quiet": True}
    overrides.update({k.replace("__", "."): v for k, v in settings.items()})
    cfg = load_config(None, overrides)
    out = io.StringIO()
    try:
        code: int | Exception = RunLoop(cfg, out, io.StringIO()).execute(
            FileInput, lambda c: [*build_sinks(c), sink], live=False
        )
    except OutputError as exc:
        code = exc
    return code, out.getvalue()


def test_every_hook_is_called(trace: Path) -> None:
    sink = Recorder()
    code, out = run(trace, sink, stats__enabled=True, flow__timeout_secs=1.0)
    assert code == 0
    assert sink.packets == 5000 and sink.batches >= 1
    assert sink.ticks > 0 and sink.expired > 0
    assert sink.flows > 0 and sink.closed
    assert f"Recorder:          {sink.flows} flows" in out


def test_a_failing_sink_still_gets_the_summary_and_close(trace: Path) -> None:
    sink = Recorder(fail=True)
    code, out = run(trace, sink)
    assert isinstance(code, OutputError) and "disk full" in str(code)
    assert "Packets captured:  5000" in out and sink.closed


def test_sinks_are_the_protocol() -> None:
    assert isinstance(Recorder(), Sink)

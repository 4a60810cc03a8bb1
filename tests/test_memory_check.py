"""The pre-allocation estimate and the refusal of runs that cannot fit in memory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netscope import memory
from netscope.config import Config
from netscope.errors import UsageError
from netscope.flows.table import FlowOptions, FlowTable
from netscope.runner import flow_options

GB = 10**9


def _cfg(**overrides: Any) -> Config:
    return Config.from_sources({}, {"capture.read_pcap": "x.pcap", **overrides})


@pytest.fixture
def available(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """``available(n)`` makes /proc/meminfo report ``n`` bytes available."""
    monkeypatch.delenv(memory.ALLOW_ENV, raising=False)

    def set_to(n: int) -> None:
        monkeypatch.setattr(memory, "available_bytes", lambda: n)

    return set_to


def test_meminfo_is_read() -> None:
    avail = memory.available_bytes()
    if not Path(memory.MEMINFO).exists():
        assert avail is None
    else:
        assert avail is not None and avail > 0


def test_estimate_counts_one_flow_table_per_shard() -> None:
    cfg = _cfg(**{"pipeline.workers": 16, "pipeline.enabled": True, "flow.max_flows": 10**6})
    parts = {p.what: p for p in memory.estimate(cfg)}
    tables = parts["flow tables"]
    assert tables.copies == 16
    assert tables.each == FlowTable.start_bytes(flow_options(cfg))
    assert parts["pipeline queues"].copies == 16


def test_estimate_includes_the_web_ring_and_anomaly_tables() -> None:
    cfg = _cfg(
        **{"web.enabled": True, "web.packet_buffer": 1000, "analysis.anomalies.enabled": True}
    )
    parts = {p.what: p.total for p in memory.estimate(cfg)}
    assert parts["web packet ring"] >= 1000 * (256 + 192)
    assert parts["anomaly tables"] > 10**6


def test_synthetic_estimate_is_the_presized_table() -> None:
    cfg = Config.from_sources({}, {"synthetic_flows": 5000})
    (part,) = memory.estimate(cfg)
    opts = FlowOptions(
        max_flows=5000, initial_flows=5000, rtt=False, retrans=False, out_of_order=False
    )
    assert part.total == FlowTable.start_bytes(opts)


def test_run_that_does_not_fit_is_refused_naming_the_knobs(
    available: Callable[[int], None],
) -> None:
    available(200 * 10**6)
    cfg = _cfg(**{"pipeline.workers": 16, "pipeline.enabled": True, "flow.max_flows": 10**6})
    with pytest.raises(UsageError) as info:
        memory.check_run(cfg)
    text = info.value.one_line()
    assert "would pre-allocate" in text and "but only 200 MB is available" in text
    assert "flow tables 16 x" in text
    assert "--workers" in text and "NETSCOPE_ALLOW_LARGE_ALLOC=1" in text


def test_override_lets_it_run(available: Callable[[int], None], monkeypatch: Any) -> None:
    available(1)
    monkeypatch.setenv(memory.ALLOW_ENV, "1")
    memory.check_run(_cfg())


def test_run_that_fits_passes_and_warns_when_full_tables_would_not(
    available: Callable[[int], None], caplog: pytest.LogCaptureFixture
) -> None:
    available(2 * GB)
    with caplog.at_level(logging.WARNING, logger="netscope.memory"):
        memory.check_run(_cfg())  # default 100k flows: ~50 MB when full
        assert not caplog.records
        memory.check_run(_cfg(**{"flow.max_flows": 10**8}))
    (record,) = caplog.records
    assert "--max-flows 100000000" in record.getMessage()
    assert "stop growing" in record.getMessage()


def test_cli_refuses_a_huge_packet_ring(tmp_path: Path, cli: Callable[..., Any]) -> None:
    """1e6 packets x 256 KiB = 262 GB: more than any test machine has."""
    conf = tmp_path / "big.toml"
    conf.write_text(
        "[web]\nenabled = true\npacket_buffer = 1000000\npayload_bytes = 262144\n",
        encoding="utf-8",
    )
    res = cli(["--config", str(conf), "--read-pcap", str(tmp_path / "none.pcap"), "--quiet"])
    assert res.code == 2 and "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert line.startswith("error: this run would pre-allocate 262.") and "\n" not in line
    assert "web packet ring" in line and "NETSCOPE_ALLOW_LARGE_ALLOC=1" in line

"""IPFIX export counters on /metrics and on the [stats] line agree with the summary."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests_support import run_netscope as run_cli

from .conftest import WebRun, free_port, start_web


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the test uses it


def _ipfix_row(out: str) -> tuple[int, int, int]:
    m = re.search(r"IPFIX export:\s+\S+ \((\d+) flow records in \d+ messages: (\d+) sent, "
                  r"(\d+) dropped\)", out)  # fmt: skip
    assert m, out
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


@pytest.mark.slow
def test_metrics_count_ipfix_records_and_drops(small_trace: Path, web_run: list[WebRun]) -> None:
    port = free_port()
    target = f"127.0.0.1:{_closed_udp_port()}"
    run = start_web(["--read-pcap", str(small_trace), "--quiet", "--export-ipfix", target], port)
    web_run.append(run)
    run.wait_for("dashboard: input finished")

    async def fetch() -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(run.url + "metrics") as resp,
        ):
            return await resp.text()

    text = asyncio.run(fetch())
    rc, out, err = run.stop()
    assert rc == 0, err
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    records, sent, dropped = _ipfix_row(out)
    assert records > 0 and dropped > 0  # nothing listens on that port
    assert samples["netscope_ipfix_records_total"] == records
    assert samples["netscope_ipfix_messages_sent_total"] == sent
    assert samples["netscope_ipfix_dropped_messages_total"] == dropped


def test_stats_line_shows_ipfix_drops(small_trace: Path) -> None:
    target = f"tcp://127.0.0.1:{_closed_udp_port()}"  # no TCP listener there either
    run = run_cli(["--read-pcap", str(small_trace), "--quiet", "--stats", "--export-ipfix", target])
    assert run.code == 0, run.stderr
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("[stats]")]
    assert lines and all(" ipfix_drops=" in ln for ln in lines)
    last_total = int(re.findall(r"ipfix_drops=\d+ \(total=(\d+)\)", lines[-1])[0])
    _, _, dropped = _ipfix_row(run.stdout)
    assert last_total <= dropped  # the final flush comes after the last line

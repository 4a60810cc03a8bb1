"""Flow exports (SPEC §6): JSON/CSV shape and order, atomic writes, expired-flow JSONL,
the stats line, and the library API that shares them — end to end through the CLI on a
generated trace whose ground truth is known."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest

import netscope
from netscope.errors import OutputError
from netscope.flows.records import FLOW_FIELDS
from netscope.gen.traffic import generate
from netscope.sinks import exports
from netscope.sinks.atomic import atomic_text_file
from tests_support import run_netscope

TRACE_PACKETS = 4000
TRACE_FLOWS = 120


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("exports") / "t.pcap"
    truth = generate(path, packets=TRACE_PACKETS, flows=TRACE_FLOWS, seed=11)
    return path, truth


def _truth_by_key(truth: object) -> dict[tuple, object]:
    return {
        (f.protocol, f.a_ip, f.a_port, f.b_ip, f.b_port): f
        for f in truth.table_flows()  # type: ignore[attr-defined]
    }


def test_json_and_csv_round_trip_sorted_and_exact(trace, tmp_path):
    path, truth = trace
    out_json, out_csv = tmp_path / "f.json", tmp_path / "f.csv"
    res = run_netscope(
        [
            "--read-pcap",
            str(path),
            "--quiet",
            "--flow-timeout-s",
            "0",
            "--export-json",
            str(out_json),
            "--export-csv",
            str(out_csv),
        ]
    )
    assert res.code == 0, res.stderr
    flows = json.loads(out_json.read_text())
    expected = _truth_by_key(truth)
    assert len(flows) == len(expected)
    # sorted by bytes_total, largest first
    totals = [f["bytes_total"] for f in flows]
    assert totals == sorted(totals, reverse=True)
    for f in flows:
        assert list(f) == list(FLOW_FIELDS)
        key = (
            f["protocol"],
            f["endpoint_a"]["ip"],
            f["endpoint_a"]["port"],
            f["endpoint_b"]["ip"],
            f["endpoint_b"]["port"],
        )
        t = expected[key]
        assert (f["packets_a_to_b"], f["packets_b_to_a"]) == (t.packets_a_to_b, t.packets_b_to_a)
        assert (f["bytes_a_to_b"], f["bytes_b_to_a"]) == (t.bytes_a_to_b, t.bytes_b_to_a)
        assert f["packets_total"] == t.packets_a_to_b + t.packets_b_to_a
        assert f["bytes_total"] == f["bytes_a_to_b"] + f["bytes_b_to_a"]
        if f["protocol"] == "udp":
            assert f["tcp_state"] is None and f["rtt_ewma_ms"] is None
    # CSV: same rows, same order, flattened endpoints, readable by the csv module
    with out_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == exports.CSV_COLUMNS
    assert len(rows) == len(flows)
    for row, f in zip(rows, flows, strict=True):
        assert row["endpoint_a_ip"] == f["endpoint_a"]["ip"]
        assert int(row["endpoint_b_port"]) == f["endpoint_b"]["port"]
        assert int(row["bytes_total"]) == f["bytes_total"]
        assert (row["rtt_ewma_ms"] == "") == (f["rtt_ewma_ms"] is None)
    assert "JSON export:" in res.stdout and "CSV export:" in res.stdout


def test_pandas_reads_the_csv(trace, tmp_path):
    import pandas as pd  # a test dependency: a missing pandas is a failure, not a skip

    path, _ = trace
    out_csv = tmp_path / "f.csv"
    assert (
        run_netscope(["--read-pcap", str(path), "--quiet", "--export-csv", str(out_csv)]).code == 0
    )
    frame = pd.read_csv(out_csv)
    assert list(frame.columns) == list(exports.CSV_COLUMNS)


def test_crash_during_export_leaves_no_partial_file(tmp_path):
    target = tmp_path / "flows.json"
    target.write_text("previous complete export\n")
    with pytest.raises(RuntimeError), atomic_text_file(target) as out:
        out.write('[{"half": ')
        raise RuntimeError("crash mid-export")
    assert target.read_text() == "previous complete export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["flows.json"]  # no temp file left


def test_export_to_unwritable_location_is_exit_1_after_summary(trace, tmp_path):
    path, _ = trace
    res = run_netscope(
        [
            "--read-pcap",
            str(path),
            "--quiet",
            "--export-json",
            str(tmp_path / "no" / "dir" / "f.json"),
        ]
    )
    assert res.code == 1
    assert "Capture complete." in res.stdout  # everything processed is still reported
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "f.json" in lines[0]


def test_atomic_write_failure_raises_output_error(tmp_path):
    with pytest.raises(OutputError), atomic_text_file(tmp_path / "missing" / "x.json") as out:
        out.write("x")


def test_expired_flows_jsonl_reasons(tmp_path):
    """Flows idle past the timeout are written with reason timeout; max_flows evicts."""
    from netscope.gen import packets as P
    from netscope.gen.pcapfile import write_pcap

    frames = []
    t0 = 1_700_000_000 * 10**9
    for k in range(5):  # five UDP flows at t0, t0+1s, …
        src = f"10.0.0.{k + 1}"
        frames.append(
            (
                t0 + k * 10**9,
                P.ether_ip(src, "10.9.9.9", 17, P.udp(src, "10.9.9.9", 1000 + k, 53, b"q")),
            )
        )
    # a late packet 100 s later triggers the sweep for everything idle >= 30 s
    frames.append(
        (
            t0 + 100 * 10**9,
            P.ether_ip("10.0.0.99", "10.9.9.9", 17, P.udp("10.0.0.99", "10.9.9.9", 9, 53, b"q")),
        )
    )
    pcap = tmp_path / "idle.pcap"
    write_pcap(pcap, frames)
    out = tmp_path / "expired.jsonl"
    res = run_netscope(
        [
            "--read-pcap",
            str(pcap),
            "--quiet",
            "--flow-timeout-s",
            "30",
            "--expired-flows-jsonl",
            str(out),
        ]
    )
    assert res.code == 0, res.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["reason"] for x in lines] == ["timeout"] * 5
    assert [
        x["endpoint_a"]["port"] if x["endpoint_a"]["ip"] != "10.9.9.9" else x["endpoint_b"]["port"]
        for x in lines
    ] == [1000, 1001, 1002, 1003, 1004]
    assert all(set(FLOW_FIELDS) | {"reason"} == set(x) for x in lines)
    # eviction: max 2 flows → the 3 oldest of the 6 are evicted in order, 1 left at exit … plus
    out2 = tmp_path / "evicted.jsonl"
    res = run_netscope(
        [
            "--read-pcap",
            str(pcap),
            "--quiet",
            "--flow-timeout-s",
            "0",
            "--max-flows",
            "2",
            "--expired-flows-jsonl",
            str(out2),
        ]
    )
    assert res.code == 0, res.stderr
    evicted = [json.loads(line) for line in out2.read_text().splitlines()]
    assert [x["reason"] for x in evicted] == ["eviction"] * 4  # the original's word
    assert "Expired flows:" in res.stdout and "(4 flows)" in res.stdout


def test_stats_lines_and_top_flows(trace):
    path, _ = trace
    res = run_netscope(
        [
            "--read-pcap",
            str(path),
            "--quiet",
            "--stats",
            "--stats-interval-ms",
            "500",
            "--top-flows",
            "3",
        ]
    )
    assert res.code == 0, res.stderr
    stats = [ln for ln in res.stdout.splitlines() if ln.startswith("[stats] ")]
    assert stats, res.stdout
    pattern = re.compile(
        r"^\[stats\] \d+\.\d\d Mbps \| \d+ pps \| \d+ flows \| "
        r"kdrop=0 \(total=0\) ifdrop=0 \(total=0\)$"
    )
    assert all(pattern.match(ln) for ln in stats), stats[:3]
    ranks = [ln for ln in res.stdout.splitlines() if re.match(r"^  [123]\. (tcp|udp) ", ln)]
    assert ranks and all(ln.endswith(" Mbps") for ln in ranks)
    # no more than 3 ranked lines follow each stats line
    assert max(int(ln.split(".")[0]) for ln in ranks) <= 3


def test_library_api_matches_cli_export(trace, tmp_path):
    path, _ = trace
    out_json = tmp_path / "cli.json"
    assert (
        run_netscope(
            [
                "--read-pcap",
                str(path),
                "--quiet",
                "--flow-timeout-s",
                "0",
                "--max-flows",
                "0",
                "--export-json",
                str(out_json),
            ]
        ).code
        == 0
    )
    result = netscope.analyze(path)
    assert result.to_records() == json.loads(out_json.read_text())
    assert result.counters.packets == TRACE_PACKETS
    assert len(result) == len(result.flows) and result.top(2) == result.flows[:2]
    lib_json = tmp_path / "lib.json"
    result.export_json(lib_json)
    assert json.loads(lib_json.read_text()) == json.loads(out_json.read_text())
    assert os.path.getsize(lib_json) > 0


def test_csv_row_has_every_csv_column(trace) -> None:
    """The fast CSV row builder and the column list (from the one flow schema) agree: a
    column added to the schema (community_id was) must reach the CSV rows too."""
    import netscope

    path, _ = trace
    rec = netscope.analyze(path).flows[0]
    row = dict(zip(exports.CSV_COLUMNS, exports.csv_row(rec), strict=True))
    assert row["community_id"] == rec.community_id and rec.community_id

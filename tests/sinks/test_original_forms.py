"""Export fields in the original NetScope's forms, through the CLI (issue 14).

``client`` is ``"a_to_b"`` / ``"b_to_a"``, ``rtt_samples`` is a count (0, never null),
expired-flow ``reason`` is ``timeout`` / ``eviction``, and CSV floats are fixed
precision (``.6f`` seconds, ``.3f`` bps and milliseconds).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netscope.gen import packets as pk
from netscope.gen.pcapfile import write_pcap

LOW, HIGH = "192.0.2.1", "192.0.2.200"
T0 = 1_700_000_000 * 10**9


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: str) -> bytes:
    return pk.ether_ip(src, dst, 6, pk.tcp(src, dst, sport, dport, seq, ack, flags))


def udp(src: str, dst: str, sport: int, dport: int) -> bytes:
    return pk.ether_ip(src, dst, 17, pk.udp(src, dst, sport, dport, b"x"))


def capture(path: Path) -> None:
    """Two TCP handshakes — one opened by A (the lower endpoint), one by B — and a UDP flow."""
    frames = [
        tcp(LOW, HIGH, 40000, 80, 100, 0, "S"),  # A opens: client a_to_b
        tcp(HIGH, LOW, 80, 40000, 500, 101, "SA"),
        tcp(LOW, HIGH, 40000, 80, 101, 501, "A"),
        tcp(HIGH, LOW, 50000, 443, 700, 0, "S"),  # B (the higher address) opens: b_to_a
        tcp(LOW, HIGH, 443, 50000, 900, 701, "SA"),
        tcp(HIGH, LOW, 50000, 443, 701, 901, "A"),
        udp(LOW, HIGH, 5353, 53),
        udp(HIGH, LOW, 53, 5353),
    ]
    write_pcap(path, [(T0 + i * 1_234_567_000, f) for i, f in enumerate(frames)])


def by_port(flows: list[dict]) -> dict[int, dict]:
    return {f["endpoint_b"]["port"] if "endpoint_b" in f else 0: f for f in flows}


def test_json_client_words_and_rtt_samples_count(tmp_path: Path, cli: Callable[..., Any]) -> None:
    pcap, out = tmp_path / "t.pcap", tmp_path / "f.json"
    capture(pcap)
    res = cli(["--read-pcap", str(pcap), "--quiet", "--export-json", str(out)])
    assert res.code == 0, res.stderr
    flows = {(f["protocol"], f["endpoint_a"]["port"]): f for f in json.loads(out.read_text())}
    assert flows[("tcp", 40000)]["client"] == "a_to_b"
    assert flows[("tcp", 443)]["client"] == "b_to_a"
    assert flows[("tcp", 40000)]["rtt_samples"] >= 1
    udp_flow = flows[("udp", 5353)]
    assert udp_flow["client"] is None
    assert udp_flow["rtt_samples"] == 0  # a count, as the original writes it — not null
    assert udp_flow["rtt_ewma_ms"] is None


def test_csv_fixed_precision_and_words(tmp_path: Path, cli: Callable[..., Any]) -> None:
    pcap, out = tmp_path / "t.pcap", tmp_path / "f.csv"
    capture(pcap)
    res = cli(["--read-pcap", str(pcap), "--quiet", "--export-csv", str(out)])
    assert res.code == 0, res.stderr
    with out.open(newline="") as fh:
        rows = {(r["protocol"], r["endpoint_a_port"]): r for r in csv.DictReader(fh)}
    seconds = re.compile(r"^\d+\.\d{6}$")
    three = re.compile(r"^\d+\.\d{3}$")
    for row in rows.values():
        for column in ("first_seen", "last_seen", "duration_secs"):
            assert seconds.match(row[column]), (column, row[column])
        assert three.match(row["avg_bps"]), row["avg_bps"]
    tcp_row = rows[("tcp", "40000")]
    assert tcp_row["client"] == "a_to_b"
    assert tcp_row["first_seen"] == "1700000000.000000"
    assert tcp_row["duration_secs"] == "2.469134"  # 2 × 1.234567 s
    assert three.match(tcp_row["rtt_ewma_ms"]) and three.match(tcp_row["rtt_last_ms"])
    assert rows[("tcp", "443")]["client"] == "b_to_a"
    udp_row = rows[("udp", "5353")]
    assert (udp_row["client"], udp_row["rtt_ewma_ms"], udp_row["rtt_samples"]) == ("", "", "0")


def test_expired_flow_reason_eviction(tmp_path: Path, cli: Callable[..., Any]) -> None:
    pcap, out = tmp_path / "t.pcap", tmp_path / "expired.jsonl"
    capture(pcap)
    res = cli(
        ["--read-pcap", str(pcap), "--quiet", "--max-flows", "1", "--expired-flows-jsonl", str(out)]
    )
    assert res.code == 0, res.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["reason"] for x in lines] == ["eviction", "eviction"]
    assert all(isinstance(x["rtt_samples"], int) for x in lines)


def test_csv_row_follows_the_columns_and_the_json_values() -> None:
    """The CSV row is built straight from the record: pin it to the JSON object's values."""
    from netscope.flows.records import FlowRecord
    from netscope.sinks.exports import CSV_COLUMNS, csv_row, flatten

    rec = FlowRecord(
        "tcp", "2001:db8::1", 443, "192.0.2.9", 55000, T0 + 123_456_789, T0 + 2_123_457_289,
        40, 50, 30_000, 42_000, "established", "b_to_a", 2, 1, 1.2349, 0.5, 0.9999, 7,
    )  # fmt: skip
    row = dict(zip(CSV_COLUMNS, csv_row(rec), strict=True))
    flat = flatten(rec.to_dict())
    assert set(row) == set(flat)
    for column in ("first_seen", "last_seen", "duration_secs"):
        assert abs(float(row[column]) - flat[column]) < 1e-6, column
    assert row["first_seen"] == "1700000000.123457"  # half-up at the microsecond
    assert row["duration_secs"] == "2.000001"
    assert (row["rtt_last_ms"], row["rtt_min_ms"], row["rtt_ewma_ms"]) == (
        "1.235",
        "0.500",
        "1.000",
    )
    assert row["avg_bps"] == f"{flat['avg_bps']:.3f}"
    for column in (
        set(row)
        - {"first_seen", "last_seen", "duration_secs", "avg_bps"}
        - {c for c in row if c.startswith("rtt_") and c.endswith("_ms")}
    ):
        assert row[column] == flat[column], column

"""``netscope --anomalies``: alert lines on stdout, the alerts JSONL, summary rows, switches.

Each test runs the real command in a subprocess (the ``cli`` fixture), on an attack trace
written by the project's generator: a spoofed SYN flood and a port scan merged by time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netscope.gen.traffic import BASE_TS_NS, mixed, port_scan_records, syn_flood_records

FLOOD = "SYN flood suspected: 200 syns, 200 sources to 198.18.0.10:80"
SCAN = "Port scan suspected: 25 ports, 1 hosts from 10.66.0.1"


@pytest.fixture(scope="module")
def attack_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flood (1000 SYNs, 300 sources, 1 s from t0) and, 2 s later, a 100-port scan."""
    path = tmp_path_factory.mktemp("attack") / "attack.pcap"
    _, flood = syn_flood_records("198.18.0.10", 80, sources=300, syns=1000, seed=1)
    scan = port_scan_records("10.66.0.1", "198.18.0.20", range(1, 101), rate_pps=100,
                             start_ts_ns=BASE_TS_NS + 2_000_000_000)  # fmt: skip
    mixed(path, [flood, scan])
    return path


def _alert_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[alert] ")]


def _summary(stdout: str) -> dict[str, str]:
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("  ") and ":" in line:
            label, value = line.strip().split(":", 1)
            rows[label] = value.strip()
    return rows


def test_alerts_printed_and_written(cli, attack_pcap, tmp_path):
    out = tmp_path / "a.jsonl"
    res = cli(
        ["--read-pcap", str(attack_pcap), "--quiet", "--anomalies", "--alerts-jsonl", str(out)]
    )
    assert res.code == 0, res.stderr
    assert _alert_lines(res.stdout) == [f"[alert] {FLOOD}", f"[alert] {SCAN}"]
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(o["kind"], o["description"]) for o in lines] == [
        ("syn_flood", FLOOD),
        ("port_scan", SCAN),
    ]
    assert all(set(o) == {"ts", "kind", "description"} for o in lines)
    # packet time: the 200th SYN (1 ms apart in a 1 s / 1000 SYN flood), the 25th probe
    assert lines[0]["ts"] == pytest.approx((BASE_TS_NS + 199 * 1_000_000) / 1e9, abs=1e-6)
    assert lines[1]["ts"] == pytest.approx((BASE_TS_NS + 2_240_000_000) / 1e9, abs=1e-6)
    summary = _summary(res.stdout)
    assert summary["Alerts"] == "2 (syn_flood 1, port_scan 1)"
    assert summary["Alerts JSONL"] == f"{out} (2 alerts)"
    assert "Anomaly state full" not in summary


def test_no_anomalies_prints_none(cli, attack_pcap):
    res = cli(["--read-pcap", str(attack_pcap), "--quiet", "--no-anomalies"])
    assert res.code == 0, res.stderr
    assert _alert_lines(res.stdout) == []
    assert "Alerts" not in _summary(res.stdout)


def test_alerts_jsonl_without_anomalies_warns_and_writes_nothing(cli, attack_pcap, tmp_path):
    out = tmp_path / "a.jsonl"
    res = cli(["--read-pcap", str(attack_pcap), "--quiet", "--alerts-jsonl", str(out)])
    assert res.code == 0
    assert "--alerts-jsonl is ignored" in res.stderr
    assert not out.exists()


def test_config_file_thresholds_and_switches(cli, attack_pcap, tmp_path):
    """[analysis.anomalies*] keys reach the detector: the scan detector off, and a SYN
    threshold of 500 (still reached by the 1000-SYN flood, later)."""
    config = tmp_path / "netscope.toml"
    config.write_text(
        "[analysis.anomalies]\nenabled = true\n"
        "[analysis.anomalies.syn_flood]\nsyn_threshold = 500\n"
        "[analysis.anomalies.port_scan]\nenabled = false\n",
        encoding="utf-8",
    )
    res = cli(["--read-pcap", str(attack_pcap), "--quiet", "--config", str(config)])
    assert res.code == 0, res.stderr
    assert _alert_lines(res.stdout) == [
        "[alert] SYN flood suspected: 500 syns, 300 sources to 198.18.0.10:80"
    ]


def test_alerts_follow_packet_lines_of_their_batch(cli, attack_pcap):
    """Without --quiet, alert lines come after the per-packet lines of the batch that raised
    them (the trace is one batch), before the summary."""
    res = cli(["--read-pcap", str(attack_pcap), "--anomalies"])
    assert res.code == 0, res.stderr
    lines = res.stdout.splitlines()
    first_alert = lines.index(f"[alert] {FLOOD}")
    assert lines[first_alert - 1].startswith("#1100 ")  # the last packet line
    assert lines[first_alert + 1] == f"[alert] {SCAN}"


def test_unwritable_alerts_jsonl_is_an_error(cli, attack_pcap, tmp_path):
    res = cli([
        "--read-pcap", str(attack_pcap), "--quiet", "--anomalies",
        "--alerts-jsonl", str(tmp_path / "missing-dir" / "a.jsonl"),
    ])  # fmt: skip
    assert res.code == 1
    assert res.stderr.startswith("error: ") and "a.jsonl" in res.stderr


@pytest.mark.privileged
@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root / CAP_NET_RAW")
def test_live_capture_raises_port_scan_alert(tmp_path):
    """Live on loopback: a UDP sweep of 40 ports from one source raises one port-scan alert,
    printed and written to the alerts JSONL, with the summary row."""
    alerts = tmp_path / "alerts.jsonl"
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", "-i", "lo", "-f", "udp and dst portrange 41000-41039",
         "--quiet", "--anomalies", "--alerts-jsonl", str(alerts)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line or line.startswith("capturing on "):
                break
        time.sleep(0.3)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for port in range(41000, 41040):
                sock.sendto(b"probe", ("127.0.0.1", port))
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    printed = [ln for ln in out.splitlines() if ln.startswith("[alert] ")]
    assert len(printed) == 1 and "127.0.0.1" in printed[0], out
    records = [json.loads(ln) for ln in alerts.read_text().splitlines()]
    assert [r["kind"] for r in records] == ["port_scan"]
    assert "Alerts:" in out

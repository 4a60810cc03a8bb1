"""Port scan detection: one source's SYN-only TCP and UDP probes reaching
>= unique_ports_threshold distinct destination ports or >= unique_hosts_threshold distinct
destination hosts within window_secs (SPEC §6; docs/anomaly-detection.md).

Scans come from the project's generator (``netscope.gen.traffic.port_scan``, probes in
seeded random order at a fixed rate); hand-built traces where exact times matter.
"""

from __future__ import annotations

import pytest

from netscope.gen.traffic import generate, mixed, port_scan, port_scan_records

from . import (
    MODEL_CONFIG,
    MS,
    SEC,
    T0,
    US,
    alert_tuples,
    descriptions,
    model_alerts,
    random_trace,
    run_pcap,
    run_records,
    scan_only,
    settings,
    tcp_frame,
    udp_frame,
    v4,
)

pytestmark = pytest.mark.usefixtures("warm_kernels")

SCANNER = "10.66.0.1"
TARGET = "198.18.0.20"


def probes(
    targets: list[tuple[str, int]],
    start: int = T0,
    step: int = 10 * MS,
    src: str = SCANNER,
    udp: bool = False,
    flags: str = "S",
) -> list[tuple[int, bytes]]:
    """One probe per (host, port), ``step`` apart, from ``src`` (source port 40000)."""
    out = []
    for i, (host, port) in enumerate(targets):
        frame = (
            udp_frame(src, host, 40000, port) if udp else tcp_frame(src, host, 40000, port, flags)
        )
        out.append((start + i * step, frame))
    return out


def ports(n: int, host: str = TARGET, first: int = 1) -> list[tuple[str, int]]:
    return [(host, first + i) for i in range(n)]


def hosts(n: int, port: int = 22) -> list[tuple[str, int]]:
    return [(v4("198.18.1.1", i), port) for i in range(n)]


# ------------------------------------------------------------------ generated scans


def test_vertical_tcp_scan(tmp_path):
    """1024 ports on one host at 100 probes/s: alert at the 25th probe (24 gaps of 10 ms),
    then nothing more within the 30 s cooldown (the scan lasts 10.23 s)."""
    path = tmp_path / "vscan.pcap"
    truth = port_scan(path, SCANNER, TARGET, range(1, 1025), rate_pps=100, seed=1)
    alerts, det = run_pcap(path, scan_only())
    assert [a.ts_ns for a in alerts] == [truth.first_ts_ns + 24 * 10 * MS]
    assert descriptions(alerts) == ["Port scan suspected: 25 ports, 1 hosts from 10.66.0.1"]
    (a,) = alerts
    assert (a.kind, a.address, a.port, a.count, a.distinct) == ("port_scan", SCANNER, None, 25, 1)
    assert det.stats.scan_events == 1024


def test_horizontal_scan(tmp_path):
    """One port on 50 hosts: the 10th distinct host trips unique_hosts_threshold."""
    path = tmp_path / "hscan.pcap"
    targets = [v4("198.18.1.1", i) for i in range(50)]
    port_scan(path, SCANNER, targets, [22], rate_pps=50, seed=2)
    alerts, _ = run_pcap(path, scan_only())
    assert descriptions(alerts) == ["Port scan suspected: 1 ports, 10 hosts from 10.66.0.1"]


def test_udp_scan(tmp_path):
    path = tmp_path / "uscan.pcap"
    port_scan(path, SCANNER, TARGET, range(100, 200), udp=True, rate_pps=1000, seed=3)
    alerts, _ = run_pcap(path, scan_only())
    assert descriptions(alerts) == ["Port scan suspected: 25 ports, 1 hosts from 10.66.0.1"]


def test_ipv6_scan(tmp_path):
    path = tmp_path / "scan6.pcap"
    port_scan(path, "2001:db8:66::1", "2001:db8:2::10", range(1, 101), rate_pps=100, seed=4,
              v6=True)  # fmt: skip
    alerts, _ = run_pcap(path, scan_only())
    assert descriptions(alerts) == ["Port scan suspected: 25 ports, 1 hosts from 2001:db8:66::1"]


def test_slow_scan_below_threshold(tmp_path):
    """2 probes/s: a 10 s window never holds more than 20 distinct ports."""
    path = tmp_path / "slow.pcap"
    port_scan(path, SCANNER, TARGET, range(1, 201), rate_pps=2, seed=5)
    alerts, det = run_pcap(path, scan_only())
    assert alerts == []
    assert det.stats.scan_events == 200


def test_slightly_faster_scan_alerts(tmp_path):
    """3 probes/s for 66 s: 25 ports fit in 10 s (24 gaps of 1/3 s = 8 s); after the 30 s
    cooldown the full window holds 30."""
    path = tmp_path / "slow3.pcap"
    port_scan(path, SCANNER, TARGET, range(1, 201), rate_pps=3, seed=5)
    alerts, _ = run_pcap(path, scan_only())
    assert descriptions(alerts) == [
        "Port scan suspected: 25 ports, 1 hosts from 10.66.0.1",
        "Port scan suspected: 30 ports, 1 hosts from 10.66.0.1",
    ]


def test_scan_inside_background_traffic(tmp_path):
    """A scan merged into ordinary generated traffic: exactly the scan is reported."""
    background = tmp_path / "bg.pcap"
    truth = generate(background, packets=4000, flows=200, seed=11)
    scan = port_scan_records(SCANNER, TARGET, range(1, 101), rate_pps=200, seed=6,
                             start_ts_ns=truth.first_ts_ns + SEC)  # fmt: skip
    path = tmp_path / "mixed.pcap"
    mixed(path, [background, scan])
    alerts, _ = run_pcap(path, settings())
    assert descriptions(alerts) == ["Port scan suspected: 25 ports, 1 hosts from 10.66.0.1"]
    clean, _ = run_pcap(background, settings())
    assert clean == []


# ------------------------------------------------------------------ thresholds and window


@pytest.mark.parametrize(("n", "alerted"), [(25, True), (24, False)])
def test_port_threshold_is_inclusive(n, alerted):
    alerts, _ = run_records(probes(ports(n)), scan_only())
    assert len(alerts) == int(alerted)


@pytest.mark.parametrize(("n", "alerted"), [(10, True), (9, False)])
def test_host_threshold_is_inclusive(n, alerted):
    alerts, _ = run_records(probes(hosts(n)), scan_only())
    assert len(alerts) == int(alerted)
    if alerted:
        assert alerts[0].description == "Port scan suspected: 1 ports, 10 hosts from 10.66.0.1"


@pytest.mark.parametrize(("spread_ns", "alerted"), [(10 * SEC - US, True), (10 * SEC, False)])
def test_window_edge(spread_ns, alerted):
    """The window at t is (t - 10 s, t]: 25 ports whose first and last probes are exactly 10 s
    apart never fill it; 1 us less does."""
    records = probes(ports(25))
    records = [(T0 + (spread_ns * i) // 24, f) for i, (_, f) in enumerate(records)]
    alerts, _ = run_records(records, scan_only())
    assert len(alerts) == int(alerted)
    if alerted:
        assert alerts[0].description.startswith("Port scan suspected: 25 ports, 1 hosts from ")
        assert round(alerts[0].span_ns / 1e9, 1) == 10.0


def test_repeated_probes_count_once():
    """1000 SYNs to the same host and port are one port and one host."""
    records = [(T0 + i * MS, tcp_frame(SCANNER, TARGET, 1024 + i, 443)) for i in range(1000)]
    alerts, det = run_records(records, scan_only())
    assert alerts == []
    assert det.keys[1] == 1 and det.window_entries[1] == 0  # held inline, no member rows


def test_expired_ports_leave_the_window():
    """24 ports, a 10 s pause, 24 more: never 25 in one window."""
    records = probes(ports(24)) + probes(ports(24, first=100), start=T0 + 11 * SEC)
    alerts, _ = run_records(records, scan_only())
    assert alerts == []
    # ... but one more port right after the second group completes 25
    alerts, _ = run_records(records + probes(ports(1, first=500), start=T0 + 12 * SEC), scan_only())
    assert len(alerts) == 1 and alerts[0].count == 25


def test_first_port_expiring_inline_is_uncounted():
    """A source's first port is held in its key row and expires lazily, when the key is next
    touched: port 1 at 0 s, then 24 new ports from 9.8 s to 10.03 s: port 1 has left the
    window when the 25th port arrives. Starting at 9.7 s (last at 9.93 s), it has not."""
    first = probes(ports(1, first=1))
    alerts, _ = run_records(first + probes(ports(24, first=2), start=T0 + 9800 * MS), scan_only())
    assert alerts == []
    alerts, _ = run_records(first + probes(ports(24, first=2), start=T0 + 9700 * MS), scan_only())
    assert descriptions(alerts) == ["Port scan suspected: 25 ports, 1 hosts from 10.66.0.1"]


# ------------------------------------------------------------------ what never counts


def test_syn_ack_and_established_traffic_never_count():
    """A host answering SYN-ACK from 100 ports, and ACK/data segments, are not probes."""
    answers = probes(ports(100), flags="SA") + probes(ports(100), start=T0 + SEC, flags="PA")
    alerts, det = run_records(answers, scan_only())
    assert alerts == [] and det.stats.scan_events == 0


def test_udp_service_replies_never_count():
    """A DNS server answering from port 53 to 100 client ports is replying, not scanning."""
    records = [(T0 + i * MS, udp_frame("10.0.0.53", "10.0.0.7", 53, 40000 + i)) for i in range(100)]
    alerts, det = run_records(records, scan_only())
    assert alerts == [] and det.stats.scan_events == 0


def test_udp_to_service_ports_and_between_high_ports_count():
    records = [
        (T0 + i * MS, udp_frame(SCANNER, TARGET, 53 if i % 2 else 40000, 1 + i)) for i in range(30)
    ]
    alerts, det = run_records(records, scan_only())
    assert det.stats.scan_events == 30 and len(alerts) == 1


# ------------------------------------------------------------------ cooldown


def test_cooldown_then_realert_while_scan_continues():
    """10 new ports/s for 65 s (window 10 s, cooldown 30 s): the 25th port at 2.4 s alerts,
    then again at 32.4 s and 62.4 s."""
    records = probes(ports(650), step=100 * MS)
    alerts, _ = run_records(records, scan_only())
    assert [round((a.ts_ns - T0) / SEC, 3) for a in alerts] == [2.4, 32.4, 62.4]
    assert alerts[1].description == "Port scan suspected: 100 ports, 1 hosts from 10.66.0.1"


def test_cooldown_suppresses_second_scan_and_survives_parking():
    config = settings(syn={"enabled": False})
    first = probes(ports(25))  # alert at 0.24 s; cooldown until 30.24 s
    second = probes(ports(25, first=1000), start=T0 + 20 * SEC)  # inside the cooldown
    third = probes(ports(25, first=2000), start=T0 + 40 * SEC)  # after it
    alerts, det = run_records(first + second + third, config, sweep_every_secs=1.0)
    assert [round((a.ts_ns - T0) / SEC, 2) for a in alerts] == [0.24, 40.24]


def test_different_sources_are_separate_keys():
    """Two scanners with 20 ports each: neither reaches 25."""
    records = sorted(
        probes(ports(20)) + probes(ports(20, first=100), start=T0 + MS, src="10.66.0.2")
    )
    alerts, det = run_records(records, scan_only())
    assert alerts == [] and det.keys[1] == 2


# ------------------------------------------------------------------ reference model


@pytest.mark.parametrize("seed", range(1, 7))
def test_matches_brute_force_model(seed):
    """Random mixed traffic gives exactly the alerts of a brute-force re-count of the
    documented semantics: inline first port/host, member rows, lazy and eager expiry, key
    retirement, parking and sweeps all agree with "distinct values in (now - window, now]"."""
    trace = random_trace(seed)
    alerts, det = run_records(
        [(t, f) for t, f, _ in trace], MODEL_CONFIG, batch=61, sweep_every_secs=1.0
    )
    expected = model_alerts(trace, MODEL_CONFIG)
    assert sum(1 for e in expected if e[1] == "port_scan") > 5
    assert alert_tuples(alerts) == expected
    assert det.stats.cap_hits == 0


@pytest.mark.slow
def test_kernel_as_plain_python_matches_model():
    """The same model check with NUMBA_DISABLE_JIT=1: the kernel's Python reading (what a
    debugger steps through) computes what the compiled kernel computes."""
    import os
    import subprocess
    import sys

    code = (
        "from tests.anomaly import *\n"
        "trace = random_trace(3, n=1500)\n"
        "alerts, _ = run_records([(t, f) for t, f, _ in trace], MODEL_CONFIG, batch=61,"
        " sweep_every_secs=1.0)\n"
        "assert alert_tuples(alerts) == model_alerts(trace, MODEL_CONFIG)\n"
        "from netscope.kernels import anomaly\n"
        "assert not hasattr(anomaly.detect, 'py_func')  # really not compiled\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONWARNINGS="ignore")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]

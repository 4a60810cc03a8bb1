"""SYN flood detection: >= syn_threshold SYN-without-ACK towards one (ip, port) from
>= unique_src_threshold sources within window_secs (SPEC §6; docs/anomaly-detection.md).

Traces come from the project's generator (``netscope.gen.traffic.syn_flood``) or are built
packet by packet where a test needs exact timestamps. Expected alert texts and times are
derived from the trace, not copied from a run.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from netscope.anomaly import AnomalyDetector
from netscope.constants import ERR_TRUNC_L4, FRAG_NONINITIAL
from netscope.gen.traffic import syn_flood, syn_flood_records
from netscope.sinks.alerts import AlertSink

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
    settings,
    syn_only,
    synthetic_syns,
    tcp_frame,
    v4,
)

pytestmark = pytest.mark.usefixtures("warm_kernels")

TARGET = "198.18.0.10"


def burst(
    n: int,
    sources: int,
    start: int = T0,
    step: int = MS,
    dst: str = TARGET,
    dport: int = 80,
    flags: str = "S",
    src_base: str = "172.16.0.1",
) -> list[tuple[int, bytes]]:
    """``n`` SYNs, one every ``step`` ns from ``start``, cycling over ``sources`` sources."""
    return [
        (start + i * step, tcp_frame(v4(src_base, i % sources), dst, 40000 + i, dport, flags))
        for i in range(n)
    ]


# ------------------------------------------------------------------ generated floods


def test_spoofed_flood_from_generator_alerts_once(tmp_path):
    """5000 SYNs from 300 spoofed sources over 2 s: one alert (cooldown 10 s > 2 s), raised at
    the 200th SYN (the generator uses every source once before repeating one)."""
    path = tmp_path / "flood.pcap"
    truth = syn_flood(path, TARGET, 80, sources=300, syns=5000, seed=3, duration_s=2.0)
    alerts, det = run_pcap(path, syn_only())
    step = 2 * SEC // 5000  # the generator's spacing (whole microseconds)
    assert [a.ts_ns for a in alerts] == [truth.first_ts_ns + 199 * step]
    assert descriptions(alerts) == ["SYN flood suspected: 200 syns, 200 sources to 198.18.0.10:80"]
    (a,) = alerts
    assert (a.kind, a.address, a.port, a.count, a.distinct) == (
        "syn_flood",
        TARGET,
        80,
        200,
        200,
    )
    assert a.span_ns == 199 * step
    assert det.stats.syn_events == 5000 and det.stats.cap_hits == 0


def test_flood_from_few_sources_does_not_alert(tmp_path):
    """Thousands of SYNs from 10 sources: a busy client pool, not a spoofed flood."""
    path = tmp_path / "few.pcap"
    syn_flood(path, TARGET, 80, sources=10, syns=5000, seed=4, duration_s=1.0)
    alerts, det = run_pcap(path, syn_only())
    assert alerts == []
    assert det.stats.syn_events == 5000


def test_ipv6_flood(tmp_path):
    path = tmp_path / "flood6.pcap"
    syn_flood(path, "2001:db8:2::10", 443, sources=100, syns=400, seed=5, v6=True)
    alerts, _ = run_pcap(path, syn_only())
    assert descriptions(alerts) == [
        "SYN flood suspected: 200 syns, 100 sources to [2001:db8:2::10]:443"
    ]


# ------------------------------------------------------------------ thresholds and window


@pytest.mark.parametrize(
    ("syns", "sources", "alerted"),
    [
        (200, 50, True),  # both thresholds met exactly
        (199, 50, False),  # one SYN short
        (200, 49, False),  # one source short
        (250, 49, False),  # more SYNs do not make up for sources
    ],
)
def test_thresholds_are_inclusive(syns, sources, alerted):
    alerts, _ = run_records(burst(syns, sources), syn_only())
    assert len(alerts) == int(alerted)
    if alerted:
        assert alerts[0].ts_ns == T0 + 199 * MS
        assert alerts[0].description == (
            "SYN flood suspected: 200 syns, 50 sources to 198.18.0.10:80"
        )


@pytest.mark.parametrize(("spread_ns", "alerted"), [(5 * SEC - US, True), (5 * SEC, False)])
def test_window_edge(spread_ns, alerted):
    """The window at time t is (t - 5 s, t]: a SYN exactly 5 s older than the newest one has
    left it. 200 SYNs whose first and last are 5 s - 1 us apart alert; exactly 5 s, not."""
    times = [T0 + (spread_ns * i) // 199 for i in range(200)]
    times[-1] = T0 + spread_ns
    records = [
        (t, tcp_frame(v4("172.16.0.1", i), TARGET, 40000 + i, 80)) for i, t in enumerate(times)
    ]
    alerts, det = run_records(records, syn_only())
    assert len(alerts) == int(alerted)
    assert det.window_entries[0] == (200 if alerted else 199)
    if alerted:
        assert alerts[0].description.startswith("SYN flood suspected: 200 syns, 200 sources to ")
        assert round(alerts[0].span_ns / 1e9, 1) == 5.0


def test_per_destination_port():
    """The key is (dst ip, dst port): 150 SYNs to each of two ports is no flood."""
    records = burst(150, 150, dport=80) + burst(150, 150, start=T0 + MS // 2, dport=443)
    records.sort()
    alerts, det = run_records(records, syn_only())
    assert alerts == []
    assert det.keys[0] == 2


def test_syn_ack_and_other_acks_never_count():
    """SYN-ACKs are answers: 1000 of them from 1000 sources, plus 199 real SYNs, no alert."""
    answers = burst(1000, 1000, flags="SA", step=MS // 10)
    syns = burst(199, 199, start=T0 + 50 * US)
    alerts, det = run_records(sorted(answers + syns), syn_only())
    assert alerts == []
    assert det.stats.syn_events == 199
    # one more SYN completes the flood: the SYN-ACKs were never part of it
    alerts, det = run_records(
        [(T0 + 200 * MS, tcp_frame("172.31.0.1", TARGET, 1234, 80))], detector=det
    )
    assert len(alerts) == 1 and alerts[0].count == 200


def test_syn_with_ecn_bits_counts():
    """SYN+ECE+CWR (an ECN-setup SYN) is still a SYN without ACK."""
    alerts, _ = run_records(burst(200, 50, flags="SEC"), syn_only())
    assert len(alerts) == 1


def test_errors_fragments_and_non_ip_never_count():
    """Only decoded, initial IP packets count (checked on the columns the kernel reads)."""
    n = 400
    ts = T0 + np.arange(n, dtype=np.int64) * MS
    cols = synthetic_syns(ts, np.arange(1, n + 1, dtype=np.uint64))
    cols.err[0::4] = ERR_TRUNC_L4
    cols.frag[1::4] = FRAG_NONINITIAL
    cols.l3[2::4] = 0
    cols.l4_off[3::8] = -1
    det = AnomalyDetector(syn_only())
    det.observe(ts, cols, n)
    assert det.stats.syn_events == n // 8  # only the packets of none of those four kinds
    assert det.drain() == []


# ------------------------------------------------------------------ cooldown


def test_cooldown_suppresses_then_realerts_while_flood_continues():
    """A steady flood of 100 SYN/s from 100 sources for 32 s, window 5 s, cooldown 10 s:
    the window first qualifies at the 200th SYN (t = 1.99 s), then the key may alert again
    only 10 s after each alert: at 11.99 s, 21.99 s and 31.99 s."""
    records = [
        (T0 + i * 10 * MS, tcp_frame(v4("172.16.0.1", i % 100), TARGET, 1024 + i, 80))
        for i in range(3200)
    ]
    alerts, _ = run_records(records, syn_only())
    assert [(a.ts_ns - T0) / SEC for a in alerts] == [1.99, 11.99, 21.99, 31.99]
    assert descriptions(alerts)[1] == (
        "SYN flood suspected: 500 syns, 100 sources to 198.18.0.10:80"
    )


def test_second_burst_inside_cooldown_is_suppressed_after_it_realerts():
    first = burst(200, 200)  # alerts at T0 + 199 ms; cooldown until T0 + 10.199 s
    inside = burst(300, 300, start=T0 + 6 * SEC)  # a flood of its own, but inside the cooldown
    after = burst(200, 200, start=T0 + 12 * SEC)  # both earlier bursts have left the window
    alerts, det = run_records(first + inside + after, syn_only())
    assert [a.ts_ns for a in alerts] == [T0 + 199 * MS, T0 + 12 * SEC + 199 * MS]
    # the second burst's count restarted: only its own SYNs are in the window
    assert alerts[1].count == 200 and alerts[1].span_ns == 199 * MS


def test_zero_cooldown_alerts_on_every_qualifying_syn():
    alerts, _ = run_records(
        burst(205, 205), settings(syn={"cooldown_secs": 0.0}, scan={"enabled": False})
    )
    assert [a.count for a in alerts] == [200, 201, 202, 203, 204, 205]


def test_cooldown_survives_window_expiry_and_sweep():
    """A key parked for its cooldown is kept across sweeps until the cooldown ends."""
    alerts, det = run_records(burst(200, 200), syn_only(), sweep_every_secs=1.0)
    assert len(alerts) == 1 and det.keys[0] == 1
    det.sweep(T0 + 8 * SEC)  # window long gone, cooldown (until 10.199 s) not
    assert det.window_entries[0] == 0 and det.keys[0] == 1
    alerts, _ = run_records(burst(200, 200, start=T0 + 9 * SEC), detector=det)
    assert alerts == []  # still cooling down
    det.sweep(T0 + 30 * SEC)
    assert det.keys[0] == 0


# ------------------------------------------------------------------ configuration, output


def test_disabled_sub_detector_counts_nothing(tmp_path):
    path = tmp_path / "flood.pcap"
    syn_flood(path, TARGET, 80, sources=300, syns=1000, seed=6)
    alerts, det = run_pcap(path, settings(syn={"enabled": False}, scan={"enabled": False}))
    assert alerts == [] and det.stats.syn_events == 0 and det.stats.scan_events == 0


def test_custom_thresholds_and_window():
    config = settings(
        syn={"syn_threshold": 10, "unique_src_threshold": 3, "window_secs": 0.5},
        scan={"enabled": False},
    )
    alerts, _ = run_records(burst(10, 3, step=50 * MS), config)
    assert descriptions(alerts) == ["SYN flood suspected: 10 syns, 3 sources to 198.18.0.10:80"]
    alerts, _ = run_records(burst(10, 3, step=56 * MS), config)  # 9 gaps of 56 ms > 0.5 s
    assert alerts == []


def test_alert_jsonl_lines_flushed_as_they_happen(tmp_path):
    """The sink writes {"ts","kind","description"} and flushes before returning."""
    records = [(t, f) for t, f in syn_flood_records(TARGET, 80, 300, 1000, seed=7)[1]]
    alerts, _ = run_records(records, syn_only())
    path = tmp_path / "alerts.jsonl"
    sink = AlertSink(None, path)
    seen = []
    sink.listeners.append(seen.append)
    sink.emit(alerts)
    lines = path.read_text().splitlines()  # before close: already on disk
    sink.close()
    assert [json.loads(line) for line in lines] == [
        {"ts": alerts[0].ts_ns / 1e9, "kind": "syn_flood", "description": alerts[0].description}
    ]
    assert seen == alerts and sink.counts == {"syn_flood": 1, "port_scan": 0}


# ------------------------------------------------------------------ reference model


@pytest.mark.parametrize("seed", range(1, 7))
def test_matches_brute_force_model(seed):
    """Random mixed traffic (bursts, gaps, timestamps going backwards, SYN-ACKs, IPv6) gives
    exactly the alerts of a brute-force re-count of the documented semantics. Sweeps every
    second of packet time exercise parking and freeing of cooled-down keys."""
    trace = random_trace(seed)
    config = replace(MODEL_CONFIG, port_scan=replace(MODEL_CONFIG.port_scan, enabled=False))
    alerts, det = run_records([(t, f) for t, f, _ in trace], config, batch=97, sweep_every_secs=1.0)
    expected = model_alerts(trace, config)
    assert len(expected) > 5  # the trace really exercises the detector
    assert alert_tuples(alerts) == expected
    assert det.stats.cap_hits == 0

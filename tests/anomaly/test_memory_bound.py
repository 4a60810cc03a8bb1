"""The detector's state is allocated once and never grows, whatever an attack spoofs; what
happens at the cap is counted, reported and logged (docs/anomaly-detection.md, "Memory").

The big flood is built as decoded columns (what the decode kernel would produce for 1M SYNs
from 1M random IPv4 sources), since building a million packets in Python would take longer
than the detector needs to process them.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest

from netscope.anomaly import AnomalyDetector
from netscope.anomaly.detector import DEFAULT_MAX_ENTRIES

from . import (
    MS,
    SEC,
    T0,
    US,
    run_records,
    scan_only,
    settings,
    syn_only,
    synthetic_syns,
    tcp_frame,
    v4,
)

pytestmark = pytest.mark.usefixtures("warm_kernels")


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")  # pragma: no cover


def _layout(det: AnomalyDetector) -> dict[str, tuple[int, tuple[int, ...], int]]:
    """Identity, shape and size of every state array."""
    return {name: (id(a), a.shape, a.nbytes) for name, a in det.arrays().items()}


def test_million_spoofed_sources_stay_under_the_cap(caplog):
    """1M SYNs from 1M distinct sources at 1 Mpps towards one port (both detectors on,
    default cap): the flood is still reported, no array is replaced or resized, every table
    stays within its cap, the cap hits are counted and logged once, and RSS grows by no more
    than the detector's fixed state."""
    n = 1_000_000
    rng = np.random.default_rng(42)
    sources = rng.permutation(np.arange(1, n + 1, dtype=np.uint64)) + np.uint64(0x0A000000)
    ts = T0 + np.arange(n, dtype=np.int64) * US
    cols = synthetic_syns(ts, sources)
    rss_before = _rss_bytes()
    det = AnomalyDetector(settings())
    layout = _layout(det)
    cap = det.max_entries
    assert cap == DEFAULT_MAX_ENTRIES
    with caplog.at_level(logging.WARNING, logger="netscope.anomaly"):
        step = 32768
        peak_keys = [0, 0]
        for start in range(0, n, step):
            end = min(n, start + step)
            part = type(cols)(**{k: getattr(cols, k)[start:end] for k in cols.__dataclass_fields__})
            det.observe(ts[start:end], part, end - start)
            peak_keys = [max(p, k) for p, k in zip(peak_keys, det.keys, strict=True)]
            assert det.window_entries[0] <= cap and det.window_entries[1] <= cap
    rss_after = _rss_bytes()

    alerts = det.drain()
    assert [a.kind for a in alerts] == ["syn_flood"]
    assert _layout(det) == layout
    st = det.stats
    assert st.syn_events == n and st.scan_events == n
    # The SYN window (5 s at 1 Mpps would be 5M SYNs) holds the newest `cap` SYNs.
    assert st.syn_peak_window == cap
    assert st.syn_forgotten == n - cap
    # Every source is new: each one past the cap evicts the least recently active one.
    assert peak_keys[1] == cap
    assert st.scan_forgotten == n - cap
    assert st.syn_dropped == 0 and st.scan_dropped == 0
    assert st.scan_peak_members == 0  # one port + one host per source: held in the key row
    warnings = [r for r in caplog.records if r.name == "netscope.anomaly"]
    assert len(warnings) == 1 and "anomaly state is full" in warnings[0].getMessage()
    # Pages are only touched as entries are used; the state's size is the ceiling.
    assert rss_after - rss_before < det.state_bytes + 32 * 2**20
    assert det.state_bytes < 64 * 2**20  # documented: ~57 MB at the default cap


def test_syn_window_cap_forgets_exactly_the_oldest():
    """Cap 64: 100 SYNs in one window keep the newest 64; 36 are counted as forgotten."""
    records = [
        (T0 + i * MS, tcp_frame(v4("172.16.0.1", i), "198.18.0.10", 1024, 80)) for i in range(100)
    ]
    config = settings(
        syn={"syn_threshold": 64, "unique_src_threshold": 64}, scan={"enabled": False}
    )
    alerts, det = run_records(records, config, max_entries=64)
    assert det.window_entries[0] == 64 and det.stats.syn_forgotten == 36
    # 64 SYNs from 64 sources still qualify: the flood is reported despite the cap
    assert [a.count for a in alerts] == [64]


def test_scan_member_cap_forgets_least_recently_seen():
    """Cap 8 member rows: a scanner probing 40 ports keeps its first port inline plus the 8
    newest in member rows (9 in the window); 31 were forgotten early."""
    records = [
        (T0 + i * MS, tcp_frame("10.66.0.1", "198.18.0.20", 40000, 1 + i)) for i in range(40)
    ]
    alerts, det = run_records(records, scan_only(), max_entries=8)
    assert alerts == []  # 9 ports in the window, threshold 25
    assert det.window_entries[1] == 8 and det.stats.scan_forgotten == 31


def test_scan_key_cap_forgets_least_recently_active_source():
    records = [
        (T0 + i * MS, tcp_frame(v4("10.9.0.1", i), "198.18.0.20", 40000, 22)) for i in range(100)
    ]
    _, det = run_records(records, scan_only(), max_entries=16)
    assert det.keys[1] == 16 and det.stats.scan_forgotten == 84


def test_parked_keys_fill_the_table_then_drop_and_are_freed_by_the_sweep():
    """Cap 4: four sources alert and park for their cooldown; a fifth source finds every row
    parked and its probes are dropped (counted); after the cooldown the sweep frees them."""
    config = settings(
        syn={"enabled": False},
        scan={"unique_hosts_threshold": 1, "window_secs": 1.0, "cooldown_secs": 20.0},
    )
    records = [
        (T0 + i * MS, tcp_frame(v4("10.9.0.1", i), "198.18.0.20", 40000, 22)) for i in range(4)
    ]
    late = [(T0 + 5 * SEC, tcp_frame("10.9.9.9", "198.18.0.20", 40000, 22))]
    alerts, det = run_records(records + late, config, max_entries=4, sweep_every_secs=1.0)
    assert len(alerts) == 4
    assert det.keys[1] == 4 and det.stats.scan_dropped == 1
    det.sweep(T0 + 25 * SEC)
    assert det.keys[1] == 0


def test_state_is_the_same_after_a_sweep_of_an_idle_detector():
    det = AnomalyDetector(syn_only())
    det.sweep(T0)
    assert det.keys == (0, 0) and det.window_entries == (0, 0)


def test_deepcopy_keeps_views_of_its_own_tables():
    """Pipeline shards deep-copy their observers: each copy must be an independent detector
    whose int64/int32 views still alias its own uint64 matrices."""
    records = [
        (T0 + i * MS, tcp_frame(v4("172.16.0.1", i), "198.18.0.10", 1024, 80)) for i in range(150)
    ]
    _, det = run_records(records, syn_only())
    clone = copy.deepcopy(det)
    for name in ("sf", "sm", "ps", "pm"):
        u, i = getattr(clone, f"{name}_u"), getattr(clone, f"{name}_i")
        assert i.base is u and not np.shares_memory(u, getattr(det, f"{name}_u"))
    more = [
        (T0 + (150 + i) * MS, tcp_frame(v4("172.17.0.1", i), "198.18.0.10", 1024, 80))
        for i in range(50)
    ]
    a_orig, _ = run_records(more, detector=det)
    a_clone, _ = run_records(more, detector=clone)
    assert [a.description for a in a_orig] == [a.description for a in a_clone]
    assert len(a_orig) == 1

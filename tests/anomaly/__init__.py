"""Tests of anomaly detection (SYN flood, port scan): semantics, caps, corpus, CLI.

Shared helpers live here (this package has no conftest of its own): packet builders for
hand-made traces, and runners that push records or capture files through the real decode
kernel and an :class:`~netscope.anomaly.AnomalyDetector`, returning the alerts it raised.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

import netscope.engine  # noqa: F401  (numba cache directory before any kernel import)
from netscope.analysis import Analyzer
from netscope.anomaly import Alert, AnomalyDetector
from netscope.batch import batch_from_packets
from netscope.columns import DecodedColumns
from netscope.config import AnomaliesConfig, PortScanConfig, SynFloodConfig
from netscope.gen import packets as pk
from netscope.gen.traffic import BASE_TS_NS

T0 = BASE_TS_NS  # 2024-01-01T00:00:00Z, the generator's epoch
SEC = 1_000_000_000
MS = 1_000_000
US = 1_000

Record = tuple[int, bytes]


def settings(
    syn: dict[str, Any] | None = None, scan: dict[str, Any] | None = None
) -> AnomaliesConfig:
    """Default ``[analysis.anomalies]`` (enabled) with some keys of each detector replaced."""
    return AnomaliesConfig(
        enabled=True,
        syn_flood=replace(SynFloodConfig(), **(syn or {})),
        port_scan=replace(PortScanConfig(), **(scan or {})),
    )


def syn_only() -> AnomaliesConfig:
    """SYN flood on, port scan off (floods also look like scans from every spoofed source)."""
    return settings(scan={"enabled": False})


def scan_only() -> AnomaliesConfig:
    return settings(syn={"enabled": False})


def v4(base: str, i: int) -> str:
    return str(ipaddress.ip_address(base) + i)


def tcp_frame(src: str, dst: str, sport: int, dport: int, flags: str = "S") -> bytes:
    """Ethernet/IP/TCP segment with the given flags (IP version from the addresses)."""
    return pk.ether_ip(src, dst, 6, pk.tcp(src, dst, sport, dport, 1000, 0, flags))


def udp_frame(src: str, dst: str, sport: int, dport: int) -> bytes:
    return pk.ether_ip(src, dst, 17, pk.udp(src, dst, sport, dport, b"probe"))


def run_records(
    records: Iterable[Record],
    config: AnomaliesConfig | None = None,
    batch: int = 512,
    detector: AnomalyDetector | None = None,
    **detector_kwargs: Any,
) -> tuple[list[Alert], AnomalyDetector]:
    """Decode ``(ts_ns, frame)`` records in batches of ``batch`` and run a detector over them.

    Small batches make windows and cooldowns cross batch boundaries, as they do in real runs.
    """
    det = detector if detector is not None else AnomalyDetector(config, **detector_kwargs)
    analyzer = Analyzer()
    recs = list(records)
    for start in range(0, len(recs), batch):
        chunk = recs[start : start + batch]
        b = batch_from_packets([r[1] for r in chunk], [r[0] for r in chunk])
        det(b, analyzer.process(b))
    return det.drain(), det


def run_pcap(
    path: str | os.PathLike[str], config: AnomaliesConfig | None = None, **detector_kwargs: Any
) -> tuple[list[Alert], AnomalyDetector]:
    """Read a capture with the project's reader and run a detector over every batch."""
    from netscope.sources import open_capture_file

    det = AnomalyDetector(config, **detector_kwargs)
    analyzer = Analyzer()
    source = open_capture_file(path)
    try:
        for b in source.batches():
            det(b, analyzer.process(b))
    finally:
        source.close()
    return det.drain(), det


def synthetic_syns(
    ts_ns: np.ndarray,
    src_lo: np.ndarray,
    dst_lo: int = 0xC6120010,
    dport: int = 80,
    flags: int = 0x02,
    l3: int = 4,
) -> DecodedColumns:
    """Decoded columns of TCP packets without building packets (bulk tests and benchmarks).

    Every column the detector reads is set as the decode kernel would set it for an
    Ethernet/IPv4/TCP packet; the rest stay zero.
    """
    n = len(ts_ns)
    cols = DecodedColumns.allocate(n)
    cols.l3[:] = l3
    cols.proto[:] = 6
    cols.l4_off[:] = 34
    cols.tcp_flags[:] = flags
    cols.src_lo[:] = src_lo
    cols.dst_lo[:] = dst_lo
    cols.dport[:] = dport
    cols.sport[:] = 1024 + (np.arange(n) % 60000)
    return cols


def descriptions(alerts: Sequence[Alert]) -> list[str]:
    return [a.description for a in alerts]


# ------------------------------------------------------------------ reference model


def random_trace(seed: int, n: int = 3000) -> list[tuple[int, bytes, dict[str, Any]]]:
    """A seeded mix of SYNs, SYN-ACKs, ACKs, UDP (probes and service replies) from a small
    pool of IPv4 and IPv6 hosts, with bursts, long gaps and a few timestamps that go
    backwards: ``(ts_ns, frame, fields)`` where ``fields`` is what the model reads."""
    import random

    rng = random.Random(seed)
    v4_hosts = [v4("10.1.0.1", i) for i in range(24)]
    v6_hosts = [str(ipaddress.ip_address("2001:db8::1") + i) for i in range(8)]
    ports = [22, 25, 53, 80, 123, 443, 3306, 8080] + [1000 + 7 * i for i in range(40)]
    out = []
    t = T0
    burst_left = 0
    burst_target: tuple[list[str], str, int] = (v4_hosts, v4_hosts[0], 80)
    for _ in range(n):
        if burst_left == 0 and rng.random() < 0.01:
            # a flood-like burst: many SYNs from the pool towards one (host, port)
            burst_left = rng.randrange(10, 60)
            pool = v6_hosts if rng.random() < 0.2 else v4_hosts
            burst_target = (pool, rng.choice(pool), rng.choice(ports[:8]))
        if burst_left:
            burst_left -= 1
            t += rng.randrange(0, 60) * MS
            pool, dst, dport = burst_target
            src = rng.choice([h for h in pool if h != dst])
            flags = "SA" if rng.random() < 0.1 else "S"
            frame = tcp_frame(src, dst, 40000 + rng.randrange(100), dport, flags)
            fields = {"proto": 6, "flags": pk.tcp_flags(flags), "src": src, "dst": dst}
            fields.update(sport=40000, dport=dport)
            out.append((t, frame, fields))
            continue
        r = rng.random()
        if r < 0.01:
            t += rng.randrange(2, 8) * SEC  # a quiet spell: windows empty, cooldowns run out
        elif r < 0.03:
            t -= rng.randrange(1, 50) * MS  # capture timestamps are not always monotone
        else:
            t += rng.randrange(0, 40) * MS
        pool = v6_hosts if rng.random() < 0.2 else v4_hosts
        src, dst = rng.sample(pool, 2)
        dport = rng.choice(ports)
        if rng.random() < 0.75:
            flags = rng.choice(("S", "S", "S", "S", "SA", "A", "PA", "SEC", "R"))
            frame = tcp_frame(src, dst, 40000 + rng.randrange(100), dport, flags)
            fields = {"proto": 6, "flags": pk.tcp_flags(flags)}
            sport = 40000
        else:
            sport = rng.choice((53, 123, 5353, 40001, 51000))
            frame = udp_frame(src, dst, sport, dport)
            fields = {"proto": 17, "flags": 0}
        fields.update(src=src, dst=dst, sport=sport, dport=dport)
        out.append((t, frame, fields))
    return out


def model_alerts(
    trace: Sequence[tuple[int, bytes, dict[str, Any]]], config: AnomaliesConfig
) -> list[tuple[int, str, str, int | None, int, int, int]]:
    """Alerts per docs/anomaly-detection.md, computed by brute force over the whole history:
    ``(ts_ns, kind, address, port, count, distinct, span_ns)``."""
    sf, ps = config.syn_flood, config.port_scan
    sf_w, ps_w = round(sf.window_secs * 1e9), round(ps.window_secs * 1e9)
    syn_events: dict[tuple[str, int], list[tuple[int, str]]] = {}
    scan_events: dict[str, list[tuple[int, int, str]]] = {}
    cool: dict[Any, int] = {}
    since: dict[Any, int] = {}
    out = []
    now = -(2**63)
    for ts, _frame, f in trace:
        syn = f["proto"] == 6 and f["flags"] & 0x02 and not f["flags"] & 0x10
        udp_probe = f["proto"] == 17 and not (f["sport"] < 1024 <= f["dport"])
        if not (syn or udp_probe):
            continue
        now = max(now, ts)
        if syn and sf.enabled:
            key = (f["dst"], f["dport"])
            hist = syn_events.setdefault(key, [])
            if not hist or hist[-1][0] <= now - sf_w:
                since[("sf", key)] = now
            hist.append((now, f["src"]))
            window = [e for e in hist if e[0] > now - sf_w]
            count, sources = len(window), len({e[1] for e in window})
            if (
                count >= sf.syn_threshold
                and sources >= sf.unique_src_threshold
                and now >= cool.get(("sf", key), -(2**63))
            ):
                cool[("sf", key)] = now + round(sf.cooldown_secs * 1e9)
                span = min(now - since[("sf", key)], sf_w)
                out.append((now, "syn_flood", key[0], key[1], count, sources, span))
        if ps.enabled:
            key2 = f["src"]
            hist2 = scan_events.setdefault(key2, [])
            if not hist2 or hist2[-1][0] <= now - ps_w:
                since[("ps", key2)] = now
            hist2.append((now, f["dport"], f["dst"]))
            window2 = [e for e in hist2 if e[0] > now - ps_w]
            nports, nhosts = len({e[1] for e in window2}), len({e[2] for e in window2})
            if (
                nports >= ps.unique_ports_threshold or nhosts >= ps.unique_hosts_threshold
            ) and now >= cool.get(("ps", key2), -(2**63)):
                cool[("ps", key2)] = now + round(ps.cooldown_secs * 1e9)
                span = min(now - since[("ps", key2)], ps_w)
                out.append((now, "port_scan", key2, None, nports, nhosts, span))
    return out


def alert_tuples(alerts: Sequence[Alert]) -> list[tuple[int, str, str, int | None, int, int, int]]:
    return [(a.ts_ns, a.kind, a.address, a.port, a.count, a.distinct, a.span_ns) for a in alerts]


MODEL_CONFIG = settings(
    syn={"syn_threshold": 8, "unique_src_threshold": 4, "window_secs": 1.5, "cooldown_secs": 2.5},
    scan={
        "unique_ports_threshold": 7,
        "unique_hosts_threshold": 5,
        "window_secs": 2.0,
        "cooldown_secs": 3.0,
    },
)

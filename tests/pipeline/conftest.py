"""Fixtures for the pipeline tests: small generated traces (cached per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netscope.gen.traffic import generate


@pytest.fixture(scope="session")
def gen_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20k packets, 600 conversations: IPv4/IPv6, TCP/UDP/ICMP, VLAN and QinQ tags."""
    path = tmp_path_factory.mktemp("pipeline") / "gen.pcap"
    generate(path, packets=20_000, flows=600, seed=7, vlan_fraction=0.1)
    return path


@pytest.fixture(scope="session")
def gen_trace_dense(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fewer, busier conversations with retransmissions and reordering."""
    path = tmp_path_factory.mktemp("pipeline") / "dense.pcap"
    generate(path, packets=15_000, flows=40, seed=11, retrans_rate=0.05, ooo_rate=0.05)
    return path

"""The flow table against the trace generator's ground truth: every recorded field, per flow.

The generator records per conversation what a correct tracker must report (packets and bytes
per direction, TCP state, client side, injected retransmissions and out-of-order segments,
first/last packet time). tests/gen/test_traffic.py proves the truth right with an independent
reference tracker; here NetScope's own table must match it exactly, flow by flow and field by
field, through the library path (FlowTable) and through the CLI's JSON export.

The traces are busy on purpose (5 % retransmissions, 5 % reordering, IPv6, VLAN and QinQ tags,
wrapping sequence numbers, mid-stream starts, RSTs), so every branch of the state machine and of
the sequence analysis is exercised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flows.conftest import flow_records, track_capture
from netscope.flows.records import FlowRecord
from netscope.gen.traffic import FlowTruth, GroundTruth, generate
from tests_support import run_netscope

Key = tuple[str, str, int, str, int]
FIELDS = (
    "packets_a_to_b",
    "packets_b_to_a",
    "bytes_a_to_b",
    "bytes_b_to_a",
    "tcp_state",
    "client",
    "retransmissions",
    "out_of_order",
    "first_seen_ns",
    "last_seen_ns",
)


# seed -> (packets, flows, retrans_rate, ooo_rate): both, reordering only, retransmissions
# only, and a tight budget (3 packets a flow: lone SYNs, refused SYNs, bare handshakes)
TRACES = {
    11: (12_000, 300, 0.05, 0.05),
    12: (12_000, 300, 0.0, 0.08),
    13: (12_000, 300, 0.08, 0.0),
    14: (1_500, 500, 0.05, 0.05),
}
RATES = {f"t{seed}.pcap": params[2:] for seed, params in TRACES.items()}


@pytest.fixture(scope="module", params=sorted(TRACES))
def trace(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, GroundTruth]:
    seed = request.param
    packets, flows, retrans, ooo = TRACES[seed]
    path = tmp_path_factory.mktemp("truth") / f"t{seed}.pcap"
    truth = generate(
        path,
        packets=packets,
        flows=flows,
        seed=seed,
        v6_fraction=0.3,
        vlan_fraction=0.1,
        retrans_rate=retrans,
        ooo_rate=ooo,
    )
    return path, truth


# the generator names the client side "a"/"b"; flow records use the original's "a_to_b"/"b_to_a"
_CLIENT = {"a": "a_to_b", "b": "b_to_a", None: None}


def truth_fields(f: FlowTruth) -> dict[str, Any]:
    fields = {name: getattr(f, name) for name in FIELDS}
    fields["client"] = _CLIENT[fields["client"]]
    return fields


def record_fields(r: FlowRecord) -> dict[str, Any]:
    return {name: getattr(r, name) for name in FIELDS}


def test_every_flow_field_equals_the_truth(trace: tuple[Path, GroundTruth]) -> None:
    path, truth = trace
    want = {f.key: truth_fields(f) for f in truth.table_flows()}
    got: dict[Key, dict[str, Any]] = {
        (r.protocol, r.a_ip, r.a_port, r.b_ip, r.b_port): record_fields(r)
        for r in flow_records(track_capture(path))
    }
    assert got.keys() == want.keys()
    differ = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not differ, f"{len(differ)} flows differ, e.g. {next(iter(differ.items()))}"
    # the trace really exercises what it claims (the rates are the fixture's parameters)
    flows = truth.table_flows()
    retrans_rate, ooo_rate = RATES[path.name]
    assert (sum(f.retransmissions for f in flows) > 0) == (retrans_rate > 0)
    assert (sum(f.out_of_order for f in flows) > 0) == (ooo_rate > 0)
    states = {f.tcp_state for f in flows if f.protocol == "tcp"}
    assert {"established", "closed", "reset"} <= states, states
    if len(flows) > 400:
        assert "syn_sent" in states
    # the generator's clients have the lower addresses: "a", or unknown for mid-stream flows
    assert {f.client for f in flows if f.protocol == "tcp"} == {"a", None}  # generator's words
    assert any(f.seq_wraps for f in flows) and any(f.vlan_ids for f in flows)


def test_cli_export_equals_the_truth(trace: tuple[Path, GroundTruth], tmp_path: Path) -> None:
    """What a user gets from ``--export-json``: the same per-flow figures."""
    path, truth = trace
    out = tmp_path / "flows.json"
    res = run_netscope(
        ["--read-pcap", str(path), "--quiet", "--flow-timeout-s", "0", "--export-json", str(out)]
    )
    assert res.code == 0, res.stderr
    want = {f.key: f for f in truth.table_flows()}
    rows = json.loads(out.read_text())
    assert len(rows) == len(want)
    for row in rows:
        key = (
            row["protocol"],
            row["endpoint_a"]["ip"],
            row["endpoint_a"]["port"],
            row["endpoint_b"]["ip"],
            row["endpoint_b"]["port"],
        )
        t = want[key]
        got = {name: row[name] for name in FIELDS if not name.endswith("_ns")}
        assert got == {name: v for name, v in truth_fields(t).items() if not name.endswith("_ns")}

"""The flow schema's Arrow views (library API) agree with the JSON records, field by field.

``to_records`` (the JSON export's shape, built per flow in Python) is the oracle for the
vectorised Arrow columns; the exports' new ``community_id`` field is checked through the
CLI against the ``communityid`` reference package, with a non-default seed.
"""

from __future__ import annotations

import csv
import ipaddress
import json
from pathlib import Path

import communityid
import duckdb
import numpy as np
import pyarrow as pa
import pytest

import netscope
from corpus_support import corpus_file
from netscope.flows.addresses import address_text
from netscope.flows.records import FLOW_FIELDS
from netscope.flows.schema import COLUMN_NAMES, FIELDS, TEXT_FIELDS, arrow_schema
from netscope.sinks.exports import CSV_COLUMNS
from tests_support import run_cli

MIXED = "zeek-ipv6-http-atomic-frag.pcap"  # IPv6 TCP
HTTP = "dpkt-nb6-http.pcap"  # IPv4 TCP + UDP


def _ref(flow: dict, seed: int = 0) -> str:  # type: ignore[type-arg]
    proto = {"tcp": 6, "udp": 17}[flow["protocol"]]
    a, b = flow["endpoint_a"], flow["endpoint_b"]
    tpl = communityid.FlowTuple(proto, a["ip"], b["ip"], a["port"], b["port"])
    return str(communityid.CommunityID(seed=seed).calc(tpl))


def test_text_field_order_unchanged_plus_community_id() -> None:
    assert FLOW_FIELDS[-1] == "community_id"
    assert CSV_COLUMNS[-1] == "community_id" and CSV_COLUMNS[:5] == (
        "protocol",
        "endpoint_a_ip",
        "endpoint_a_port",
        "endpoint_b_ip",
        "endpoint_b_port",
    )
    assert tuple(c for c in COLUMN_NAMES if c in TEXT_FIELDS) == CSV_COLUMNS
    assert all(f.doc for f in FIELDS)


@pytest.mark.parametrize("name", [HTTP, MIXED])
def test_arrow_columns_equal_records(name: str) -> None:
    result = netscope.analyze(corpus_file(name))
    table = result.to_arrow()
    assert table.schema.equals(arrow_schema(), check_metadata=True)
    records = sorted(result.to_records(), key=lambda f: f["community_id"])
    rows = sorted(table.to_pylist(), key=lambda r: r["community_id"])
    assert len(rows) == len(records) > 0
    for row, rec in zip(rows, records, strict=True):
        for side in ("a", "b"):
            assert row[f"endpoint_{side}_ip"] == rec[f"endpoint_{side}"]["ip"]
            assert row[f"endpoint_{side}_port"] == rec[f"endpoint_{side}"]["port"]
        assert row["ip_version"] == ipaddress.ip_address(rec["endpoint_a"]["ip"]).version
        assert row["first_seen"].timestamp() == pytest.approx(rec["first_seen"], abs=1e-6)
        for key in FLOW_FIELDS:
            if key.startswith("endpoint_") or key in ("first_seen", "last_seen"):
                continue
            if isinstance(rec[key], float):
                assert row[key] == pytest.approx(rec[key], rel=1e-9, abs=1e-3), key
            else:
                assert row[key] == rec[key], key
        assert row["end_reason"] == "active"
    # largest first, like the JSON export
    totals = table["bytes_total"].to_pylist()
    assert totals == sorted(totals, reverse=True)


def test_pandas_polars_duckdb_views() -> None:
    result = netscope.analyze(corpus_file(HTTP))
    df = result.to_pandas()
    assert str(df["first_seen"].dtype) == "datetime64[ns, UTC]"
    assert str(df["tcp_state"].dtype) == "category"
    pf = result.to_polars()
    import polars as pl

    assert pl.DataFrame(result).equals(pf)  # __arrow_c_stream__
    total = duckdb.connect().sql("SELECT sum(bytes_total) AS t FROM result").fetchall()[0][0]
    assert int(total) == sum(f.bytes_total for f in result.flows) == int(df["bytes_total"].sum())
    assert pa.table(result).num_rows == len(result)  # the PyCapsule stream again


def test_expired_rows_and_scale_mode() -> None:
    capture = corpus_file(HTTP)
    result = netscope.analyze(capture, timeout_secs=0.01, keep_expired=True)
    both = result.to_arrow(expired=True)
    assert both.num_rows == len(result.flows) + len(result.expired)
    reasons = set(both["end_reason"].to_pylist())
    assert "timeout" in reasons
    assert len(result.expired) > 0
    scale = netscope.analyze(capture, rtt=False, retrans=False, out_of_order=False).to_arrow()
    assert scale["rtt_min_ms"].null_count == scale.num_rows
    assert scale["rtt_samples"].null_count == 0  # a count: 0 in scale mode, as in JSON
    assert set(scale["rtt_samples"].to_pylist()) == {0}


def test_seed_reaches_every_view() -> None:
    capture = corpus_file(HTTP)
    plain = netscope.analyze(capture)
    seeded = netscope.analyze(capture, community_id_seed=7)
    for rec in seeded.to_records():
        assert rec["community_id"] == _ref(rec, seed=7) != _ref(rec)
    assert set(seeded.to_arrow()["community_id"].to_pylist()) == {
        r["community_id"] for r in seeded.to_records()
    }
    assert set(plain.to_arrow()["community_id"].to_pylist()) == {
        _ref(r) for r in plain.to_records()
    }


def test_cli_exports_carry_community_id(tmp_path: Path) -> None:
    capture = corpus_file(HTTP)
    js, cv, jl = tmp_path / "f.json", tmp_path / "f.csv", tmp_path / "e.jsonl"
    res = run_cli(
        ["--read-pcap", str(capture), "--quiet", "--community-id-seed", "5"]
        + ["--export-json", str(js), "--export-csv", str(cv), "--expired-flows-jsonl", str(jl)]
        + ["--flow-timeout-s", "0.01"]
    )
    assert res.code == 0, res.stderr
    flows = json.loads(js.read_text())
    expired = [json.loads(line) for line in jl.read_text().splitlines()]
    assert flows or expired
    for f in flows + expired:
        assert f["community_id"] == _ref(f, seed=5)
    with open(cv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["community_id"] for r in rows] == [f["community_id"] for f in flows]
    bad = run_cli(["--read-pcap", str(capture), "--community-id-seed", "65536"])
    assert bad.code == 2 and bad.stderr.startswith("error: ")


def test_address_text_matches_ipaddress() -> None:
    rng = np.random.default_rng(3)
    v4 = rng.integers(0, 2**32, 2000, dtype=np.uint64)
    v4[:4] = [0, 2**32 - 1, 0x0A000001, 0xC0A80064]
    specials = [0, 1, 0xFFFF_0102_0304, 2**128 - 1, 0x2001_0DB8 << 96, (0xFE80 << 112) | 1]
    v6 = [int(x) for x in rng.integers(0, 2**63, 50, dtype=np.uint64)] + specials
    v6 += [(int(h) << 64) for h in rng.integers(0, 2**63, 50, dtype=np.uint64)]
    # zero runs everywhere (ties, ends, single zeros), groups with leading zeros
    for _ in range(3000):
        groups = [
            0 if rng.random() < 0.5 else int(rng.choice([0xAB, 0x1, 0xF00, 0xFFFF, 0x1234]))
            for _ in range(8)
        ]
        v6.append(int("".join(f"{g:04x}" for g in groups), 16))
    version = np.array([4] * len(v4) + [6] * len(v6), dtype=np.uint8)
    hi = np.array([0] * len(v4) + [x >> 64 for x in v6], dtype=np.uint64)
    lo = np.array(list(v4) + [x & (2**64 - 1) for x in v6], dtype=np.uint64)
    got = address_text(version, hi, lo).to_pylist()
    want = [str(ipaddress.IPv4Address(int(x))) for x in v4]
    want += [str(ipaddress.IPv6Address(x)) for x in v6]
    assert got == want


def test_threaded_community_ids_equal_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    from netscope.flows import schema

    result = netscope.analyze(corpus_file(HTTP))
    inline = result.rows.to_arrow()
    monkeypatch.setattr(schema, "PARALLEL_ROWS", 1)  # the large-table path on a small one
    assert result.rows.to_arrow().equals(inline)


def test_docs_table_lists_every_column_with_its_type() -> None:
    """docs/exports.md documents the schema column by column; it must match FIELDS."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "exports.md").read_text()
    for f in FIELDS:
        row = f"| `{f.name}` | `{f.arrow}` | {f.unit} | {'yes' if f.nullable else 'no'} |"
        assert row in text, row

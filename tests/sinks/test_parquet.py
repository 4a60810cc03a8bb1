"""``--export-parquet``: read back by pandas, polars and DuckDB; streaming; interrupts.

The oracle for the contents is the JSON export of the same run (open flows) plus the
run's own summary line (every flow written); timestamps are checked against the
library's integer nanoseconds on a nanosecond capture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq
import pytest

import netscope
from corpus_support import corpus_file
from netscope.flows import layout as L
from netscope.flows.schema import FlowRows
from netscope.flows.table import ExpiredBatch
from netscope.sinks.parquet import ParquetFlowSink
from tests_support import REPO_ROOT, run_cli


def _gen(path: Path, packets: int, flows: int) -> Path:
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", "--packets", str(packets), "--flows", str(flows)]
        + [str(path)],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )
    return path


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2000 flows: a 300-flow table evicts most of them while the run goes on."""
    return _gen(tmp_path_factory.mktemp("pq") / "t.pcap", 20_000, 2_000)


def _config(tmp: Path, row_group_flows: int) -> Path:
    cfg = tmp / "n.toml"
    cfg.write_text(f"[output]\nparquet_row_group_flows = {row_group_flows}\n")
    return cfg


def test_cli_parquet_read_by_pandas_polars_duckdb_equals_json(trace: Path, tmp_path: Path) -> None:
    out, js = tmp_path / "flows.parquet", tmp_path / "flows.json"
    res = run_cli(
        ["--read-pcap", str(trace), "--quiet", "--flow-timeout-s", "0", "--max-flows", "300"]
        + ["--config", str(_config(tmp_path, 100))]
        + ["--export-parquet", str(out), "--export-json", str(js)]
    )
    assert res.code == 0, res.stderr
    flows_json = json.loads(js.read_text())
    meta = pq.ParquetFile(out).metadata
    assert "Parquet export" in res.stdout and f"({meta.num_rows} flows" in res.stdout

    df = pd.read_parquet(out)
    pf = pl.read_parquet(out)
    db = duckdb.connect().sql(f"SELECT * FROM read_parquet('{out}')").df()
    assert len(df) == len(pf) == len(db) == meta.num_rows
    # streaming: many row groups, the expired ones before the open ones
    assert meta.num_row_groups > 3
    reasons = df["end_reason"].astype(str).tolist()
    n_active = reasons.count("active")
    assert n_active == len(flows_json) > 0
    assert reasons[-n_active:] == ["active"] * n_active
    assert set(reasons[:-n_active]) <= {"timeout", "evicted"} and len(reasons) > n_active
    seen = int(res.stdout.split(" seen")[0].rsplit("(", 1)[1])
    assert meta.num_rows == seen  # every flow of the run, exactly once

    active = df[df["end_reason"] == "active"]
    for frame in (active, pf.filter(pl.col("end_reason") == "active").to_pandas()):
        assert int(frame["bytes_total"].sum()) == sum(f["bytes_total"] for f in flows_json)
        assert int(frame["packets_total"].sum()) == sum(f["packets_total"] for f in flows_json)
        assert set(frame["community_id"]) == {f["community_id"] for f in flows_json}
    q = "SELECT sum(bytes_total), count(*) FROM read_parquet(?) WHERE end_reason = 'active'"
    total, count = duckdb.connect().execute(q, [str(out)]).fetchall()[0]  # type: ignore[misc]
    assert (int(total), count) == (sum(f["bytes_total"] for f in flows_json), len(flows_json))

    by_id = {f["community_id"]: f for f in flows_json}
    for row in active.head(50).itertuples():
        f = by_id[row.community_id]
        assert (row.endpoint_a_ip, row.endpoint_a_port) == (
            f["endpoint_a"]["ip"],
            f["endpoint_a"]["port"],
        )
        assert row.first_seen.value / 1e9 == pytest.approx(f["first_seen"], abs=1e-6)
        assert row.rtt_samples == f["rtt_samples"] or (
            f["rtt_samples"] is None and pd.isna(row.rtt_samples)
        )


def test_types_survive_in_each_reader(trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    assert run_cli(["--read-pcap", str(trace), "--quiet", "--export-parquet", str(out)]).code == 0
    schema = pq.read_schema(out)
    assert schema.field("first_seen").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("bytes_total").type == pa.uint64()
    assert schema.field("endpoint_a_port").type == pa.uint16()
    assert pa.types.is_dictionary(schema.field("tcp_state").type)
    assert schema.field("rtt_min_ms").nullable
    pf = pl.read_parquet(out)
    assert pf.schema["first_seen"] == pl.Datetime("ns", "UTC")
    assert pf.schema["bytes_total"] == pl.UInt64
    assert pf.schema["protocol"] in (pl.Categorical, pl.Enum) or isinstance(
        pf.schema["protocol"], pl.Categorical
    )
    described = duckdb.connect().sql(f"DESCRIBE SELECT * FROM read_parquet('{out}')").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types["first_seen"].startswith("TIMESTAMP")
    assert types["bytes_total"] == "UBIGINT"
    assert types["endpoint_a_port"] == "USMALLINT"


def test_nanosecond_timestamps_survive(tmp_path: Path) -> None:
    capture = corpus_file("tcpdump-tcp-handshake-nano.pcap")
    out = tmp_path / "nano.parquet"
    assert run_cli(["--read-pcap", str(capture), "--quiet", "--export-parquet", str(out)]).code == 0
    want = netscope.analyze(capture).rows.i64[:, [L.I_FIRST_NS, L.I_LAST_NS]]
    assert (want % 1000 != 0).any()  # sub-microsecond digits to lose
    got_pa = pq.read_table(out).select(["first_seen", "last_seen"])
    got = np.stack([got_pa[c].cast(pa.int64()).to_numpy() for c in ("first_seen", "last_seen")], 1)
    assert got.tolist() == want.tolist()
    pf = pl.read_parquet(out)
    assert pf["first_seen"].dt.epoch("ns").to_list() == want[:, 0].tolist()
    epoch = (
        duckdb.connect()
        .execute("SELECT epoch_ns(first_seen) FROM read_parquet(?)", [str(out)])
        .fetchall()
    )
    assert [e for (e,) in epoch] == want[:, 0].tolist()


def test_directory_is_hive_dataset(trace: Path, tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    root.mkdir()
    res = run_cli(
        ["--read-pcap", str(trace), "--quiet", "--flow-timeout-s", "0", "--max-flows", "300"]
        + ["--config", str(_config(tmp_path, 500)), "--export-parquet", str(root)]
    )
    assert res.code == 0, res.stderr
    parts = sorted(root.glob("hour=*/part-*.parquet"))
    assert parts and [p.parent.name for p in parts][0] == "hour=2024-01-01T00"
    assert not list(root.rglob("*.tmp"))
    df = pd.read_parquet(root)
    pf = pl.read_parquet(root / "**" / "*.parquet", hive_partitioning=True)
    db = (
        duckdb.connect()
        .execute(
            "SELECT count(*), count(DISTINCT hour) FROM read_parquet(?, hive_partitioning = true)",
            [str(root / "**" / "*.parquet")],
        )
        .fetchall()[0]
    )
    assert db is not None
    seen = int(res.stdout.split(" seen")[0].rsplit("(", 1)[1])
    assert len(df) == len(pf) == db[0] == seen
    hours = df["first_seen"].dt.strftime("%Y-%m-%dT%H")
    assert (hours == df["hour"].astype(str)).all()


def test_sink_holds_at_most_one_row_group(tmp_path: Path) -> None:
    """Expired batches are written as they fill a row group: memory holds < one group."""
    sink = ParquetFlowSink(tmp_path / "s.parquet", row_group_flows=100)
    n = 30
    keys = np.zeros((n, L.KEY_WIDTH), dtype=np.uint64)
    keys[:, L.K_A_LO] = np.arange(n, dtype=np.uint64) + 0x0A000001
    keys[:, L.K_B_LO] = 0x0A0000FF
    keys[:, L.K_META] = (np.uint64(6) << np.uint64(8)) | np.uint64(4)
    i64 = np.zeros((n, L.I64_WIDTH), dtype=np.int64)
    i64[:, L.I_FIRST_NS] = 1_700_000_000_123_456_789
    f64 = np.zeros((n, L.F64_WIDTH))
    u8 = np.zeros((n, L.U8_WIDTH), dtype=np.uint8)
    groups = []
    for _ in range(20):  # 600 expired flows, 30 at a time
        sink(ExpiredBatch(keys, i64, f64, u8, np.full(n, L.REASON_TIMEOUT, np.uint8), n))
        assert sink.buffered < 100
        groups.append(sink.row_groups)
    assert groups[:3] == [0, 0, 0] and groups[-1] == 6  # written during the run, full groups
    assert not (tmp_path / "s.parquet").exists()  # nothing at the path before the footer
    sink.finish(FlowRows.take(keys, i64, f64, u8, np.arange(5)))
    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert meta.num_rows == 605 and meta.num_row_groups == 7
    assert [meta.row_group(i).num_rows for i in range(7)] == [100] * 6 + [5]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_a_valid_file(
    signum: int, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Signal mid-run (after row groups reached the temp file): a complete file remains."""
    big = tmp_path_factory.getbasetemp() / "big.pcap"
    if not big.exists():
        _gen(big, 400_000, 40_000)  # ~32 s of capture time, replayed at 4x
    out = tmp_path / "int.parquet"
    cfg = _config(tmp_path, 200)
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", "--read-pcap", str(big), "--quiet"]
        + ["--replay-speed", "4", "--flow-timeout-s", "0.5", "--config", str(cfg)]
        + ["--export-parquet", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            temps = list(tmp_path.glob(".int.parquet.netscope-*.tmp"))
            if temps and temps[0].stat().st_size > 20_000:  # row groups streamed already
                break
            time.sleep(0.1)
        assert proc.poll() is None, "run ended before it could be interrupted"
        assert not out.exists()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "interrupted" in stdout.lower()
    meta = pq.ParquetFile(out).metadata  # a footer: the file is complete
    seen = int(stdout.split(" seen")[0].rsplit("(", 1)[1])
    assert meta.num_rows == seen > 0 and meta.num_row_groups > 1
    table = pq.read_table(out)
    assert duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchall()[
        0
    ] == (seen,)
    assert not list(tmp_path.glob("*.tmp"))
    assert table.num_rows == seen


def test_parquet_needs_a_file_or_directory(trace: Path, tmp_path: Path) -> None:
    res = run_cli(["--read-pcap", str(trace), "--quiet", "--export-parquet", "/dev/null"])
    assert res.code == 1
    assert res.stderr.strip().splitlines()[-1] == (
        "error: /dev/null: Parquet needs a regular file or a directory"
    )


def test_stale_temp_of_a_killed_run_is_removed(trace: Path, tmp_path: Path) -> None:
    """SIGKILL leaves a temp file (no footer, never at PATH); the next export removes it."""
    out = tmp_path / "k.parquet"
    stale = tmp_path / ".k.parquet.netscope-999999999-abc.tmp"  # no such process
    stale.write_bytes(b"PAR1 truncated")
    assert run_cli(["--read-pcap", str(trace), "--quiet", "--export-parquet", str(out)]).code == 0
    assert not stale.exists()
    assert pq.ParquetFile(out).metadata.num_rows > 0


def test_pipeline_mode_parquet_equals_json(trace: Path, tmp_path: Path) -> None:
    """--workers 2: shards' expired batches reach the one sink (serialised), the merged
    table's open flows follow; same flows as the JSON export of the same run."""
    out, js = tmp_path / "w.parquet", tmp_path / "w.json"
    res = run_cli(
        ["--read-pcap", str(trace), "--quiet", "--workers", "2", "--flow-timeout-s", "0"]
        + ["--max-flows", "300", "--export-parquet", str(out), "--export-json", str(js)]
    )
    assert res.code == 0, res.stderr
    flows = json.loads(js.read_text())
    table = pq.read_table(out)
    seen = int(res.stdout.split(" seen")[0].rsplit("(", 1)[1])
    assert table.num_rows == seen
    active = table.filter(pa.compute.equal(table["end_reason"], "active"))
    assert sorted(active["community_id"].to_pylist()) == sorted(f["community_id"] for f in flows)
    assert set(table["end_reason"].to_pylist()) == {"active", "evicted"}


def test_without_pyarrow_one_line_names_the_extra(trace: Path, tmp_path: Path) -> None:
    """``pip install netscope`` without the extra: a one-line error, exit 1, no file."""
    out = tmp_path / "x.parquet"
    code = (
        "import sys; sys.modules['pyarrow'] = None; from netscope.cli import main; sys.exit(main())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--read-pcap", str(trace), "--quiet", "--export-parquet"]
        + [str(out)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --export-parquet needs pyarrow: pip install 'netscope[parquet]'"
    )
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))

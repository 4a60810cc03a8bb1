"""conn.log exports as a user meets them: ``python -m netscope --export-zeek-conn ...``,
read back with a Zeek log reader from PyPI (zat), including runs interrupted mid-trace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, run_cli
from zat.zeek_log_reader import ZeekLogReader

from netscope.sinks.zeek_conn import FIELDS

ORACLE = REPO_ROOT.parent / "shared" / "zeek-conn" / "traces"
POP3 = ORACLE / "pop3-pop3.pcap"


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def _check_tsv(path: Path) -> list[dict[str, object]]:
    """Every header line present, #close last, every line with all fields; zat's rows."""
    lines = path.read_text().splitlines()
    assert lines[0] == "#separator \\x09"
    heads = [line.split("\t")[0] for line in lines if line.startswith("#")]
    assert heads[:8] == [
        "#separator \\x09",
        "#set_separator",
        "#empty_field",
        "#unset_field",
        "#path",
        "#open",
        "#fields",
        "#types",
    ]
    assert lines[-1].startswith("#close\t")
    body = [line for line in lines if not line.startswith("#")]
    assert all(len(line.split("\t")) == len(FIELDS) for line in body)
    return list(ZeekLogReader(str(path)).readrows())


def test_tsv_and_json_read_back(tmp_path: Path) -> None:
    trace = _require(POP3)
    tsv, jsonl = tmp_path / "conn.log", tmp_path / "conn.json"
    res = run_cli(
        ["--read-pcap", str(trace), "--quiet", "--export-zeek-conn", str(tsv)]
        + ["--export-zeek-conn-json", str(jsonl)]
    )
    assert res.code == 0, res.stderr
    assert "Zeek conn.log" in res.stdout
    rows = _check_tsv(tsv)
    assert len(rows) == 11
    states = sorted(str(r["conn_state"]) for r in rows)
    assert states == ["REJ"] * 6 + ["SF"] * 5
    rej = [r for r in rows if r["conn_state"] == "REJ"]
    assert all(r["history"] == "Sr" and r["orig_pkts"] == 1 for r in rej)
    assert all(str(r["uid"]).startswith("C") for r in rows)
    # 192.168.0.4 is private (local), the mail servers are not: Zeek's T / F
    raw = [line.split("\t") for line in tsv.read_text().splitlines() if line[0] != "#"]
    names = [name for name, _ in FIELDS]
    assert {(r[names.index("local_orig")], r[names.index("local_resp")]) for r in raw} == {
        ("T", "F")
    }
    objs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(objs) == 11
    assert {"id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "community_id"} <= set(objs[0])
    assert objs[0]["local_orig"] is True and objs[0]["local_resp"] is False
    assert "service" not in objs[0]  # unset fields are left out, as Zeek's JSON does
    assert sorted(o["uid"] for o in objs) == sorted(str(r["uid"]) for r in rows)


def test_flow_timeout_replaces_zeek_defaults(tmp_path: Path) -> None:
    """A user timeout shorter than the gap between two conversations splits them."""
    trace = _require(ORACLE / "ssh-ssh.client-side-half-duplex.pcap")
    tsv = tmp_path / "conn.log"
    default = run_cli(["--read-pcap", str(trace), "--quiet", "--export-zeek-conn", str(tsv)])
    assert default.code == 0, default.stderr
    n_default = len(_check_tsv(tsv))
    short = run_cli(
        ["--read-pcap", str(trace), "--quiet", "--flow-timeout-s", "0.5"]
        + ["--export-zeek-conn", str(tsv)]
    )
    assert short.code == 0, short.stderr
    assert len(_check_tsv(tsv)) > n_default


def test_pipeline_is_refused(tmp_path: Path) -> None:
    trace = _require(POP3)
    res = run_cli(
        ["--read-pcap", str(trace), "--quiet", "--pipeline"]
        + ["--export-zeek-conn", str(tmp_path / "c.log")]
    )
    assert res.code == 2
    assert res.stderr.splitlines()[-1].startswith("error: --export-zeek-conn")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_a_valid_log(tmp_path: Path, sig: signal.Signals) -> None:
    trace = tmp_path / "big.pcap"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", "--packets", "3000000", "--flows", "20000"]
        + ["--small", str(trace)],
        check=True,
        env=env,
        cwd=REPO_ROOT,
    )
    tsv, jsonl = tmp_path / "conn.log", tmp_path / "conn.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", "--read-pcap", str(trace), "--quiet"]
        + ["--export-zeek-conn", str(tsv), "--export-zeek-conn-json", str(jsonl)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until the run is past start-up (the log's header is written), then interrupt
    deadline = time.monotonic() + 300
    while not (tsv.exists() and tsv.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "(interrupted)" in out  # stopped mid-trace, not after it
    rows = _check_tsv(tsv)
    assert rows
    for line in jsonl.read_text().splitlines():
        json.loads(line)


def test_conn_log_on_stdout_moves_the_summary_to_stderr() -> None:
    trace = _require(POP3)
    res = run_cli(["--read-pcap", str(trace), "--quiet", "--export-zeek-conn", "-"])
    assert res.code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "#separator \\x09" and lines[-1].startswith("#close\t")
    assert len([line for line in lines if not line.startswith("#")]) == 11
    assert "Capture complete" in res.stderr

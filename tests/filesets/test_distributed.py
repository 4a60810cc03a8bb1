"""File sets in the library and on Dask: every flow field equals the single-file run.

A LocalCluster of two worker processes runs in the default test run; one test starts a
real ``dask scheduler`` and two ``dask worker`` processes and connects by address; the
slow one kills a worker in the middle of a run (Dask retries its task).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.tests_support import run_netscope

import netscope

distributed = pytest.importorskip("distributed")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def generate(path: Path, *args: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", *args, str(path)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    return path


@pytest.fixture(scope="module")
def split_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A generated capture with long flows and its editcap split (flows cross 30 files)."""
    tmp = tmp_path_factory.mktemp("dask")
    whole = generate(tmp / "whole.pcap", "--packets", "30000", "--flows", "60", "--seed", "3")
    subprocess.run(["editcap", "-c", "1000", str(whole), str(tmp / "p.pcap")], check=True)
    return whole, sorted(str(p) for p in tmp.glob("p_*.pcap"))


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


OPTIONS = {"timeout_secs": 2.0}  # expiry and restarts inside the capture, too


def test_analyze_takes_a_set(split_set: tuple[Path, list[str]]) -> None:
    whole, parts = split_set
    one = netscope.analyze(whole, **OPTIONS)
    many = netscope.analyze(list(reversed(parts)), **OPTIONS)
    assert many.to_records() == one.to_records()
    assert many.counters == one.counters
    assert [e.packets for e in many.files] == [1000] * 30


def test_analyze_many_on_a_local_cluster(client: object, split_set: tuple[Path, list[str]]) -> None:
    whole, parts = split_set
    one = netscope.analyze(whole, **OPTIONS)
    many = netscope.analyze_many(parts, client, tasks=3, **OPTIONS)
    assert many.to_records() == one.to_records()
    assert many.counters == one.counters
    assert many.metadata["exact"] and many.metadata["tasks"] == 3
    assert len({t["worker"] for t in many.metadata["task_figures"]}) == 2
    assert sum(t["flows"] for t in many.metadata["task_figures"]) == len(one)


def test_analyze_many_without_client(split_set: tuple[Path, list[str]]) -> None:
    whole, parts = split_set
    assert (
        netscope.analyze_many(parts, **OPTIONS).to_records()
        == netscope.analyze(whole, **OPTIONS).to_records()
    )


def test_corpus_capture_on_the_cluster(client: object, corpus: object, tmp_path: Path) -> None:
    path = corpus("zeek-206_example_b.pcap")  # type: ignore[operator]
    subprocess.run(["editcap", "-c", "250", str(path), str(tmp_path / "z.pcap")], check=True)
    parts = sorted(str(p) for p in tmp_path.glob("z_*.pcap"))
    one = netscope.analyze(path, timeout_secs=60.0)
    many = netscope.analyze_many(parts, client, tasks=2, timeout_secs=60.0)
    assert many.to_records() == one.to_records()


def test_cli_dask_local_equals_single_run(
    split_set: tuple[Path, list[str]], tmp_path: Path
) -> None:
    whole, parts = split_set
    single = run_netscope(
        ["--quiet", "--flow-timeout-s", "2", "--export-json", str(tmp_path / "a.json"),
         "--export-csv", str(tmp_path / "a.csv"), str(whole)]
    )  # fmt: skip
    dask = run_netscope(
        ["--quiet", "--flow-timeout-s", "2", "--export-json", str(tmp_path / "b.json"),
         "--export-csv", str(tmp_path / "b.csv"), "--dask", "local:2", "-r",
         str(Path(parts[0]).parent / "p_*.pcap")]
    )  # fmt: skip
    assert single.code == 0 and dask.code == 0, dask.stderr
    assert json.loads((tmp_path / "b.json").read_text()) == json.loads(
        (tmp_path / "a.json").read_text()
    )
    assert (tmp_path / "b.csv").read_text() == (tmp_path / "a.csv").read_text()
    assert "30 read, 0 unreadable" in dask.stdout and "task 1:" in dask.stdout


def test_cli_dask_refuses_streaming_outputs(split_set: tuple[Path, list[str]]) -> None:
    res = run_netscope(["--quiet", "--stats", "--dask", "local:1", str(split_set[0])])
    assert res.code == 2
    assert "--dask does not support --stats" in res.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DASK_CMD = Path(sys.executable).with_name("dask")


@pytest.mark.skipif(not DASK_CMD.exists(), reason="needs the dask command")
def test_real_scheduler_and_workers_by_address(
    split_set: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """``dask scheduler`` and two ``dask worker ADDRESS`` processes, as docs/scale-out.md
    says to start them; netscope connects by address."""
    dask_cmd = str(DASK_CMD)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [
        subprocess.Popen(
            [dask_cmd, "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--dashboard-address", ":0"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [dask_cmd, "worker", address, "--nthreads", "1", "--no-dashboard"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        with distributed.Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=120)
        whole, parts = split_set
        res = run_netscope(
            ["--quiet", "--export-json", str(tmp_path / "d.json"), "--dask", address, *parts]
        )
        assert res.code == 0, res.stderr
        single = netscope.analyze(whole, timeout_secs=60.0, max_flows=100000)
        assert json.loads((tmp_path / "d.json").read_text()) == single.to_records()
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_worker_killed_mid_run_is_retried(
    client: object, split_set: tuple[Path, list[str]]
) -> None:
    """SIGKILL one worker while its tasks run: Dask reruns them, the result is the same."""
    from netscope import distributed as nd
    from netscope.flows.table import FlowOptions

    whole, parts = split_set
    options = FlowOptions(0, 2.0, True, True, True, False)
    tasks = 12
    futures = client.map(  # type: ignore[attr-defined]
        nd.shard_task, [parts] * tasks, range(tasks), [tasks] * tasks, [options] * tasks,
        [0] * tasks, pure=False, retries=nd.RETRIES,
    )  # fmt: skip
    pids = client.run(os.getpid)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    killed = False
    while not killed and time.monotonic() < deadline:
        processing = client.processing()  # type: ignore[attr-defined]
        busy = [w for w, keys in processing.items() if keys]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    assert killed
    merged = nd.merge_fragments(client.gather(futures))  # type: ignore[attr-defined]
    one = netscope.analyze(whole, timeout_secs=2.0)
    from netscope.flows.records import records_from_rows
    from netscope.sinks.exports import sorted_for_export

    records = records_from_rows(merged.keys, merged.i64, merged.f64, merged.u8)
    assert [r.to_dict() for r in sorted_for_export(records)] == one.to_records()
    assert merged.counters == one.counters


def test_cli_dask_local_with_worker_count(
    split_set: tuple[Path, list[str]], tmp_path: Path
) -> None:
    whole, parts = split_set
    res = run_netscope(
        ["--quiet", "--export-json", str(tmp_path / "w.json"), "--dask", "local",
         "--dask-workers", "1", *parts[:5]]
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert res.stdout.count("  task ") == 1  # one worker thread: one task
    single = netscope.analyze(parts[:5], timeout_secs=60.0, max_flows=100000)
    assert json.loads((tmp_path / "w.json").read_text()) == single.to_records()


def test_eviction_is_reported_as_not_exact(
    client: object, split_set: tuple[Path, list[str]]
) -> None:
    """With the flow cap reached, each task evicts from its own table: the metadata says
    the result is not exact; one task (no client) is the single-process table: exact."""
    whole, parts = split_set
    capped = netscope.analyze_many(parts, client, tasks=2, max_flows=8)
    assert capped.metadata["exact"] is False and capped.metadata["eviction_exact"] is False
    alone = netscope.analyze_many(parts, max_flows=8)
    assert alone.metadata["exact"] is True
    assert alone.to_records() == netscope.analyze(whole, max_flows=8).to_records()

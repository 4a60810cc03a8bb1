"""SIGINT/SIGTERM as a user meets them: real ``netscope`` processes, real signals.

Timing is controlled, never guessed:

- *start-up*: the input is a FIFO nobody writes to, so the process cannot get past opening
  its source; the signal is sent once ``/proc/PID/status`` shows NetScope's handlers are in
  (SIGTERM caught), which is before the heavy imports. A second case holds the kernel
  warm-up open with a hook.
- *running / shutdown*: a small driver script (``DRIVER``) runs ``cli.main`` with two test
  hooks: the first batch waits inside ``processor.feed`` — after the pcap writer got it,
  before it is counted, exactly where the old KeyboardInterrupt lost the agreement — until
  the stop is requested; the JSON export waits for a file the test creates. The test sends
  the signals at those points (marker files) and reads stdout/stderr from files.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netscope import signals
from netscope.gen.pcapfile import iter_pcap
from netscope.gen.traffic import generate
from netscope.signals import SECOND_SIGNAL_NOTE

REPO_ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 120.0  # generous: a first run compiles kernels; this only turns a hang into a failure

DRIVER = textwrap.dedent(
    """
    import pathlib, sys, time

    marks = pathlib.Path(sys.argv[1])

    def wait_for(done):
        deadline = time.monotonic() + 120
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)

    from netscope import signals
    from netscope.pipeline import inline, sharded
    from netscope.sinks import exports

    def hold_first_batch(cls):
        real = cls.feed

        def feed(self, batch):
            if batch.count and not (marks / "running").exists():
                (marks / "running").touch()
                wait_for(signals.stop_requested)
            real(self, batch)

        cls.feed = feed

    hold_first_batch(inline.InlineProcessor)
    hold_first_batch(sharded.PipelineProcessor)
    real_json = exports.write_json

    def write_json(target, records):
        (marks / "exporting").touch()
        wait_for((marks / "continue").exists)
        return real_json(target, records)

    exports.write_json = write_json
    if (marks / "hold-warm-up").exists():
        import netscope.engine

        def warm_up(*args, **kwargs):
            (marks / "warming").touch()
            time.sleep(120)

        netscope.engine.warm_up = warm_up
    from netscope.cli import main

    sys.exit(main(sys.argv[2:]))
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


@dataclass
class Proc:
    """A ``netscope`` process whose stdout/stderr go to files the test can poll."""

    popen: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def wait_until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.popen.kill()
                self.popen.wait()
                pytest.fail(f"never saw {what}:\n{self.stderr}\n{self.stdout[-2000:]}")
            time.sleep(0.02)

    def exit_code(self) -> int:
        try:
            return self.popen.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"netscope did not exit:\n{self.stderr}")


def launch(cmd: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> Proc:
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        popen = subprocess.Popen(
            cmd,
            stdout=fo,
            stderr=fe,
            stdin=subprocess.DEVNULL,
            env={**_env(), **(env or {})},
            cwd=REPO_ROOT,
        )
    return Proc(popen, out, err)


def netscope(args: list[str], tmp_path: Path) -> Proc:
    return launch([sys.executable, "-m", "netscope", *args], tmp_path)


def driven(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[Proc, Path]:
    """``netscope ARGS`` under DRIVER's hooks; returns the process and its marker folder."""
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    return launch([sys.executable, "-c", DRIVER, str(marks), *args], tmp_path, env), marks


def handlers_installed(pid: int) -> bool:
    """NetScope catches SIGTERM (Python alone does not): its handlers are in."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def summary_value(stdout: str, label: str) -> str:
    m = re.search(rf"^  {re.escape(label)}:\s+(.*)$", stdout, re.M)
    assert m, f"no {label!r} in summary:\n{stdout[-3000:]}"
    return m.group(1)


def pcap_packets(path: Path) -> int:
    return sum(1 for _ in iter_pcap(path))


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40k packets: more than one 16 MB read chunk, so the first batch is not the file."""
    path = tmp_path_factory.mktemp("signals") / "trace.pcap"
    generate(path, packets=40_000, flows=300, seed=5)
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "never-written.pcap"
    os.mkfifo(path)
    yield path


# ------------------------------------------------------------------ in-process: the handler


@pytest.fixture
def handlers() -> Iterator[Callable[[int], None]]:
    """netscope.signals installed in this process; yields "deliver this signal" (calls the
    installed handler as Python would, without a real signal that could reach pytest)."""
    before = signal.getsignal(signal.SIGINT)
    signals.reset()
    assert signals.install()

    def deliver(sig: int) -> None:
        handler = signal.getsignal(sig)
        assert callable(handler)
        handler(sig, None)

    yield deliver
    signals.reset()
    assert signal.getsignal(signal.SIGINT) is before


def test_start_up_signal_raises_interrupted(handlers: Callable[[int], None]) -> None:
    with pytest.raises(signals.Interrupted) as exc:
        handlers(signal.SIGTERM)
    assert exc.value.exit_code == 143
    assert not signals.stop_requested()


def test_start_up_signal_swallowed_on_the_way_still_ends_start_up(
    handlers: Callable[[int], None],
) -> None:
    """Python prints and drops an exception raised in a finaliser; begin_run re-raises."""
    with pytest.raises(signals.Interrupted):
        handlers(signal.SIGINT)
    with pytest.raises(signals.Interrupted) as exc:
        signals.begin_run()
    assert exc.value.exit_code == 130


def test_running_first_signal_sets_the_flag_second_restores_default_actions(
    handlers: Callable[[int], None], capfd: pytest.CaptureFixture[str]
) -> None:
    signals.begin_run()
    handlers(signal.SIGTERM)
    assert signals.stop_requested() and signals.stop_signal() == signal.SIGTERM
    assert capfd.readouterr().err == ""
    handlers(signal.SIGINT)
    assert capfd.readouterr().err == SECOND_SIGNAL_NOTE + "\n"
    assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL  # a third one ends the process
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_inherited_ignore_is_kept() -> None:
    """``cmd &`` in a script starts cmd with SIGINT ignored; NetScope leaves it so."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        signals.reset()
        assert signals.install()
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
    finally:
        signals.reset()
        signal.signal(signal.SIGINT, before)


def test_full_pipeline_queue_stops_waiting_when_a_stop_is_requested(
    handlers: Callable[[int], None],
) -> None:
    """File input waits for room in a shard queue; a stop request ends the wait (the
    packets become dispatch drops) instead of holding Ctrl-C up behind a slow shard."""
    import threading

    from netscope.batch import batch_from_packets
    from netscope.pipeline.sharded import ShardQueue, _Slice

    q = ShardQueue(capacity=1)
    item = _Slice(batch_from_packets([bytes(60)]), 0)
    never = threading.Event()
    assert q.offer(item, block=True, stop=never)  # empty queue: admitted
    signals.begin_run()
    handlers(signal.SIGINT)
    assert not q.offer(item, block=True, stop=never)  # full: would wait for ever before


# ------------------------------------------------------------------ start-up


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/PID/status")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_start_up_exits_quietly(
    sig: int, code: int, fifo: Path, tmp_path: Path
) -> None:
    """Sent as soon as the handlers are in: lands in the imports or in opening the FIFO
    (which never completes), never in the run loop. No traceback, no summary."""
    proc = netscope(["--read-pcap", str(fifo), "--export-json", str(tmp_path / "f.json")], tmp_path)
    deadline = time.monotonic() + WAIT_S
    while not handlers_installed(proc.popen.pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.popen.send_signal(sig)
    assert proc.exit_code() == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "f.json").exists()


@pytest.mark.parametrize("where", [["--read-pcap", "TRACE", "--workers", "2"], ["-i", "lo"]])
def test_signal_during_kernel_warm_up_exits_130(
    where: list[str], trace: Path, tmp_path: Path
) -> None:
    args = [str(trace) if a == "TRACE" else a for a in where]
    (tmp_path / "marks").mkdir()
    (tmp_path / "marks" / "hold-warm-up").touch()
    proc, marks = driven([*args, "--quiet"], tmp_path)
    proc.wait_until((marks / "warming").exists, "the kernel warm-up")
    proc.popen.send_signal(signal.SIGINT)
    assert proc.exit_code() == 130, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Capture complete" not in proc.stdout


# ------------------------------------------------------------------ running, then shutdown


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "sig"),
    [
        ([], signal.SIGINT),
        (["--workers", "2"], signal.SIGINT),
        (["-c", "35000"], signal.SIGINT),
        ([], signal.SIGTERM),
    ],
    ids=["inline", "pipeline", "count", "sigterm"],
)
def test_offline_interrupt_twice_keeps_summary_exports_and_pcap(
    extra: list[str], sig: int, trace: Path, tmp_path: Path
) -> None:
    """First signal mid-batch: that batch is finished, written *and* counted; a second one
    during the export gets one note and changes nothing; exit 0 (Ctrl-C is not an error)."""
    out_pcap, export = tmp_path / "out.pcap", tmp_path / "flows.json"
    proc, marks = driven(
        ["--read-pcap", str(trace), "--quiet", "--write-pcap", str(out_pcap),
         "--export-json", str(export), "--flow-timeout-s", "0", *extra],
        tmp_path,
    )  # fmt: skip
    proc.wait_until((marks / "running").exists, "the first batch")
    proc.popen.send_signal(sig)
    proc.wait_until((marks / "exporting").exists, "the export")
    proc.popen.send_signal(sig)
    proc.wait_until(lambda: SECOND_SIGNAL_NOTE in proc.stderr, "the second-signal note")
    (marks / "continue").touch()
    assert proc.exit_code() == 0, proc.stderr
    out, err = proc.stdout, proc.stderr
    assert "Traceback" not in err
    assert err.count(SECOND_SIGNAL_NOTE) == 1
    assert "(interrupted)." in out
    counted = int(summary_value(out, "Packets captured"))
    assert 0 < counted < 35_000  # one batch of the 40k-packet file
    assert pcap_packets(out_pcap) == counted
    assert summary_value(out, "Pcap written") == f"{out_pcap} ({counted} packets)"
    # the export covers exactly the counted packets: the same as a run that stops there
    reference = tmp_path / "reference.json"
    ref = subprocess.run(
        [sys.executable, "-m", "netscope", "--read-pcap", str(trace), "--quiet",
         "--flow-timeout-s", "0", "-c", str(counted), "--export-json", str(reference)],
        env=_env(), cwd=REPO_ROOT, capture_output=True, timeout=WAIT_S,
    )  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    assert json.loads(export.read_text()) == json.loads(reference.read_text())
    if "--workers" in extra:
        assert summary_value(out, "Dispatch drops") == "0"


@pytest.mark.slow
def test_third_signal_ends_the_process_at_once(trace: Path, tmp_path: Path) -> None:
    export = tmp_path / "flows.json"
    proc, marks = driven(
        ["--read-pcap", str(trace), "--quiet", "--export-json", str(export)], tmp_path
    )
    proc.wait_until((marks / "running").exists, "the first batch")
    proc.popen.send_signal(signal.SIGINT)
    proc.wait_until((marks / "exporting").exists, "the export")
    proc.popen.send_signal(signal.SIGINT)
    proc.wait_until(lambda: SECOND_SIGNAL_NOTE in proc.stderr, "the second-signal note")
    proc.popen.send_signal(signal.SIGINT)
    assert proc.exit_code() == -signal.SIGINT  # default action: the shell reports 130
    assert "Traceback" not in proc.stderr
    assert not export.exists()


@pytest.mark.slow
def test_pcap_matches_count_when_interrupted_mid_file(trace: Path, tmp_path: Path) -> None:
    """No hooks: Ctrl-C while per-packet lines are being printed (the slow, realistic
    case), then a second one straight after. Whatever batch the signals land in, the
    pcap holds exactly the packets the summary counts."""
    out_pcap = tmp_path / "out.pcap"
    proc = netscope(["--read-pcap", str(trace), "--write-pcap", str(out_pcap)], tmp_path)
    proc.wait_until(lambda: "\n#2 " in proc.stdout, "per-packet lines")
    proc.popen.send_signal(signal.SIGINT)
    time.sleep(0.2)  # not an assertion: only keeps the two signals from merging into one
    proc.popen.send_signal(signal.SIGINT)
    assert proc.exit_code() == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    counted = int(summary_value(proc.stdout, "Packets captured"))
    assert pcap_packets(out_pcap) == counted


# ------------------------------------------------------------------ live capture


@pytest.mark.privileged
@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root / CAP_NET_RAW")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux loopback 'lo'")
@pytest.mark.parametrize("backend", ["afpacket", "libpcap"])
def test_live_interrupt_twice(backend: str, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        out_pcap, export = tmp_path / "live.pcap", tmp_path / "flows.json"
        proc, marks = driven(
            ["-i", "lo", "-f", f"udp port {port}", "--quiet", "--write-pcap", str(out_pcap),
             "--export-json", str(export)],
            tmp_path,
            {"NETSCOPE_CAPTURE_BACKEND": backend},
        )  # fmt: skip
        proc.wait_until(lambda: "capturing on lo" in proc.stderr, "the capture start")
        assert f"({backend}," in proc.stderr
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(20):
                sender.sendto(bytes([i]) * 64, ("127.0.0.1", port))
        proc.wait_until((marks / "running").exists, "the first batch")
        proc.popen.send_signal(signal.SIGINT)
        proc.wait_until((marks / "exporting").exists, "the export")
        proc.popen.send_signal(signal.SIGINT)
        proc.wait_until(lambda: SECOND_SIGNAL_NOTE in proc.stderr, "the second-signal note")
        (marks / "continue").touch()
        assert proc.exit_code() == 0, proc.stderr
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    assert "Capture complete (interrupted)." in out
    counted = int(summary_value(out, "Packets captured"))
    assert 0 < counted <= 20
    assert pcap_packets(out_pcap) == counted
    assert sum(f["packets_total"] for f in json.loads(export.read_text())) == counted

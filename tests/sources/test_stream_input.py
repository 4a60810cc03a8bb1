"""Streaming input: ``--read-pcap -`` (standard input) and named pipes.

``tcpdump -w - | netscope --read-pcap -`` used to fail with "Illegal seek": format detection
seeked back after reading the magic number. Streams are now read without seeking (the magic
is handed to the reader), short reads are not mistaken for the end, and a chunk is processed
as soon as the writer pauses, so a stream that never ends still yields packets.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netscope.errors import CaptureError
from netscope.sources import open_capture_file
from netscope.sources.chunks import ChunkBuffer
from tests_support import REPO_ROOT

PCAP = "ndpi-reddit.pcap"  # 1942 packets, 60 flows
PCAPNG = "pcpp-pcapng-example.pcapng"  # two interfaces, and timestamps that get clamped
CLI_TIMEOUT_S = 120.0


def _netscope(
    args: list[str], stdin: Any, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    return subprocess.run(
        [sys.executable, "-m", "netscope", *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )


def _piped(producer: list[str], args: list[str]) -> subprocess.CompletedProcess[str]:
    """``producer | python -m netscope ARGS``, with a real pipe between two processes."""
    with subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as prod:
        assert prod.stdout is not None
        try:
            res = _netscope(args, prod.stdout)
        finally:
            prod.stdout.close()
        prod.wait(timeout=CLI_TIMEOUT_S)
    return res


def _file_run(capture: Path, out: Path) -> subprocess.CompletedProcess[str]:
    res = _netscope(
        ["--read-pcap", str(capture), "--quiet", "--export-json", str(out)], subprocess.DEVNULL
    )
    assert res.returncode == 0, res.stderr
    return res


def _summary(stdout: str) -> list[str]:
    """Summary lines without the ones naming the input or output paths."""
    skip = ("export:", "Warning:", "Reading packets from pcap:")  # the last names '-' or the path
    return [ln for ln in stdout.splitlines() if not any(word in ln for word in skip)]


@pytest.mark.parametrize("name", [PCAP, PCAPNG])
def test_cat_into_stdin_equals_the_file_run(
    corpus: Callable[[str], Path], tmp_path: Path, name: str
) -> None:
    """``cat F | netscope --read-pcap -`` exports exactly the flows of ``--read-pcap F``."""
    capture = corpus(name)
    from_file = _file_run(capture, tmp_path / "file.json")
    res = _piped(
        ["cat", str(capture)],
        ["--read-pcap", "-", "--quiet", "--export-json", str(tmp_path / "stdin.json")],
    )
    assert res.returncode == 0, res.stderr
    assert "Illegal seek" not in res.stderr
    file_flows = json.loads((tmp_path / "file.json").read_text())
    assert file_flows
    assert json.loads((tmp_path / "stdin.json").read_text()) == file_flows
    assert _summary(res.stdout) == _summary(from_file.stdout)
    # the same warnings, naming <stdin> instead of the path (pcapng: clamped timestamps)
    assert res.stderr.replace("<stdin>", str(capture)) == from_file.stderr


def test_real_tcpdump_writing_to_stdout(corpus: Callable[[str], Path], tmp_path: Path) -> None:
    """``tcpdump -r F -w - | netscope --read-pcap -``, the way the issue asked for it."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump not installed (scripts/install-system-deps.sh installs it)")
    capture = corpus(PCAP)
    _file_run(capture, tmp_path / "file.json")
    res = _piped(
        [tcpdump, "-r", str(capture), "-w", "-"],
        ["--read-pcap", "-", "--quiet", "--export-json", str(tmp_path / "tcpdump.json")],
    )
    assert res.returncode == 0, res.stderr
    got = json.loads((tmp_path / "tcpdump.json").read_text())
    assert got == json.loads((tmp_path / "file.json").read_text())


def test_truncated_stream_is_the_truncated_file_warning(
    corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    capture = corpus(PCAP)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(capture.read_bytes()[:50_001])
    from_file = _file_run(cut, tmp_path / "file.json")
    res = _piped(["cat", str(cut)], ["--read-pcap", "-", "--quiet"])
    assert res.returncode == 0, res.stderr
    assert from_file.stderr.startswith(f"warning: {cut}: file is truncated")
    assert res.stderr == from_file.stderr.replace(str(cut), "<stdin>")


def test_empty_stdin_is_a_one_line_error() -> None:
    res = _netscope(["--read-pcap", "-", "--quiet"], subprocess.DEVNULL)
    assert res.returncode == 1
    assert res.stderr.strip() == "error: <stdin>: empty file, not a capture file"


def test_stdin_terminal_is_refused() -> None:
    """Nobody types a capture: a terminal on stdin is an error, not an endless wait."""
    leader, follower = os.openpty()
    try:
        res = _netscope(["--read-pcap", "-", "--quiet"], follower)
    finally:
        os.close(leader)
        os.close(follower)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "standard input is a terminal" in lines[0], res.stderr


def test_stream_that_stays_open_yields_packets_before_its_end(
    corpus: Callable[[str], Path],
) -> None:
    """A live writer never closes the pipe: ``-c 5`` must stop after five packets without
    waiting for 16 MB or end of file, and exit while the writer still holds the pipe open."""
    head = corpus(PCAP).read_bytes()[:20_000]
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", "--read-pcap", "-", "-c", "5", "--quiet"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=False,
        env=env,
        cwd=REPO_ROOT,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(head)
        proc.stdin.flush()
        code = proc.wait(timeout=CLI_TIMEOUT_S)
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, err
    assert b"Packets captured:  5" in out


# ---------------------------------------------------------------- named pipes, in-process


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "capture.fifo"
    os.mkfifo(path)
    yield path


def _feed(path: Path, data: bytes, piece: int, keep_open: threading.Event | None = None) -> None:
    """Write ``data`` to the FIFO ``piece`` bytes at a time (each a separate write)."""
    try:
        with open(path, "wb", buffering=0) as w:
            for i in range(0, len(data), piece):
                w.write(data[i : i + piece])
            if keep_open is not None:
                keep_open.wait(CLI_TIMEOUT_S)
    except BrokenPipeError:
        pass  # the reader stopped early on purpose


@pytest.mark.parametrize("name", [PCAP, PCAPNG])
@pytest.mark.parametrize("chunk_bytes", [4096, 1 << 24], ids=["4k-chunks", "16M-chunks"])
def test_fifo_fed_by_a_writer_thread(
    corpus: Callable[[str], Path],
    capture_reader: Callable[..., Any],
    with_timeout: Callable[..., Any],
    fifo: Path,
    name: str,
    chunk_bytes: int,
) -> None:
    """Packets read from a FIFO written in odd-sized pieces are the file's packets, with the
    same report; small chunks put records across chunk boundaries of the stream."""
    capture = corpus(name)
    want = capture_reader(capture)
    writer = threading.Thread(target=_feed, args=(fifo, capture.read_bytes(), 1_337), daemon=True)
    writer.start()
    got = with_timeout(lambda: capture_reader(fifo, chunk_bytes=chunk_bytes, batch_packets=64))
    writer.join(CLI_TIMEOUT_S)
    assert [(p.ts_ns, p.data, p.wirelen, p.linktype) for p in got.packets] == [
        (p.ts_ns, p.data, p.wirelen, p.linktype) for p in want.packets
    ]
    assert got.report.packets_read == want.report.packets_read
    assert got.report.timestamps_clamped == want.report.timestamps_clamped
    assert (got.report.warning or "").replace(str(fifo), str(capture)) == (
        want.report.warning or ""
    )


def test_closing_a_fifo_reader_while_the_writer_is_silent(
    corpus: Callable[[str], Path], with_timeout: Callable[..., Any], fifo: Path
) -> None:
    """The reader thread waits on a silent writer in short slices: close() returns."""
    keep_open = threading.Event()
    data = corpus(PCAP).read_bytes()[:30_000]
    writer = threading.Thread(target=_feed, args=(fifo, data, 4096, keep_open), daemon=True)
    writer.start()

    def first_batch_then_close() -> int:
        reader = open_capture_file(fifo)
        try:
            batch = next(iter(reader.batches()))
            return batch.count
        finally:
            reader.close()

    try:
        assert with_timeout(first_batch_then_close) > 0
    finally:
        keep_open.set()
        writer.join(CLI_TIMEOUT_S)


def test_fifo_with_garbage_is_a_capture_error(with_timeout: Callable[..., Any], fifo: Path) -> None:
    writer = threading.Thread(target=_feed, args=(fifo, b"GIF89a" * 100, 7), daemon=True)
    writer.start()
    with pytest.raises(CaptureError, match="not a capture file"):
        with_timeout(lambda: open_capture_file(fifo))
    writer.join(CLI_TIMEOUT_S)


@pytest.mark.parametrize("prefetch", [True, False], ids=["thread", "inline"])
def test_chunk_buffer_on_a_pipe_serves_head_then_stream(prefetch: bool) -> None:
    """The bytes read for format detection come first, then the pipe, to its end."""
    rfd, wfd = os.pipe()
    payload = bytes(range(256)) * 40
    writer = threading.Thread(
        target=lambda: (os.write(wfd, payload[4:]), os.close(wfd)), daemon=True
    )
    writer.start()
    with open(rfd, "rb", buffering=0) as r:
        chunks = ChunkBuffer(r, 1000, prefetch=prefetch, head=payload[:4])
        assert chunks.stream
        try:
            while not chunks.eof:
                chunks.refill(chunks.available + 1)
            got = bytes(chunks.buf[chunks.pos : chunks.end])
        finally:
            chunks.close()
    writer.join(CLI_TIMEOUT_S)
    assert got == payload


def test_ctrl_c_on_an_open_stream_summarises(corpus: Callable[[str], Path]) -> None:
    """``tcpdump -w - | netscope --read-pcap -`` stopped with Ctrl-C: the reader is waiting on
    a pipe that stays open, and SIGINT must still give the interrupted summary and exit 0."""
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    env["PYTHONUNBUFFERED"] = "1"  # the first packet line shows that reading has started
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", "--read-pcap", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(corpus(PCAP).read_bytes()[:20_000])
        proc.stdin.flush()
        # the start-up lines come first; the first packet line shows that reading has begun
        first = proc.stdout.readline()
        while first and not first.startswith(b"#"):
            first = proc.stdout.readline()
        assert first.strip(), "no packet line before the pipe went quiet"
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=CLI_TIMEOUT_S)  # stdin stays open: no EOF can end the run
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    assert b"Capture complete (interrupted)." in out

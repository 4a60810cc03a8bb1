"""Exports never replace what they should write through (issue 12, items 1, 3 and 7).

Rules (docs/exports.md, "How files are written"): rename-over only for a regular file or a
missing path; ``-``, character devices and FIFOs are written through; symlinks are followed
to the file they name; an existing file keeps its mode; a new file gets 0644 under the
umask; a write error on a device is exit 1 with one error line. Every export flag is tried
because each used to open its file its own way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from netscope.sinks import atomic

from .conftest import REPO_ROOT, CliResult, need_root

Cli = Callable[..., CliResult]
HTTP = "dpkt-http.pcap"  # 43 packets, 3 flows


def errors(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# ------------------------------------------------------------------ standard output


def test_symlink_to_proc_self_fd_1_stays_a_symlink(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    """The issue's repro: ``ln -s /proc/self/fd/1 out; --export-json out``."""
    (tmp_path / "out").symlink_to("/proc/self/fd/1")
    result = cli_in(tmp_path, ["--read-pcap", str(corpus(HTTP)), "--quiet", "--export-json", "out"])
    assert result.code == 0, result.stderr
    assert (tmp_path / "out").is_symlink()
    assert os.readlink(tmp_path / "out") == "/proc/self/fd/1"
    flows = json.loads(result.stdout)  # stdout is the JSON alone ...
    assert len(flows) == 3
    assert "Capture complete." in result.stderr  # ... the summary moved to stderr


def test_standard_error_redirected_to_a_file_is_appended_to(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    """``--export-json /dev/stderr 2>log``: the JSON joins the log where it stands; the log
    (a regular file the shell opened) is neither replaced nor truncated. A private link to
    /proc/self/fd/2 stands in for /dev/stderr."""
    (tmp_path / "err").symlink_to("/proc/self/fd/2")
    log = tmp_path / "log"
    log.write_text("earlier line\n")
    inode = log.stat().st_ino
    with log.open("a") as fh:
        args = ["--read-pcap", str(corpus(HTTP)), "--quiet", "--export-json", "err"]
        result = cli_in(tmp_path, args, stderr=fh)
    assert result.code == 0
    assert (tmp_path / "err").is_symlink() and log.stat().st_ino == inode
    text = log.read_text()
    assert text.startswith("earlier line\n[\n")
    assert len(json.loads(text[len("earlier line\n") :])) == 3


@pytest.mark.parametrize("flag", ["--export-json", "--export-csv", "--expired-flows-jsonl"])
def test_dash_is_standard_output(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path, flag: str
) -> None:
    args = ["--read-pcap", str(corpus(HTTP)), "--quiet", flag, "-"]
    if flag == "--expired-flows-jsonl":
        args += ["--flow-timeout-s", "1"]  # so that some flows expire
    result = cli_in(tmp_path, args)
    assert result.code == 0, result.stderr
    assert not (tmp_path / "-").exists(), "'-' must not become a file"
    assert list(tmp_path.iterdir()) == []
    if flag == "--export-json":
        assert len(json.loads(result.stdout)) == 3
    elif flag == "--export-csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert len(rows) == 3
    else:
        reasons = [json.loads(line)["reason"] for line in result.stdout.splitlines()]
        assert reasons and set(reasons) == {"timeout"}
    assert "Capture complete." in result.stderr


def test_alerts_jsonl_dash_is_standard_output(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    result = cli_in(
        tmp_path,
        ["--read-pcap", str(corpus(HTTP)), "--quiet", "--anomalies", "--alerts-jsonl", "-"],
    )
    assert result.code == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    assert "Alerts JSONL:      - (0 alerts)" in result.stderr


def test_write_pcap_dash_is_a_pcap_on_stdout(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    src = corpus(HTTP)
    result = cli_in(tmp_path, ["--read-pcap", str(src), "--write-pcap", "-"], text=False)
    assert result.code == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "back.pcap").write_bytes(result.stdout)
    from netscope.gen.pcapfile import iter_pcap

    assert len(list(iter_pcap(tmp_path / "back.pcap"))) == 43
    # the packet lines and the summary went to stderr, not into the pcap
    assert b"Capture complete." in result.stderr


# ------------------------------------------------------------------ devices and FIFOs


def full_device(folder: Path) -> Path:
    """A private /dev/full node (never the system's): every write fails with ENOSPC."""
    need_root()
    node = folder / "full"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    return node


@pytest.mark.parametrize(
    "flag", ["--export-json", "--export-csv", "--expired-flows-jsonl", "--write-pcap"]
)
def test_full_device_is_written_through_and_fails(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path, flag: str
) -> None:
    node = full_device(tmp_path)
    result = cli_in(
        tmp_path,
        ["--read-pcap", str(corpus(HTTP)), "--quiet", "--flow-timeout-s", "1", flag, "full"],
    )
    assert stat.S_ISCHR(os.lstat(node).st_mode), "the device node was replaced"
    assert result.code == 1, result.stderr
    assert "Capture complete." in result.stdout
    assert "Packets captured:  43" in result.stdout
    lines = errors(result)
    assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no temp file either


def test_alerts_jsonl_to_full_device_fails(cli_in: Cli, tmp_path: Path) -> None:
    from netscope.gen.traffic import syn_flood

    node = full_device(tmp_path)
    syn_flood(tmp_path / "flood.pcap", "198.18.0.10", 80, sources=300, syns=1000, seed=1)
    result = cli_in(
        tmp_path,
        ["--read-pcap", "flood.pcap", "--quiet", "--anomalies", "--alerts-jsonl", "full"],
    )
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert result.code == 1, result.stderr
    lines = errors(result)
    assert len(lines) == 1 and "No space left on device" in lines[0]


def test_fifo_gets_the_export(cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:  # blocks until netscope opens the other end
            received.append(fh.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    args = ["--read-pcap", str(corpus(HTTP)), "--quiet", "--export-json", "pipe"]
    result = cli_in(tmp_path, args)
    thread.join(timeout=5)
    if thread.is_alive():  # netscope never opened the FIFO: unblock the reader
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5)
    assert result.code == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a file"
    assert len(json.loads(received[0])) == 3


# ------------------------------------------------------------------ symlinks and modes


def test_symlinked_export_replaces_the_file_it_names(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "flows.json"
    real.write_text("old\n")
    real.chmod(0o640)
    (tmp_path / "link.json").symlink_to("data/flows.json")
    (tmp_path / "dangling.csv").symlink_to("data/new.csv")
    result = cli_in(
        tmp_path,
        [
            "--read-pcap", str(corpus(HTTP)), "--quiet",
            "--export-json", "link.json", "--export-csv", "dangling.csv",
        ],
        umask=0o022,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "dangling.csv").is_symlink()
    assert len(json.loads(real.read_text())) == 3
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the existing file's mode is kept
    new = tmp_path / "data" / "new.csv"
    assert new.read_text().startswith("protocol,")
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["flows.json", "new.csv"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o000])
def test_new_files_are_0644_under_the_umask(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path, umask: int
) -> None:
    names = {
        "--export-json": "f.json",
        "--export-csv": "f.csv",
        "--expired-flows-jsonl": "e.jsonl",
        "--alerts-jsonl": "a.jsonl",
        "--write-pcap": "p.pcap",
    }
    args = ["--read-pcap", str(corpus(HTTP)), "--quiet", "--anomalies"]
    for flag, name in names.items():
        args += [flag, name]
    result = cli_in(tmp_path, args, umask=umask)
    assert result.code == 0, result.stderr
    for name in names.values():
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644 & ~umask, name


def test_existing_export_keeps_its_mode_and_is_still_atomic(tmp_path: Path) -> None:
    target = tmp_path / "flows.json"
    target.write_text("previous\n")
    target.chmod(0o640)
    inode = target.stat().st_ino
    with atomic.atomic_text_file(target) as out:
        out.write("new\n")
        assert target.read_text() == "previous\n"  # nothing visible before the rename
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # not mkstemp's 0600
    assert target.stat().st_ino != inode  # replaced by rename, not rewritten in place


# ------------------------------------------------------------------ stale temp files


def _kill_mid_export(target: Path) -> int:
    """A process that starts an export to ``target`` and is SIGKILLed before the rename."""
    code = (
        "import os, signal, sys\n"
        "from netscope.sinks.atomic import atomic_text_file\n"
        "with atomic_text_file(sys.argv[1]) as out:\n"
        "    out.write('[half')\n"
        "    out.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT / "src"), env.get("PYTHONPATH")) if p
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], env=env)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    return proc.pid


def test_sigkill_leftover_is_removed_by_the_next_export(
    cli_in: Cli, corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    target = tmp_path / "flows.json"
    dead = _kill_mid_export(target)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 1 and left[0].startswith(atomic.temp_prefix("flows.json", dead)), left
    # others' files that look alike, and a live process's temp file, must survive
    foreign = [".flows.json.abc123.tmp", ".flows.json.netscope-x-1.tmp", ".other.json.tmp"]
    live = f"{atomic.temp_prefix('flows.json', os.getpid())}abc.tmp"
    for name in [*foreign, live]:
        (tmp_path / name).write_text("not netscope's to delete")
    args = ["--read-pcap", str(corpus(HTTP)), "--quiet", "--export-json", "flows.json"]
    result = cli_in(tmp_path, args)
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["flows.json", *foreign, live])
    assert len(json.loads(target.read_text())) == 3


def test_remove_stale_temps_only_touches_its_own_target(tmp_path: Path) -> None:
    dead = _kill_mid_export(tmp_path / "a.json")
    _kill_mid_export(tmp_path / "b.json")
    removed = atomic.remove_stale_temps(tmp_path / "a.json")
    assert [p.name.startswith(atomic.temp_prefix("a.json", dead)) for p in removed] == [True]
    remaining = [p.name for p in tmp_path.iterdir()]
    assert len(remaining) == 1 and remaining[0].startswith(".b.json.netscope-")

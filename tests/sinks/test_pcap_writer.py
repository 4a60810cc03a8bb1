"""``--write-pcap``: files tcpdump/tshark read back identically, rotation, write failures.

SPEC §4/§6: pcap output carries the capture's link type and snaplen; rotation writes
``NAME.000001.pcap``… keeping the newest ``max-files``; a write or flush failure stops the
capture with exit 1 and a clear error after the summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netscope.batch import batch_from_packets
from netscope.gen import packets as pk
from netscope.gen.pcapfile import iter_pcap, pcap_linktype, write_pcap
from netscope.sinks.pcap_writer import PcapSink
from netscope.sinks.segments import segment_path

TCPDUMP = shutil.which("tcpdump")
TSHARK = shutil.which("tshark")
Packet = tuple[int, bytes, int]


def frames(n: int, size: int = 200, start_ns: int = 1_700_000_000_123_456_789) -> list[Packet]:
    """``n`` UDP frames of ``size`` bytes, 1.000000001 s apart (nanoseconds matter)."""
    out = []
    for i in range(n):
        payload = bytes([i % 251]) * (size - 42)
        udp = pk.udp("10.0.0.1", "10.0.0.2", 1000 + i % 50, 53, payload)
        frame = pk.ether_ip("10.0.0.1", "10.0.0.2", 17, udp)
        out.append((start_ns + i * 1_000_000_001, frame, len(frame)))
    return out


def read_back(path: str | Path) -> list[Packet]:
    return [(ts, data, wire) for ts, data, wire in iter_pcap(path)]


def tcpdump_packets(path: str | Path, expression: str = "") -> list[tuple[int, bytes]]:
    """Packets as tcpdump reads (and rewrites) them, with nanosecond timestamps."""
    assert TCPDUMP is not None
    cmd = [TCPDUMP, "--time-stamp-precision=nano", "-r", str(path), "-w", "-"]
    if expression:
        cmd.append(expression)
    proc = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
    tmp = Path(f"{path}.tcpdump")
    tmp.write_bytes(proc.stdout)
    try:
        return [(ts, data) for ts, data, _ in iter_pcap(tmp)]
    finally:
        tmp.unlink()


def write_with_sink(path: Path, packets: list[Packet], **kwargs: int) -> PcapSink:
    """Write ``packets`` through a sink (nanosecond magic unless ``nanos=False``)."""
    kwargs.setdefault("nanos", True)
    sink = PcapSink(path, linktype=1, snaplen=65535, **kwargs)  # type: ignore[arg-type]
    # several batches, so rotation and buffering cross batch boundaries
    for i in range(0, len(packets), 997):
        chunk = packets[i : i + 997]
        batch = batch_from_packets(
            [p[1] for p in chunk], ts_ns=[p[0] for p in chunk], wirelens=[p[2] for p in chunk]
        )
        sink.write(batch)
    sink.close()
    return sink


# ------------------------------------------------------------------ the writer itself


def test_plain_file_round_trip(tmp_path: Path) -> None:
    packets = frames(3000)
    out = tmp_path / "plain.pcap"
    sink = write_with_sink(out, packets)
    assert sink.packets == 3000
    assert read_back(out) == packets
    assert pcap_linktype(out) == 1
    if TCPDUMP:
        assert tcpdump_packets(out) == [(ts, data) for ts, data, _ in packets]


def test_snaplen_and_linktype_in_header(tmp_path: Path) -> None:
    out = tmp_path / "raw.pcap"
    sink = PcapSink(out, linktype=101, snaplen=96)
    sink.close()
    header = out.read_bytes()
    assert len(header) == 24
    assert int.from_bytes(header[16:20], "little") == 96
    assert int.from_bytes(header[20:24], "little") == 101
    assert header[:4] == bytes.fromhex("d4c3b2a1")  # microsecond magic, little-endian


def test_rotation_keeps_newest_segments(tmp_path: Path) -> None:
    packets = frames(20_000, size=400)  # ~8.3 MB of records, 1 MiB segments
    out = tmp_path / "rot.pcap"
    sink = write_with_sink(out, packets, rotate_mb=1, max_files=3)
    assert not out.exists(), "the unsuffixed base file must not be created"
    files = sorted(p.name for p in tmp_path.iterdir())
    total = sink.segments
    assert total >= 8
    assert files == [Path(segment_path(out, i)).name for i in range(total - 2, total + 1)]
    kept: list[Packet] = []
    for name in files:
        path = tmp_path / name
        assert path.stat().st_size <= 1024 * 1024
        kept += read_back(path)
        if TCPDUMP:
            assert [(ts, d) for ts, d, _ in read_back(path)] == tcpdump_packets(path)
    # the kept segments hold exactly the newest packets, in order
    assert kept == packets[len(packets) - len(kept) :]
    # all but the last segment are full: the next record would not have fitted
    for name in files[:-1]:
        assert (tmp_path / name).stat().st_size > 1024 * 1024 - 16 - 400


def test_rotation_name_without_pcap_suffix(tmp_path: Path) -> None:
    out = tmp_path / "cap.dump"
    write_with_sink(out, frames(10), rotate_mb=1, max_files=2)
    assert [p.name for p in tmp_path.iterdir()] == ["cap.000001.dump"]


def test_lone_packet_larger_than_a_segment(tmp_path: Path) -> None:
    out = tmp_path / "big.pcap"
    packets = frames(5, size=1200)
    sink = PcapSink(out, linktype=1, snaplen=65535, rotate_mb=1, max_files=10, nanos=True)
    sink.rotate_bytes = 1000  # smaller than one record: each packet gets its own segment
    batch = batch_from_packets([p[1] for p in packets], ts_ns=[p[0] for p in packets])
    sink.write(batch)
    sink.close()
    assert sink.segments == 5
    for i in range(5):
        assert read_back(segment_path(out, i + 1)) == [packets[i]]


# ------------------------------------------------------------------ through the CLI


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "in.pcap"
    write_pcap(path, ((ts, data) for ts, data, _ in frames(2000, size=300)), nanosecond=True)
    return path


@pytest.mark.skipif(TCPDUMP is None, reason="tcpdump not installed")
@pytest.mark.parametrize("expression", ["", "udp port 53 and udp[8] < 100", "not udp"])
def test_filter_and_rewrite_matches_tcpdump(
    cli: Callable[..., object], corpus: Callable[[str], Path], tmp_path: Path, expression: str
) -> None:
    source = corpus("dpkt-http.pcap") if expression == "not udp" else None
    src = source if source is not None else tmp_path / "in.pcap"
    if source is None:
        write_pcap(src, ((ts, d) for ts, d, _ in frames(500)), nanosecond=True)
    out = tmp_path / "out.pcap"
    args = ["--read-pcap", str(src), "--write-pcap", str(out), "--quiet", "--write-pcap-nanos"]
    if expression:
        args += ["-f", expression]
    result = cli(args)
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    assert tcpdump_packets(out) == tcpdump_packets(src, expression)
    assert "Pcap written:" in result.stdout  # type: ignore[attr-defined]
    if TSHARK:
        proc = subprocess.run(
            [TSHARK, "-r", str(out), "-T", "fields", "-e", "frame.len"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert len(proc.stdout.split()) == len(tcpdump_packets(out))


def test_cli_rotation(cli: Callable[..., object], trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "seg" / "r.pcap"
    out.parent.mkdir()
    # 2000 x 316 bytes = ~632 kB: rotate at 1 MB never triggers; use a bigger trace
    big = tmp_path / "big.pcap"
    write_pcap(big, ((ts, d) for ts, d, _ in frames(9000, size=400)), nanosecond=True)
    result = cli(
        [
            "--read-pcap", str(big), "--write-pcap", str(out), "--quiet",
            "--write-pcap-rotate-mb", "1", "--write-pcap-max-files", "2", "--write-pcap-nanos",
        ]
    )  # fmt: skip
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["r.000003.pcap", "r.000004.pcap"]
    kept = read_back(out.parent / names[0]) + read_back(out.parent / names[1])
    assert kept == [(ts, d, w) for ts, d, w in read_back(big)][-len(kept) :]


@pytest.mark.parametrize(
    "flags",
    [["--write-pcap-rotate-mb", "1"], ["--write-pcap-max-files", "3"]],
)
def test_rotation_flags_go_together(
    cli: Callable[..., object], trace: Path, tmp_path: Path, flags: list[str]
) -> None:
    result = cli(["--read-pcap", str(trace), "--write-pcap", str(tmp_path / "x.pcap"), *flags])
    assert result.code == 2  # type: ignore[attr-defined]
    assert "set both or neither" in result.stderr  # type: ignore[attr-defined]


def test_disk_full_fails_with_exit_1_after_summary(cli: Callable[..., object], trace: Path) -> None:
    result = cli(["--read-pcap", str(trace), "--write-pcap", "/dev/full", "--quiet"])
    assert result.code == 1  # type: ignore[attr-defined]
    assert "Capture complete." in result.stdout  # type: ignore[attr-defined]
    assert result.stderr.strip().splitlines()[-1] == (  # type: ignore[attr-defined]
        "error: cannot write pcap /dev/full: No space left on device"
    )


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for the test (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_tmpfs_fails_and_keeps_a_readable_prefix(
    cli: Callable[..., object], trace: Path, tiny_tmpfs: Path
) -> None:
    out = tiny_tmpfs / "out.pcap"
    result = cli(["--read-pcap", str(trace), "--write-pcap", str(out), "--quiet"])
    assert result.code == 1  # type: ignore[attr-defined]
    assert "Capture complete." in result.stdout  # type: ignore[attr-defined]
    assert "No space left on device" in result.stderr  # type: ignore[attr-defined]
    assert "Pcap written" not in result.stdout  # type: ignore[attr-defined]


def test_read_only_location_fails(
    cli: Callable[..., object], trace: Path, tiny_tmpfs: Path
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    result = cli(["--read-pcap", str(trace), "--write-pcap", str(tiny_tmpfs / "o.pcap")])
    assert result.code == 1  # type: ignore[attr-defined]
    assert "Read-only file system" in result.stderr  # type: ignore[attr-defined]
    assert "error: cannot create pcap" in result.stderr  # type: ignore[attr-defined]


def test_mixed_link_types_are_refused(
    cli: Callable[..., object], corpus: Callable[[str], Path], tmp_path: Path
) -> None:
    src = corpus("pcpp-pcapng-example.pcapng")
    out = tmp_path / "mixed.pcap"
    result = cli(["--read-pcap", str(src), "--write-pcap", str(out), "--quiet"])
    assert result.code == 1  # type: ignore[attr-defined]
    assert "mixes link types" in result.stderr  # type: ignore[attr-defined]
    assert "Capture complete." in result.stdout  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("snaplens", "expected"), [((1500,), 1500), ((300, 9000), 9000), ((0,), 262144)]
)
def test_pcapng_input_keeps_its_snaplen(
    cli: Callable[..., object], tmp_path: Path, snaplens: tuple[int, ...], expected: int
) -> None:
    """Rewriting a pcapng declares the largest snaplen of its interfaces (0 = no limit),
    not the maximum, and tcpdump reads the result back."""
    from netscope.gen.pcapfile import write_pcapng

    src = tmp_path / "in.pcapng"
    packets = frames(20)
    write_pcapng(
        src,
        interfaces=[(1, 9, s) for s in snaplens],
        records=[(k % len(snaplens), ts, d, w) for k, (ts, d, w) in enumerate(packets)],
    )
    out = tmp_path / "out.pcap"
    result = cli(["--read-pcap", str(src), "--write-pcap", str(out), "--quiet"])
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    header = out.read_bytes()[:24]
    assert int.from_bytes(header[16:20], "little") == expected
    assert len(read_back(out)) == len(packets)
    if TCPDUMP:
        assert len(tcpdump_packets(out)) == len(packets)


# ------------------------------------------------------------------ rotation keeps users' files


def test_rotation_continues_after_an_earlier_runs_segments(tmp_path: Path) -> None:
    """Numbering continues after the highest segment already there; existing segments
    count towards max-files, so only the oldest *of this series* goes; nothing else is
    touched (issue 14: an earlier version deleted every NAME.NNNNNN.pcap first)."""
    out = tmp_path / "r.pcap"
    others = ["r.notes.pcap", "other.000001.pcap", "r.000003.txt", "r.00001.pcap", "r.pcap.bak"]
    for name in ("r.000007.pcap", "r.000012.pcap", *others):
        (tmp_path / name).write_bytes(b"old")
    packets = frames(3000, size=400)  # ~1.25 MB of records: two 1 MiB segments
    sink = write_with_sink(out, packets, rotate_mb=1, max_files=3)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([*others, "r.000012.pcap", "r.000013.pcap", "r.000014.pcap"])
    assert (tmp_path / "r.000012.pcap").read_bytes() == b"old"  # kept, never rewritten
    kept = read_back(tmp_path / "r.000013.pcap") + read_back(tmp_path / "r.000014.pcap")
    assert kept == packets
    assert sink.summary().endswith("(3000 packets, 2 segments, 3 of the series kept)")


def test_rotation_sizes_are_mebibytes(tmp_path: Path) -> None:
    out = tmp_path / "m.pcap"
    write_with_sink(out, frames(3000, size=400), rotate_mb=1, max_files=5)
    first = (tmp_path / "m.000001.pcap").stat().st_size
    assert 1_000_000 < first <= 1_048_576


@pytest.mark.parametrize(
    ("name", "first"),
    [("cap.dump", "cap.000001.dump"), ("cap", "cap.000001"), ("a.b.pcap", "a.b.000001.pcap")],
)
def test_segments_keep_the_users_extension(
    cli: Callable[..., object], trace: Path, tmp_path: Path, name: str, first: str
) -> None:
    folder = tmp_path / "seg"
    folder.mkdir()
    result = cli(
        [
            "--read-pcap", str(trace), "--quiet", "--write-pcap", str(folder / name),
            "--write-pcap-rotate-mb", "1", "--write-pcap-max-files", "2",
        ]
    )  # fmt: skip
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    assert [p.name for p in folder.iterdir()] == [first]
    assert len(read_back(folder / first)) == 2000


def test_rotation_without_write_pcap_is_a_usage_error(
    cli: Callable[..., object], trace: Path
) -> None:
    flags = ["--write-pcap-rotate-mb", "1", "--write-pcap-max-files", "3"]
    result = cli(["--read-pcap", str(trace), "--quiet", *flags])
    assert result.code == 2  # type: ignore[attr-defined]
    assert "--write-pcap-rotate-mb needs a pcap output" in result.stderr  # type: ignore[attr-defined]


# ------------------------------------------------------------------ microsecond magic


def _tshark_epochs(path: Path) -> list[str]:
    assert TSHARK is not None
    proc = subprocess.run(
        [TSHARK, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return proc.stdout.split()


def _struct_records(path: Path) -> tuple[int, list[tuple[int, int, int]]]:
    """The magic and ``(sec, frac, caplen)`` of every record, parsed by hand."""
    import struct

    raw = path.read_bytes()
    magic = struct.unpack_from("<I", raw, 0)[0]
    records, pos = [], 24
    while pos < len(raw):
        sec, frac, cap, _wire = struct.unpack_from("<IIII", raw, pos)
        records.append((sec, frac, cap))
        pos += 16 + cap
    return magic, records


def test_written_pcaps_use_the_microsecond_magic(
    cli: Callable[..., object], trace: Path, tmp_path: Path
) -> None:
    """A nanosecond input rewritten without --write-pcap-nanos: µs magic and µs records
    (truncated), readable by tcpdump, tshark, dpkt's reader and a hand-written parser."""
    out = tmp_path / "us.pcap"
    result = cli(["--read-pcap", str(trace), "--quiet", "--write-pcap", str(out)])
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    source = frames(2000, size=300)
    magic, records = _struct_records(out)
    assert magic == 0xA1B2C3D4
    expected = [(ts // 10**9, (ts % 10**9) // 1000) for ts, _, _ in source]
    assert [(s, f) for s, f, _ in records] == expected
    assert all(f < 1_000_000 for _, f, _ in records)

    import dpkt

    with out.open("rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        assert reader.datalink() == 1
        got = [(round(ts * 1e6), bytes(buf)) for ts, buf in reader]
    micros = [s * 10**6 + f for s, f in expected]
    assert got == list(zip(micros, [data for _, data, _ in source], strict=True))
    if TCPDUMP:
        assert [d for _, d in tcpdump_packets(out)] == [d for _, d, _ in source]
    if TSHARK:
        epochs = _tshark_epochs(out)
        assert epochs[0] == f"{expected[0][0]}.{expected[0][1]:06d}000"  # µs then zeros
        assert len(epochs) == 2000


def test_write_pcap_nanos_keeps_nanoseconds(
    cli: Callable[..., object], trace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ns.pcap"
    result = cli(
        ["--read-pcap", str(trace), "--quiet", "--write-pcap", str(out), "--write-pcap-nanos"]
    )
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    magic, _ = _struct_records(out)
    assert magic == 0xA1B23C4D
    assert read_back(out) == frames(2000, size=300)
    if TSHARK:
        ts = frames(1)[0][0]
        assert _tshark_epochs(out)[0] == f"{ts // 10**9}.{ts % 10**9:09d}"


def test_write_pcap_nanos_with_a_microsecond_input_stays_microseconds(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    src = tmp_path / "us-in.pcap"
    write_pcap(src, ((ts - ts % 1000, d) for ts, d, _ in frames(50)), nanosecond=False)
    out = tmp_path / "out.pcap"
    result = cli(
        ["--read-pcap", str(src), "--quiet", "--write-pcap", str(out), "--write-pcap-nanos"]
    )
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    assert _struct_records(out)[0] == 0xA1B2C3D4
    assert read_back(out) == read_back(src)


def test_write_pcap_nanos_from_the_config_file(
    cli: Callable[..., object], trace: Path, tmp_path: Path
) -> None:
    config = tmp_path / "n.toml"
    config.write_text("[output]\nwrite_pcap_nanos = true\n")
    out = tmp_path / "cfg.pcap"
    args = ["--config", str(config), "--read-pcap", str(trace), "--quiet", "--write-pcap", str(out)]
    assert cli(args).code == 0  # type: ignore[attr-defined]
    assert _struct_records(out)[0] == 0xA1B23C4D
    assert cli([*args, "--no-write-pcap-nanos"]).code == 0  # type: ignore[attr-defined]
    assert _struct_records(out)[0] == 0xA1B2C3D4


# ------------------------------------------------------------------ failures keep the counts


def test_full_disk_with_rotation_still_reports_the_packets(
    cli: Callable[..., object], tmp_path: Path, tiny_tmpfs: Path
) -> None:
    """Issue 12 item 4: the failing batch is still analysed, so the summary says what was
    read (it said "Packets captured: 0": the whole file is one batch, and the first
    rotation's write fails inside it)."""
    big = tmp_path / "big.pcap"  # ~1.7 MB: more than one 1 MiB segment
    write_pcap(big, ((ts, d) for ts, d, _ in frames(4000, size=400)), nanosecond=True)
    out = tiny_tmpfs / "r.pcap"
    result = cli(
        [
            "--read-pcap", str(big), "--quiet", "--write-pcap", str(out),
            "--write-pcap-rotate-mb", "1", "--write-pcap-max-files", "3",
        ]
    )  # fmt: skip
    assert result.code == 1  # type: ignore[attr-defined]
    assert "Packets captured:  4000" in result.stdout  # type: ignore[attr-defined]
    assert "Flows:             50 active" in result.stdout  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    segment = tiny_tmpfs / "r.000001.pcap"
    assert errors == [f"error: cannot write pcap {segment}: No space left on device"]


@pytest.mark.parametrize(
    ("tsresol", "magic"), [(9, 0xA1B23C4D), (6, 0xA1B2C3D4), (None, 0xA1B2C3D4)]
)
def test_write_pcap_nanos_follows_a_pcapng_inputs_resolution(
    cli: Callable[..., object], tmp_path: Path, tsresol: int | None, magic: int
) -> None:
    """A pcapng interface finer than 1 µs has nanoseconds to keep; a µs one does not."""
    from netscope.gen.pcapfile import write_pcapng

    src = tmp_path / "in.pcapng"
    packets = frames(20)
    if tsresol != 9:
        packets = [(ts - ts % 1000, d, w) for ts, d, w in packets]
    write_pcapng(src, interfaces=[(1, tsresol, 65535)], records=[(0, *p) for p in packets])
    out = tmp_path / "out.pcap"
    args = ["--read-pcap", str(src), "--quiet", "--write-pcap", str(out), "--write-pcap-nanos"]
    result = cli(args)
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    assert _struct_records(out)[0] == magic
    assert read_back(out) == packets

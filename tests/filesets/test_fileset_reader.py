"""The file-set reader in process: path expansion, ordering, the k-way merge, progress."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from netscope.batch import batch_from_packets
from netscope.fileset_input import _Progress
from netscope.gen.pcapfile import PcapWriter
from netscope.sources.fileset import FileSetReader, expand_paths, merge_windows


def write(path: Path, stamps: list[int], tag: int) -> Path:
    """A pcap of 60-byte packets whose first byte is ``tag`` and second the index."""
    with PcapWriter(path, nanosecond=True) as w:
        for i, ts in enumerate(stamps):
            w.write(ts, bytes([tag, i]) + bytes(58))
    return path


def read_all(reader: FileSetReader) -> list[tuple[int, int, int]]:
    out = []
    for b in reader.batches():
        for i in range(b.count):
            data = bytes(b.packet_bytes(i)[:2])
            out.append((int(b.ts_ns[i]), data[0], data[1]))
    return out


def test_merge_windows_orders_by_time_ties_by_part() -> None:
    a = batch_from_packets([b"a0", b"a1", b"a2"], ts_ns=[1, 5, 9])
    b = batch_from_packets([b"b0", b"b1"], ts_ns=[5, 6])
    m = merge_windows([(a, 0, 3), (b, 0, 2)])
    got = [bytes(m.packet_bytes(i)) for i in range(m.count)]
    assert got == [b"a0", b"a1", b"b0", b"b1", b"a2"]
    assert list(m.ts_ns[: m.count]) == [1, 5, 5, 6, 9]


def test_files_ordered_by_first_packet_and_overlaps_merged(tmp_path: Path) -> None:
    late = write(tmp_path / "a.pcap", [100, 200, 300], 1)
    early = write(tmp_path / "b.pcap", [10, 20, 150, 250], 2)
    after = write(tmp_path / "c.pcap", [400, 500], 3)
    reader = FileSetReader(expand_paths([after, late, early]), batch_packets=2)
    got = read_all(reader)
    assert [ts for ts, _, _ in got] == [10, 20, 100, 150, 200, 250, 300, 400, 500]
    assert [tag for _, tag, _ in got] == [2, 2, 1, 2, 1, 2, 1, 3, 3]
    assert [e.packets for e in reader.entries] == [2, 3, 4]


def test_expand_paths_directories_globs_duplicates(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    write(d / "x.pcap", [1], 1)
    write(d / "y.pcap", [2], 1)
    (d / ".hidden").write_bytes(b"")
    entries = expand_paths([d, str(d / "*.pcap"), str(tmp_path / "none-*.pcap")])
    assert [Path(e.path).name for e in entries] == ["x.pcap", "y.pcap", "none-*.pcap"]
    assert entries[-1].error is not None and "no file matches" in entries[-1].error


def test_progress_line_rewrites_one_line() -> None:
    err = io.StringIO()
    p = _Progress(err, 10)
    p.last -= 1.0  # as if half a second had passed
    p.update(3, 1000)
    assert err.getvalue().startswith("\rfiles 3/10 · 1000 packets · ")
    p.clear()
    assert err.getvalue().endswith("\r\x1b[K")
    assert np.char.count(err.getvalue(), "\n") == 0


def test_a_file_out_of_time_order_keeps_its_record_order(tmp_path: Path) -> None:
    """editcap can write records whose timestamps go back; merged with another file,
    such a file's own records stay in file order (nothing lost, nothing duplicated)."""
    jumpy = write(tmp_path / "a.pcap", [10, 50, 30, 60], 1)
    other = write(tmp_path / "b.pcap", [20, 40, 70], 2)
    got = read_all(FileSetReader(expand_paths([jumpy, other])))
    assert [(tag, i) for _, tag, i in got if tag == 1] == [(1, 0), (1, 1), (1, 2), (1, 3)]
    assert sorted(got) == sorted(
        [(10, 1, 0), (50, 1, 1), (30, 1, 2), (60, 1, 3), (20, 2, 0), (40, 2, 1), (70, 2, 2)]
    )

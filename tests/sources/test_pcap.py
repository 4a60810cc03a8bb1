"""Classic pcap reader: formats, damaged files, and the chunk/batch machinery.

Files are built byte by byte with ``struct`` here (not with :mod:`netscope.gen.pcapfile`) for
the cases a well-behaved writer cannot produce: old versions, swapped length fields, absurd
record lengths, files cut mid-record. One test also reads what ``gen.pcapfile`` writes, so the
writer the other tests rely on and the reader agree.
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netscope.errors import CaptureError
from netscope.sources import open_capture_file

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D

# (ts_ns, data, wirelen)
Rec = tuple[int, bytes, int]


def pcap_header(
    *,
    nanosecond: bool = False,
    big_endian: bool = False,
    version: tuple[int, int] = (2, 4),
    snaplen: int = 65535,
    linktype: int = 1,
) -> bytes:
    """The 24-byte global header, in the requested byte order."""
    order = ">" if big_endian else "<"
    magic = MAGIC_NS if nanosecond else MAGIC_US
    return struct.pack(order + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, linktype)


def pcap_record(
    ts_ns: int,
    data: bytes,
    wirelen: int | None = None,
    *,
    nanosecond: bool = False,
    big_endian: bool = False,
    incl_override: int | None = None,
    swap_lengths: bool = False,
) -> bytes:
    """One record header + data. ``incl_override`` lies about the captured length;
    ``swap_lengths`` writes (orig, incl) the way some pre-2.3 writers did."""
    order = ">" if big_endian else "<"
    sec, frac = divmod(ts_ns, 1_000_000_000)
    if not nanosecond:
        frac //= 1000
    incl = len(data) if incl_override is None else incl_override
    orig = len(data) if wirelen is None else wirelen
    first, second = (orig, incl) if swap_lengths else (incl, orig)
    return struct.pack(order + "IIII", sec, frac, first, second) + data


def pcap_file_bytes(records: Sequence[Rec], **header_kw: object) -> bytes:
    """A complete pcap image; record options follow the header's byte order/resolution."""
    ns = bool(header_kw.get("nanosecond", False))
    be = bool(header_kw.get("big_endian", False))
    body = b"".join(pcap_record(t, d, w, nanosecond=ns, big_endian=be) for t, d, w in records)
    return pcap_header(**header_kw) + body  # type: ignore[arg-type]


def sample_records(n: int, seed: int = 7, max_len: int = 300) -> list[Rec]:
    """``n`` packets of random length/content with nanosecond-resolution timestamps.

    Random sizes (including 0 and 1 byte) put record boundaries at every alignment, which is
    what exposes off-by-one errors in chunk refills.
    """
    rng = random.Random(seed)
    recs: list[Rec] = []
    ts = 1_700_000_000_123_456_789
    for i in range(n):
        size = rng.choice([0, 1, 14, 54, 60, rng.randrange(0, max_len + 1)])
        data = bytes(rng.getrandbits(8) for _ in range(size))
        wirelen = size + (rng.randrange(0, 100) if i % 5 == 0 else 0)
        recs.append((ts, data, wirelen))
        ts += rng.randrange(1, 5_000_000_000)
    return recs


def write(tmp_path: Path, image: bytes, name: str = "t.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(image)
    return path


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("nanosecond", [False, True], ids=["us", "ns"])
def test_byte_orders_and_resolutions(
    tmp_path: Path, capture_reader: Callable[..., Any], big_endian: bool, nanosecond: bool
) -> None:
    """All four pcap variants deliver identical bytes and ns-exact timestamps.

    Microsecond files can only carry whole microseconds, so the expected timestamp is the
    written one truncated to µs; nanosecond files must round-trip to the nanosecond.
    """
    recs = sample_records(50)
    # Timestamps at the edges of the representable range: second 0, the last u32 second,
    # and a fraction of 999_999_999 ns (999_999 µs).
    recs[0] = (0, recs[0][1], recs[0][2])
    recs[1] = ((2**32 - 1) * 1_000_000_000 + 999_999_999, recs[1][1], recs[1][2])
    image = pcap_file_bytes(recs, nanosecond=nanosecond, big_endian=big_endian, linktype=101)
    res = capture_reader(write(tmp_path, image))
    assert len(res.packets) == len(recs)
    for got, (ts, data, wirelen) in zip(res.packets, recs, strict=True):
        want_ts = ts if nanosecond else ts - ts % 1000
        assert got.ts_ns == want_ts
        assert got.data == data
        assert got.wirelen == wirelen
        assert got.linktype == 101
    assert [p.index for p in res.packets] == list(range(1, len(recs) + 1))
    assert res.report.kind == "pcap"
    assert res.report.link_types == {101}
    assert res.report.packets_read == len(recs)
    assert not res.report.truncated
    assert res.report.warning is None


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("nanosecond", [False, True], ids=["us", "ns"])
def test_reads_what_gen_pcapfile_writes(
    tmp_path: Path, capture_reader: Callable[..., Any], big_endian: bool, nanosecond: bool
) -> None:
    """The project's own writer and reader agree (other tests build files with the writer)."""
    from netscope.gen import pcapfile

    recs = sample_records(40, seed=3)
    path = tmp_path / "w.pcap"
    pcapfile.write_pcap(path, recs, linktype=113, nanosecond=nanosecond, big_endian=big_endian)
    res = capture_reader(path)
    assert [(p.ts_ns, p.data, p.wirelen) for p in res.packets] == [
        (t if nanosecond else t - t % 1000, d, w) for t, d, w in recs
    ]
    assert res.report.link_types == {113}


def test_linktype_fcs_bits_are_masked(tmp_path: Path, capture_reader: Callable[..., Any]) -> None:
    """The header's link-type field may carry FCS info in its upper bits; only the low 16
    bits name the link type."""
    image = pcap_header(linktype=0x1000_0001) + pcap_record(5, b"\x00" * 60)
    res = capture_reader(write(tmp_path, image))
    assert res.report.link_types == {1}
    assert res.packets[0].linktype == 1


def test_header_only_file_is_empty_not_an_error(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    res = capture_reader(write(tmp_path, pcap_header()))
    assert res.packets == []
    assert res.report.packets_read == 0
    assert not res.report.truncated
    assert res.report.warning is None
    assert res.report.link_types == {1}


def test_zero_length_packets(tmp_path: Path, capture_reader: Callable[..., Any]) -> None:
    """caplen 0 is a legal record (a filter kept nothing), not the end of the file."""
    recs: list[Rec] = [(1, b"", 60), (2, b"abc", 3), (3, b"", 0)]
    res = capture_reader(write(tmp_path, pcap_file_bytes(recs)))
    assert [(p.data, p.wirelen) for p in res.packets] == [(b"", 60), (b"abc", 3), (b"", 0)]


def test_pre_2_3_swapped_length_fields(tmp_path: Path, capture_reader: Callable[..., Any]) -> None:
    """Before version 2.3 some writers stored (orig, incl); libpcap swaps them back when the
    'captured' length exceeds the 'original' one. Version 2.4 files are taken literally."""
    data = bytes(range(40))
    image = pcap_header(version=(2, 2)) + pcap_record(1000, data, 1514, swap_lengths=True)
    image += pcap_record(2000, data[:10], 10)  # a normal record after it stays normal
    res = capture_reader(write(tmp_path, image))
    assert [(p.data, p.wirelen) for p in res.packets] == [(data, 1514), (data[:10], 10)]
    assert not res.report.truncated


def test_version_2_4_short_capture_not_swapped(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    data = bytes(range(40))
    image = pcap_header(version=(2, 4)) + pcap_record(1000, data, 1514)
    res = capture_reader(write(tmp_path, image))
    assert [(p.data, p.wirelen) for p in res.packets] == [(data, 1514)]


# ------------------------------------------------------------------ damaged files


@pytest.mark.parametrize("cut", [1, 8, 15, 16, 17, 40], ids=lambda c: f"cut{c}")
def test_truncated_last_record(
    tmp_path: Path, capture_reader: Callable[..., Any], cut: int
) -> None:
    """A file cut inside its last record (header or data) delivers every complete record and
    reports a warning naming how many were read (SPEC §3)."""
    recs = sample_records(9, seed=11)
    last = pcap_record(99, bytes(range(50)), None)
    image = pcap_file_bytes(recs) + last[:cut]
    res = capture_reader(write(tmp_path, image))
    assert [p.data for p in res.packets] == [d for _, d, _ in recs]
    assert res.report.truncated
    assert res.report.packets_read == 9
    assert res.report.warning is not None
    assert "9 packets" in res.report.warning
    assert "\n" not in res.report.warning


def test_truncated_record_across_small_chunks(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    """The same truncation found after several refills (the leftover is not at a chunk edge)."""
    recs = sample_records(120, seed=5)
    image = pcap_file_bytes(recs) + pcap_record(1, bytes(500))[:300]
    res = capture_reader(write(tmp_path, image), chunk_bytes=128, batch_packets=5)
    assert len(res.packets) == 120
    assert res.report.truncated
    assert "120 packets" in res.report.warning


@pytest.mark.parametrize("absurd", [0x7FFF_FFFF, 0xFFFF_FFFF, 300 * 1024 * 1024])
def test_absurd_caplen_stops_with_warning(
    tmp_path: Path, capture_reader: Callable[..., Any], absurd: int
) -> None:
    """A corrupt record length must not make the reader allocate or wait for gigabytes: it
    stops there, keeps what came before, and says so."""
    recs = sample_records(6, seed=2)
    bogus = pcap_record(7, bytes(64), incl_override=absurd, wirelen=absurd)
    image = pcap_file_bytes(recs) + bogus + pcap_record(8, bytes(64))
    res = capture_reader(write(tmp_path, image))
    assert [p.data for p in res.packets] == [d for _, d, _ in recs]
    assert res.report.truncated
    assert res.report.warning is not None
    assert "6 packets" in res.report.warning


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(b"", id="zero-length"),
        pytest.param(b"GIF89a, definitely not a capture" * 4, id="garbage"),
        pytest.param(b"\xd4\xc3\xb2", id="three-bytes"),
        pytest.param(pcap_header()[:20], id="short-pcap-header"),
        pytest.param(b"\x0a\x0d\x0d\x0a" + b"\xff" * 4, id="short-pcapng-header"),
    ],
)
def test_not_a_capture_file(tmp_path: Path, image: bytes) -> None:
    path = write(tmp_path, image, "bad.pcap")
    with pytest.raises(CaptureError) as info:
        reader = open_capture_file(path)
        try:
            list(reader.batches())
        finally:
            reader.close()
    message = info.value.one_line()
    assert "\n" not in message
    assert str(path) in message
    assert info.value.exit_code == 1


def test_directory_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        open_capture_file(tmp_path)
    assert "\n" not in info.value.one_line()
    assert "director" in str(info.value)


def test_missing_path_is_a_capture_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "missing.pcap"
    with pytest.raises(CaptureError) as info:
        open_capture_file(missing)
    assert "\n" not in info.value.one_line()
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("version", [(1, 4), (1, 0), (3, 0)], ids=lambda v: f"v{v[0]}.{v[1]}")
def test_unsupported_version_rejected(tmp_path: Path, version: tuple[int, int]) -> None:
    """libpcap refuses versions other than 2.x; so do we (and say which version it was)."""
    image = pcap_header(version=version) + pcap_record(1, bytes(60))
    with pytest.raises(CaptureError) as info:
        open_capture_file(write(tmp_path, image))
    assert f"{version[0]}.{version[1]}" in str(info.value)
    assert "\n" not in info.value.one_line()


# ------------------------------------------------------------------ chunks and batches


@pytest.mark.parametrize(
    ("chunk_bytes", "batch_packets"),
    [(64, 1), (64, 3), (100, 7), (1000, 2), (4096, 32768), (16 * 1024 * 1024, 32768)],
    ids=lambda v: str(v),
)
def test_chunk_and_batch_boundaries(
    tmp_path: Path, capture_reader: Callable[..., Any], chunk_bytes: int, batch_packets: int
) -> None:
    """Records straddling chunk ends, batches filling mid-chunk, and records much larger than
    the chunk (forcing the buffer to grow) all come out byte-identical and in order."""
    recs = sample_records(400, seed=chunk_bytes ^ batch_packets)
    big = bytes((i * 7) % 251 for i in range(5000))  # larger than every small chunk above
    recs.insert(10, (5, big, 5000))
    recs.insert(200, (6, big[::-1], 9000))
    recs.append((7, big[:3000], 3000))
    res = capture_reader(
        write(tmp_path, pcap_file_bytes(recs, nanosecond=True)),
        chunk_bytes=chunk_bytes,
        batch_packets=batch_packets,
    )
    assert len(res.packets) == len(recs)
    for got, (ts, data, wirelen) in zip(res.packets, recs, strict=True):
        assert (got.ts_ns, got.data, got.wirelen) == (ts, data, wirelen)
    assert [p.index for p in res.packets] == list(range(1, len(recs) + 1))
    assert all(0 < n <= batch_packets for n in res.batch_sizes)
    assert sum(res.batch_sizes) == len(recs)
    assert not res.report.truncated


def test_batch_fields_are_consistent(tmp_path: Path) -> None:
    """Within one batch, offsets/caplens address disjoint slices of ``buf`` that match the
    file's records, and ``first_index`` continues across batches."""
    recs = sample_records(64, seed=9)
    reader = open_capture_file(write(tmp_path, pcap_file_bytes(recs)), batch_packets=10)
    expected_index = 1
    k = 0
    try:
        for batch in reader.batches():
            assert batch.first_index == expected_index
            n = batch.count
            ends = batch.offsets[:n] + batch.caplens[:n]
            assert (batch.offsets[1:n] >= ends[: n - 1]).all()
            assert int(ends.max()) <= batch.buf.shape[0]
            for i in range(n):
                assert bytes(batch.packet_bytes(i)) == recs[k][1]
                k += 1
            expected_index += n
    finally:
        reader.close()
    assert k == len(recs)


# ------------------------------------------------------------------ fuzzing


def _drain(path: Path, **kwargs: Any) -> int:
    """Packets read from ``path``; CaptureError (unreadable) counts as -1. Anything else
    raised is a reader bug."""
    try:
        reader = open_capture_file(path, **kwargs)
    except CaptureError:
        return -1
    n = 0
    try:
        for batch in reader.batches():
            assert batch.count > 0
            ends = batch.offsets[: batch.count] + batch.caplens[: batch.count]
            assert int(ends.max()) <= batch.buf.shape[0]
            assert (batch.caplens[: batch.count] >= 0).all()
            n += batch.count
    finally:
        reader.close()
    return n


@settings(
    max_examples=int(os.environ.get("NETSCOPE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
    chunk_bytes=st.sampled_from([64, 256, 1 << 20]),
)
def test_mutated_pcap_never_crashes(
    tmp_path: Path,
    with_timeout: Callable[..., Any],
    flips: list[tuple[int, int]],
    cut: int,
    chunk_bytes: int,
) -> None:
    """Random byte changes and cuts: the reader delivers packets or reports the file, and
    never raises anything but CaptureError, never reads outside its buffer."""
    image = bytearray(pcap_file_bytes(sample_records(30, seed=1, max_len=150)))
    for pos, value in flips:
        image[pos % len(image)] = value
    path = write(tmp_path, bytes(image[: max(cut, 0) or len(image)]), "fuzz.pcap")
    read = with_timeout(lambda: _drain(path, chunk_bytes=chunk_bytes, batch_packets=7), 30)
    assert read <= 30 + 10_000 // 16

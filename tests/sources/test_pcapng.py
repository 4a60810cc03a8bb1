"""pcapng reader: block types, interfaces and resolutions, sections, damaged files.

Well-formed files come from :func:`netscope.gen.pcapfile.write_pcapng`; anything it cannot
express (options after packet data, if_tsoffset, obsolete packet blocks, corrupt lengths,
several sections) is built here with ``struct`` so each test says exactly which bytes it feeds.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netscope.errors import CaptureError
from netscope.gen import pcapfile
from netscope.sources import open_capture_file

SHB, IDB, PB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6
BOM = 0x1A2B3C4D
NS = 1_000_000_000

# (iface, ts_ns, data, wirelen)
NgRec = tuple[int, int, bytes, int | None]


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def block(btype: int, body: bytes, order: str = "<") -> bytes:
    body = _pad4(body)
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad4(value)


def end_of_options(order: str = "<") -> bytes:
    return struct.pack(order + "HH", 0, 0)


def shb(order: str = "<", options: bytes = b"") -> bytes:
    return block(SHB, struct.pack(order + "IHHq", BOM, 1, 0, -1) + options, order)


def idb(linktype: int, snaplen: int = 0, options: bytes = b"", order: str = "<") -> bytes:
    return block(IDB, struct.pack(order + "HHI", linktype, 0, snaplen) + options, order)


def epb(
    iface: int,
    ticks: int,
    data: bytes,
    wirelen: int | None = None,
    options: bytes = b"",
    order: str = "<",
) -> bytes:
    wl = len(data) if wirelen is None else wirelen
    head = struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wl)
    return block(EPB, head + _pad4(data) + options, order)


def packets(n: int, seed: int = 1, max_len: int = 200) -> list[bytes]:
    rng = random.Random(seed)
    return [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, max_len))) for _ in range(n)]


def write(tmp_path: Path, image: bytes, name: str = "t.pcapng") -> Path:
    path = tmp_path / name
    path.write_bytes(image)
    return path


def write_ng(
    tmp_path: Path,
    interfaces: Sequence[tuple[int, int | None, int]],
    records: Sequence[NgRec],
    name: str = "t.pcapng",
    **kw: Any,
) -> Path:
    path = tmp_path / name
    pcapfile.write_pcapng(path, interfaces=interfaces, records=records, **kw)
    return path


# ------------------------------------------------------------------ well-formed files


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_shb_idb_epb(tmp_path: Path, capture_reader: Callable[..., Any], big_endian: bool) -> None:
    """The common case in both section byte orders: one Ethernet interface, default µs."""
    datas = packets(30)
    base = 1_700_000_000 * NS
    recs: list[NgRec] = [(0, base + i * 1_234_567_000, d, len(d) + i) for i, d in enumerate(datas)]
    res = capture_reader(write_ng(tmp_path, [(1, None, 0)], recs, big_endian=big_endian))
    assert [(p.ts_ns, p.data, p.wirelen, p.linktype) for p in res.packets] == [
        (ts, d, wl, 1) for _, ts, d, wl in recs
    ]
    assert res.report.kind == "pcapng"
    assert res.report.link_types == {1}
    assert res.report.packets_read == 30
    assert not res.report.truncated and res.report.warning is None


def test_simple_packet_blocks(tmp_path: Path, capture_reader: Callable[..., Any]) -> None:
    """SPBs carry neither interface nor timestamp: they belong to interface 0 and we give
    them the last timestamp seen, and their captured length is min(wire length, snaplen)."""
    datas = packets(12, seed=4)
    recs: list[NgRec] = [(0, 0, d, None) for d in datas]
    res = capture_reader(write_ng(tmp_path, [(101, None, 65535)], recs, use_simple_blocks=True))
    assert [p.data for p in res.packets] == datas
    assert [p.wirelen for p in res.packets] == [len(d) for d in datas]
    assert {p.linktype for p in res.packets} == {101}


def test_simple_packet_block_snaplen_truncates(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    """An SPB longer than the interface snaplen keeps only snaplen bytes (pcapng spec)."""
    data = bytes(range(100))
    image = shb() + idb(1, snaplen=50) + block(SPB, struct.pack("<I", 1500) + data)
    res = capture_reader(write(tmp_path, image))
    assert [(p.data, p.wirelen) for p in res.packets] == [(data[:50], 1500)]


def test_two_interfaces_linktypes_and_resolutions(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    """Interleaved packets of an ns Ethernet interface, a µs SLL interface and a 2^-20 s raw
    interface each keep their own link type, and timestamps convert per interface."""
    interfaces = [(1, 9, 65535), (113, 6, 65535), (101, 0x80 | 20, 65535)]
    rng = random.Random(5)
    recs: list[NgRec] = []
    ts = 1_650_000_000 * NS + 123_456_789
    for i, d in enumerate(packets(60, seed=6)):
        recs.append((i % 3, ts, d, None))
        ts += rng.randrange(1, 3 * NS)
    res = capture_reader(write_ng(tmp_path, interfaces, recs))
    assert len(res.packets) == len(recs)
    lt_of = {0: 1, 1: 113, 2: 101}
    for got, (iface, ts_ns, data, _) in zip(res.packets, recs, strict=True):
        assert got.data == data
        assert got.linktype == lt_of[iface]
        if iface == 0:
            assert got.ts_ns == ts_ns
        elif iface == 1:
            assert got.ts_ns == ts_ns - ts_ns % 1000
        else:
            # 2^-20 s ticks: the writer floors to a tick, the reader floors back to a ns.
            assert ts_ns - NS / 2**20 - 1 <= got.ts_ns <= ts_ns
    assert res.report.link_types == {1, 113, 101}


@pytest.mark.parametrize(
    ("tsresol", "ticks", "want_ns"),
    [
        (6, 1_700_000_000_123_456, 1_700_000_000_123_456_000),
        (9, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789),
        (3, 1_700_000_000_123, 1_700_000_000_123_000_000),
        (0, 1_700_000_000, 1_700_000_000 * NS),
        (0x80 | 10, (5 << 10) + 512, 5 * NS + NS // 2),  # 1/1024 s ticks
        (0x80 | 0, 7, 7 * NS),
        (0x80 | 30, (1_700_000_000 << 30) + (1 << 29), 1_700_000_000 * NS + NS // 2),
        (0x80 | 40, (12_345 << 40) + (1 << 38), 12_345 * NS + NS // 4),
        (12, 12_345_678_901_234_567, 12_345_678_901_234),  # picoseconds
    ],
    ids=["us", "ns", "ms", "s", "2^-10", "2^0", "2^-30", "2^-40", "ps"],
)
def test_if_tsresol(
    tmp_path: Path, capture_reader: Callable[..., Any], tsresol: int, ticks: int, want_ns: int
) -> None:
    image = shb() + idb(1, options=option(9, bytes([tsresol])) + end_of_options())
    image += epb(0, ticks, b"x" * 20)
    res = capture_reader(write(tmp_path, image))
    assert [p.ts_ns for p in res.packets] == [want_ns]


def test_if_tsoffset_is_added(tmp_path: Path, capture_reader: Callable[..., Any]) -> None:
    """if_tsoffset (seconds) is added to every timestamp of its interface."""
    opts = option(14, struct.pack("<q", 1_000_000_000)) + end_of_options()
    image = shb() + idb(1, options=opts) + epb(0, 2_500_000, b"y" * 20)
    res = capture_reader(write(tmp_path, image))
    assert [p.ts_ns for p in res.packets] == [1_000_000_002 * NS + 500_000_000]


# ------------------------------------------------------------------ out-of-range timestamps

TS_MAX_NS = 2**63 - 2  # 2262-04-11T23:47:16.854775806Z; INT64_MAX is the flow kernel's


def _offset_image(offset_s: int, ticks: Sequence[int], tsresol: int | None = None) -> bytes:
    opts = option(14, struct.pack("<q", offset_s))
    if tsresol is not None:
        opts += option(9, bytes([tsresol]))
    image = shb() + idb(1, options=opts + end_of_options())
    for i, t in enumerate(ticks):
        image += epb(0, t, bytes([i]) * 20)
    return image


@pytest.mark.parametrize(
    ("offset_s", "want_ns"),
    [
        (10**10, TS_MAX_NS),  # used to raise OverflowError while building the tables
        (9 * 10**9, TS_MAX_NS),  # used to wrap int64 into a negative first_seen
        (2**63 - 1, TS_MAX_NS),
        (-(10**10), 0),  # before 1970
        (-(2**63), 0),
    ],
    ids=["1e10", "9e9", "int64-max", "minus-1e10", "int64-min"],
)
def test_out_of_range_tsoffset_is_clamped_with_a_warning(
    tmp_path: Path, capture_reader: Callable[..., Any], offset_s: int, want_ns: int
) -> None:
    """Out-of-range timestamps are clamped to [1970, 2262] (docs/capture.md), every packet is
    kept, and the report says how many, naming the file, in one line."""
    path = write(tmp_path, _offset_image(offset_s, [1_700_000_000_000_000, 1_700_000_001_000_000]))
    res = capture_reader(path)
    assert [p.ts_ns for p in res.packets] == [want_ns, want_ns]
    assert res.report.timestamps_clamped == 2
    assert not res.report.truncated
    warning = res.report.warning
    assert warning is not None and "\n" not in warning
    assert str(path) in warning and "2 packets" in warning and "clamped" in warning


def test_tick_count_beyond_2262_is_clamped(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    """Without any offset a 64-bit µs count can pass year 2262 (it used to wrap negative), and
    a count of 2**63 or more is beyond int64 whatever the unit."""
    ticks = [2**62, 2**64 - 1, 1_700_000_000_000_000]
    res = capture_reader(write(tmp_path, _offset_image(0, ticks)))
    assert [p.ts_ns for p in res.packets] == [TS_MAX_NS, TS_MAX_NS, 1_700_000_000 * NS]
    assert res.report.timestamps_clamped == 2


def test_last_representable_ns_is_not_clamped(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    """The edges themselves are in range: ns ticks exactly at TS_MAX_NS, an offset bringing a
    timestamp back to exactly 0, and a large offset that still fits."""
    image = _offset_image(0, [TS_MAX_NS, TS_MAX_NS + 1], tsresol=9)
    res = capture_reader(write(tmp_path, image, "edge.pcapng"))
    assert [p.ts_ns for p in res.packets] == [TS_MAX_NS, TS_MAX_NS]
    assert res.report.timestamps_clamped == 1
    image = _offset_image(-1_700_000_000, [1_700_000_000_000_000], tsresol=6)
    res = capture_reader(write(tmp_path, image, "zero.pcapng"))
    assert [p.ts_ns for p in res.packets] == [0]
    assert res.report.warning is None
    image = _offset_image(9_000_000_000, [10**6], tsresol=6)
    res = capture_reader(write(tmp_path, image, "late.pcapng"))
    assert [p.ts_ns for p in res.packets] == [9_000_000_001 * NS]
    assert res.report.warning is None


def test_simple_packet_blocks_inherit_a_clamped_timestamp(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    """An SPB takes the previous packet's timestamp, clamped or not, and is counted with it;
    a truncation warning and the timestamp warning share the one line."""
    image = _offset_image(10**10, [5]) + block(SPB, struct.pack("<I", 20) + b"s" * 20)
    image += epb(0, 7, b"t" * 20)[:-6]  # cut short
    res = capture_reader(write(tmp_path, image))
    assert [p.ts_ns for p in res.packets] == [TS_MAX_NS, TS_MAX_NS]
    assert res.report.timestamps_clamped == 2
    assert res.report.truncated
    warning = res.report.warning
    assert warning is not None and "\n" not in warning
    assert "truncated" in warning and "2 packets have timestamps" in warning


def test_real_capture_with_ticks_beyond_2262(
    corpus: Callable[[str], Path], capture_reader: Callable[..., Any]
) -> None:
    """pcpp-pcapng-example's SLL interface has tick counts near 2**64: tshark shows 100
    packets after year 2262; we keep all 159 and clamp (and count) exactly those 100."""
    res = capture_reader(corpus("pcpp-pcapng-example.pcapng"))
    assert len(res.packets) == 159
    assert res.report.timestamps_clamped == 100
    assert sum(p.ts_ns == TS_MAX_NS for p in res.packets) == 100
    assert res.report.warning is not None and "100 packets" in res.report.warning


def test_clamped_timestamps_through_the_cli(tmp_path: Path, cli: Callable[..., Any]) -> None:
    """The user's view: exit 0, one warning line on stderr, the summary's Warning row, and an
    export whose first_seen is 2262 rather than negative."""
    import json

    image = shb() + idb(1, options=option(14, struct.pack("<q", 9 * 10**9)) + end_of_options())
    eth = bytes(12) + b"\x08\x00" + bytes.fromhex("4500001c0001000040110000c0a80001c0a80002")
    image += epb(0, 1_700_000_000_000_000, eth + bytes.fromhex("04d2003500080000"))
    path = write(tmp_path, image)
    out = tmp_path / "flows.json"
    res = cli(["--read-pcap", str(path), "--quiet", "--export-json", str(out)])
    assert res.code == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "clamped" in warnings[0], res.stderr
    assert "Warning:" in res.stdout
    flows = json.loads(out.read_text())
    assert flows and all(f["first_seen"] >= 0 for f in flows)


def test_unknown_blocks_are_skipped(tmp_path: Path, capture_reader: Callable[..., Any]) -> None:
    datas = packets(5, seed=8)
    recs: list[NgRec] = [(0, (i + 1) * NS, d, None) for i, d in enumerate(datas)]
    res = capture_reader(write_ng(tmp_path, [(1, 9, 0)], recs, extra_unknown_block=True))
    assert [p.data for p in res.packets] == datas
    assert not res.report.truncated


def test_epb_options_and_other_known_blocks(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    """Options after EPB data (comment, flags), a Name Resolution Block, an Interface
    Statistics Block and a Decryption Secrets Block neither corrupt the data nor stop the
    reader; an obsolete Packet Block is still read."""
    d1, d2, d3 = b"\x11" * 61, b"\x22" * 64, b"\x33" * 7
    comment = option(1, b"hello, comment") + option(2, struct.pack("<I", 1)) + end_of_options()
    nrb = block(
        4, struct.pack("<HH", 1, 8) + bytes([10, 0, 0, 1]) + b"host" + struct.pack("<HH", 0, 0)
    )
    isb = block(5, struct.pack("<III", 0, 0, 1000))
    dsb = block(10, struct.pack("<II", 0x544C534B, 4) + b"keys")
    old_pb = block(PB, struct.pack("<HHIIII", 0, 0, 0, 42, len(d3), 99) + _pad4(d3))
    image = shb() + idb(1) + nrb + epb(0, 1, d1, options=comment) + isb + dsb
    image += epb(0, 2, d2) + old_pb
    res = capture_reader(write(tmp_path, image))
    assert [(p.data, p.wirelen) for p in res.packets] == [(d1, 61), (d2, 64), (d3, 99)]
    assert res.packets[2].ts_ns == 42_000
    assert not res.report.truncated, res.report.warning


def test_several_sections(tmp_path: Path, capture_reader: Callable[..., Any]) -> None:
    """A second SHB starts a new section with its own byte order and interface numbering:
    interface 0 of section 2 is a different interface than interface 0 of section 1."""
    d = packets(6, seed=9)
    sec1 = shb("<") + idb(1, options=option(9, b"\x09") + end_of_options()) + epb(0, 5, d[0])
    sec1 += epb(0, 6, d[1])
    sec2 = shb(">") + idb(113, order=">") + idb(276, order=">")
    sec2 += epb(1, 7_000_000, d[2], order=">") + epb(0, 8_000_000, d[3], order=">")
    sec3 = shb("<") + idb(101) + epb(0, 9, d[4]) + block(SPB, struct.pack("<I", len(d[5])) + d[5])
    res = capture_reader(write(tmp_path, sec1 + sec2 + sec3))
    assert [(p.data, p.linktype) for p in res.packets] == [
        (d[0], 1), (d[1], 1), (d[2], 276), (d[3], 113), (d[4], 101), (d[5], 101)
    ]  # fmt: skip
    assert [p.ts_ns for p in res.packets[:5]] == [5, 6, 7 * NS, 8 * NS, 9000]
    assert res.report.link_types == {1, 113, 276, 101}
    assert not res.report.truncated


@pytest.mark.parametrize(
    ("chunk_bytes", "batch_packets"), [(64, 1), (64, 4), (200, 3), (4096, 32768)], ids=str
)
def test_chunk_and_batch_boundaries(
    tmp_path: Path, capture_reader: Callable[..., Any], chunk_bytes: int, batch_packets: int
) -> None:
    """Blocks (packet and structural) straddling chunk ends, and blocks larger than the chunk,
    still come out byte-identical."""
    datas = packets(150, seed=chunk_bytes + batch_packets, max_len=400)
    datas[17] = bytes(range(256)) * 12  # 3 KiB: bigger than the small chunks
    interfaces = [(1, 9, 0), (113, 6, 0)]
    recs: list[NgRec] = [(i % 2, (i + 1) * 1000, d, None) for i, d in enumerate(datas)]
    path = write_ng(tmp_path, interfaces, recs, extra_unknown_block=True)
    res = capture_reader(path, chunk_bytes=chunk_bytes, batch_packets=batch_packets)
    assert [p.data for p in res.packets] == datas
    assert [p.linktype for p in res.packets] == [1 if i % 2 == 0 else 113 for i in range(150)]
    assert all(0 < n <= batch_packets for n in res.batch_sizes)
    assert [p.index for p in res.packets] == list(range(1, 151))
    assert not res.report.truncated


# ------------------------------------------------------------------ damaged files


@pytest.mark.parametrize("cut", [4, 11, 12, 30, 60], ids=lambda c: f"cut{c}")
def test_truncated_last_block(tmp_path: Path, capture_reader: Callable[..., Any], cut: int) -> None:
    datas = packets(8, seed=10)
    image = shb() + idb(1) + b"".join(epb(0, i, d) for i, d in enumerate(datas))
    image += epb(0, 99, bytes(100))[:cut]
    res = capture_reader(write(tmp_path, image))
    assert [p.data for p in res.packets] == datas
    assert res.report.truncated
    assert res.report.warning is not None
    assert "8 packets" in res.report.warning


def test_truncated_section_header(tmp_path: Path) -> None:
    """A file that stops inside its first SHB is not a readable capture."""
    with pytest.raises(CaptureError) as info:
        reader = open_capture_file(write(tmp_path, shb()[:10]))
        try:
            list(reader.batches())
        finally:
            reader.close()
    assert "\n" not in info.value.one_line()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(epb(3, 1, b"z" * 20), id="unknown-interface"),
        pytest.param(struct.pack("<II", EPB, 30) + bytes(22), id="length-not-multiple-of-4"),
        pytest.param(struct.pack("<II", EPB, 8) + bytes(24), id="length-below-minimum"),
        pytest.param(
            struct.pack("<IIIIIII", EPB, 32, 0, 0, 0, 1000, 1000) + struct.pack("<I", 32),
            id="caplen-beyond-block",
        ),
    ],
)
def test_corrupt_block_stops_with_warning(
    tmp_path: Path, capture_reader: Callable[..., Any], bad: bytes
) -> None:
    good = packets(3, seed=12)
    image = shb() + idb(1) + b"".join(epb(0, i, d) for i, d in enumerate(good))
    image += bad + epb(0, 50, b"after")
    res = capture_reader(write(tmp_path, image))
    assert [p.data for p in res.packets] == good
    assert res.report.truncated
    assert res.report.warning is not None
    assert "3 packets" in res.report.warning


def test_packet_before_any_interface(tmp_path: Path, capture_reader: Callable[..., Any]) -> None:
    res = capture_reader(write(tmp_path, shb() + epb(0, 1, b"q" * 30)))
    assert res.packets == []
    assert res.report.truncated and res.report.warning is not None


def test_huge_block_length_is_corruption_not_allocation(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    image = shb() + idb(1) + epb(0, 1, b"a" * 40) + struct.pack("<II", EPB, 0xFFFF_FFFC)
    image += bytes(64)
    res = capture_reader(write(tmp_path, image))
    assert [p.data for p in res.packets] == [b"a" * 40]
    assert res.report.truncated


def test_interface_described_after_packets(
    tmp_path: Path, capture_reader: Callable[..., Any]
) -> None:
    """An IDB may appear anywhere in its section: packets after it can use the new interface,
    and the earlier interface keeps its own settings."""
    image = shb() + idb(1, options=option(9, b"\x09") + end_of_options()) + epb(0, 10, b"a" * 30)
    image += idb(113) + epb(1, 20, b"b" * 30) + epb(0, 30, b"c" * 30)
    res = capture_reader(write(tmp_path, image), batch_packets=2)
    assert [(p.data[:1], p.linktype, p.ts_ns) for p in res.packets] == [
        (b"a", 1, 10), (b"b", 113, 20_000), (b"c", 1, 30)
    ]  # fmt: skip
    assert res.report.link_types == {1, 113}
    assert not res.report.truncated


@pytest.mark.parametrize("cut", [8, 16, 20], ids=lambda c: f"cut{c}")
def test_truncated_inside_interface_block(
    tmp_path: Path, capture_reader: Callable[..., Any], cut: int
) -> None:
    image = shb() + idb(1, options=option(9, b"\x09") + end_of_options())[:cut]
    res = capture_reader(write(tmp_path, image))
    assert res.packets == []
    assert res.report.truncated
    assert "0 packets" in res.report.warning


# ------------------------------------------------------------------ fuzzing


def _fuzz_image() -> bytes:
    d = packets(12, seed=21, max_len=120)
    image = shb() + idb(1, options=option(9, b"\x09") + end_of_options()) + idb(113)
    for i, data in enumerate(d[:8]):
        image += epb(i % 2, i * 1000, data, options=option(1, b"c") + end_of_options())
    image += block(SPB, struct.pack("<I", len(d[8])) + d[8]) + block(0x80001234, b"??")
    image += shb(">") + idb(101, order=">") + epb(0, 5, d[9], order=">")
    return image


@settings(
    max_examples=int(os.environ.get("NETSCOPE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 4_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 4_000),
    chunk_bytes=st.sampled_from([64, 256, 1 << 20]),
)
def test_mutated_pcapng_never_crashes(
    tmp_path: Path,
    with_timeout: Callable[..., Any],
    flips: list[tuple[int, int]],
    cut: int,
    chunk_bytes: int,
) -> None:
    """Random byte changes and cuts: packets or a report, never another exception, never a
    slice outside the buffer, never a hang."""
    image = bytearray(_fuzz_image())
    for pos, value in flips:
        image[pos % len(image)] = value
    path = write(tmp_path, bytes(image[: cut or len(image)]), "fuzz.pcapng")
    assert with_timeout(lambda: _drain(path, chunk_bytes), 30) <= len(image) // 12


def _drain(path: Path, chunk_bytes: int) -> int:
    try:
        reader = open_capture_file(path, chunk_bytes=chunk_bytes, batch_packets=3)
    except CaptureError:
        return -1
    n = 0
    try:
        for batch in reader.batches():
            k = batch.count
            assert k > 0
            assert int((batch.offsets[:k] + batch.caplens[:k]).max()) <= batch.buf.shape[0]
            assert (batch.caplens[:k] >= 0).all()
            n += k
    finally:
        reader.close()
    return n


# ------------------------------------------------------------------ damaged blocks (issue 14)


def _with_trailer(block_bytes: bytes, trailer: int) -> bytes:
    return block_bytes[:-4] + struct.pack("<I", trailer)


def _damaged_images() -> dict[str, bytes]:
    good_epb = epb(0, 9, b"z" * 40)
    # an option whose length runs past the end of its block (the block lengths agree)
    head = struct.pack("<IIIII", 0, 0, 9, 40, 40)
    body = head + b"z" * 40 + struct.pack("<HH", 1, 200) + b"abcd"
    past = struct.pack("<II", EPB, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    return {
        "epb-trailer": _with_trailer(good_epb, len(good_epb) + 4),
        "spb-trailer": _with_trailer(block(SPB, struct.pack("<I", 20) + b"s" * 20), 999),
        "epb-option-past-block": past,
        "idb-trailer": _with_trailer(idb(1), 0x4000),
    }


@pytest.mark.parametrize("name", sorted(_damaged_images()))
def test_damaged_block_stops_instead_of_making_up_packets(
    tmp_path: Path, capture_reader: Callable[..., Any], name: str
) -> None:
    """A block whose two total lengths disagree, or with an option running past it, is
    reported as damaged; the packets before it are read, nothing from it or after it."""
    good = packets(3, seed=5)
    image = shb() + idb(1) + b"".join(epb(0, i, d) for i, d in enumerate(good))
    image += _damaged_images()[name] + epb(0, 50, b"after" * 10)
    path = write(tmp_path, image)
    res = capture_reader(path)
    assert [p.data for p in res.packets] == good
    assert res.report.truncated
    assert res.report.warning is not None and "damaged" in res.report.warning
    assert "stopped after 3 packets" in res.report.warning
    tshark = shutil.which("tshark")
    if tshark is not None:  # the oracle also calls the file broken after 3 packets
        proc = subprocess.run([tshark, "-r", str(path)], capture_output=True, text=True)
        assert proc.returncode != 0, proc.stdout
        assert len(proc.stdout.splitlines()) == 3

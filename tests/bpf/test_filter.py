"""BPF mechanics: compile errors, batches that share the buffer, per-link-type programs, and
the specialised kernel agreeing with the interpreter on arbitrary bytes."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest

from netscope.batch import PacketBatch, batch_from_packets
from netscope.bpf import (
    OfflineFilter,
    compile_filter,
    decode_program,
    generated_filter_source,
    linktype_to_dlt,
)
from netscope.errors import UsageError
from netscope.gen import packets as pk
from netscope.gen.pcapfile import write_pcapng


def udp_frame(dport: int, size: int = 60) -> bytes:
    return pk.ether_ip(
        "10.0.0.1", "10.0.0.2", 17, pk.udp("10.0.0.1", "10.0.0.2", 999, dport, bytes(size))
    )


def kept_payloads(out: PacketBatch) -> list[bytes]:
    return [bytes(out.packet_bytes(i)) for i in range(out.count)]


def test_invalid_filter_names_expression_and_libpcap_message() -> None:
    with pytest.raises(UsageError) as info:
        compile_filter("tcp porrt 80", 1)
    assert (
        str(info.value)
        == "invalid filter 'tcp porrt 80': can't parse filter expression: syntax error"
    )
    assert info.value.exit_code == 2


def test_link_specific_expression_fails_for_raw_ip() -> None:
    with pytest.raises(UsageError, match="invalid filter 'ether host 1:2:3:4:5:6'"):
        compile_filter("ether host 1:2:3:4:5:6", 101)


def test_linktype_mapping() -> None:
    assert linktype_to_dlt(101) == 12  # LINKTYPE_RAW -> DLT_RAW
    assert linktype_to_dlt(1) == 1
    assert linktype_to_dlt(113) == 113


def test_sock_fprog_layout() -> None:
    prog = compile_filter("udp", 1, 96)
    raw = bytes(prog.sock_filter_array())
    assert len(raw) == 8 * len(prog)
    code, jt, jf, k = struct.unpack_from("=HBBI", raw, 8 * (len(prog) - 2))
    assert (code, k) == (0x06, 96)  # ret #snaplen
    fprog = prog.sock_fprog_bytes()
    assert len(fprog) == 16 and struct.unpack_from("@H", fprog)[0] == len(prog)


@pytest.mark.parametrize("specialise", [True, False])
def test_filtered_batch_shares_the_buffer(specialise: bool, warm_kernels: None) -> None:
    frames = [udp_frame(53 if i % 3 == 0 else 80) for i in range(30)]
    batch = batch_from_packets(frames, ts_ns=list(range(100, 130)))
    out = OfflineFilter("udp dst port 53", specialise=specialise).apply(batch)
    assert out.buf is batch.buf
    assert out.count == 10
    assert kept_payloads(out) == [f for i, f in enumerate(frames) if i % 3 == 0]
    assert out.ts_ns[: out.count].tolist() == [100 + i for i in range(0, 30, 3)]
    assert out.first_index == 1


def test_numbering_continues_across_batches() -> None:
    flt = OfflineFilter("udp port 53")
    a = flt.apply(batch_from_packets([udp_frame(53), udp_frame(80), udp_frame(53)]))
    b = flt.apply(batch_from_packets([udp_frame(53)]))
    assert (a.first_index, a.count, b.first_index) == (1, 2, 3)


def test_empty_batch() -> None:
    out = OfflineFilter("udp").apply(batch_from_packets([]))
    assert out.count == 0


@pytest.mark.parametrize("specialise", [True, False])
def test_one_program_per_link_type(tmp_path: Path, specialise: bool) -> None:
    """pcapng with an Ethernet and a raw-IP interface: each gets its own program."""
    from netscope.sources import open_capture_file

    eth = udp_frame(53)
    raw = pk.ip("10.0.0.1", "10.0.0.2", 17, pk.udp("10.0.0.1", "10.0.0.2", 1, 53, b"x"))
    tcp_raw = pk.ip("10.0.0.1", "10.0.0.2", 6, pk.tcp("10.0.0.1", "10.0.0.2", 1, 2, 0, 0, "S"))
    path = tmp_path / "two.pcapng"
    write_pcapng(
        path,
        interfaces=[(1, None, 65535), (101, None, 65535)],
        records=[(0, 1, eth, None), (1, 2, raw, None), (1, 3, tcp_raw, None), (0, 4, eth, None)],
    )
    reader = open_capture_file(path)
    flt = OfflineFilter.for_source("udp port 53", reader, specialise=specialise)
    kept = []
    for batch in reader.batches():
        out = flt.apply(batch)
        kept += [(int(out.linktypes[i]), bytes(out.packet_bytes(i))) for i in range(out.count)]
    reader.close()
    assert kept == [(1, eth), (101, raw), (1, eth)]
    assert sorted(flt.programs) == [1, 101]


def test_rejected_link_type_drops_its_packets() -> None:
    flt = OfflineFilter("udp")
    flt.prepare(1)
    flt.reject_linktype(101)
    batch = batch_from_packets([udp_frame(1)], linktype=1)
    raw = batch_from_packets(
        [pk.ip("1.1.1.1", "2.2.2.2", 17, pk.udp("1.1.1.1", "2.2.2.2", 1, 2))], linktype=101
    )
    assert flt.apply(batch).count == 1
    assert flt.apply(raw).count == 0


# Expressions exercising loads of every width, indexed loads, ALU with K and X, scratch
# memory, len, and jumps on X: the two execution paths must agree on any bytes.
AGREEMENT = [
    "tcp port 443",
    "ip[2:2] * 3 / 2 % 7 - 1 > 5",
    "tcp[12] >> 4 << 2 >= 20",
    "len - 14 & 0xff == 0 or len > 1000",
    "ip[0] & 0xf != 5",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0 and ip[8] ^ 0x40 < 3",
    "ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) > 0",
    "udp[4:2] > udp[0:2]",
    "icmp[icmptype] == icmp-echo or ip6 or udp",
    "vlan and (ip or ip6)",
]


def random_frames(rng: random.Random, n: int) -> list[bytes]:
    """Mostly plausible frames (so deep paths run) with random damage and truncation."""
    out = []
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            seg = pk.tcp(
                "10.0.0.1",
                "10.0.0.2",
                rng.randrange(65536),
                rng.choice([443, 80, rng.randrange(65536)]),
                1,
                2,
                rng.choice(["S", "SA", "A", "F", "R"]),
                payload=bytes(rng.randrange(40)),
            )
            f = pk.ether_ip("10.0.0.1", "10.0.0.2", 6, seg)
        elif kind == 1:
            f = udp_frame(rng.randrange(65536), rng.randrange(200))
        elif kind == 2:
            f = bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
        else:
            f = bytearray(udp_frame(53))
            for _ in range(4):
                f[rng.randrange(len(f))] = rng.randrange(256)
            f = bytes(f[: rng.randrange(len(f) + 1)])
        out.append(f)
    return out


@pytest.mark.parametrize("expression", AGREEMENT)
def test_specialised_kernel_agrees_with_interpreter(expression: str, warm_kernels: None) -> None:
    rng = random.Random(expression)
    frames = random_frames(rng, 3000)
    batch = batch_from_packets(frames, wirelens=[len(f) + rng.randrange(3) for f in frames])
    fast = OfflineFilter(expression)
    slow = OfflineFilter(expression, specialise=False)
    a = fast.apply(batch)
    b = slow.apply(batch)
    assert fast.specialised and not slow.specialised
    assert a.offsets[: a.count].tolist() == b.offsets[: b.count].tolist()
    assert b.count > 0 or expression.startswith("vlan")


def test_generated_source_is_plain_python() -> None:
    prog = decode_program(compile_filter("tcp port 443", 1))
    source = generated_filter_source({1: prog})
    compile(source, "<generated>", "exec")
    assert "def prog_1(buf, p, caplen, wirelen)" in source
    assert "def filter_batch(" in source


def test_interpreter_rejects_out_of_range_jump() -> None:
    from netscope.bpf import BpfProgram

    bad = BpfProgram("x", 1, 65535, np.array([[0x15, 5, 0, 1], [0x06, 0, 0, 1]], dtype=np.uint32))
    with pytest.raises(ValueError, match="jump out of range"):
        decode_program(bad)


def test_bundled_libpcap_is_the_one_loaded() -> None:
    """The BPF compiler and the libpcap backend use the wheel's libpcap, not a system one."""
    from netscope.sources.libpcap_backend import bundled_library_path, lib_version, libpcap

    compile_filter("tcp", 1)
    libpcap()
    path = bundled_library_path()
    assert path.parent.name == "cypcap.libs"
    maps = Path("/proc/self/maps").read_text()
    loaded = {line.split()[-1] for line in maps.splitlines() if "libpcap" in line}
    assert str(path) in loaded
    assert all("cypcap.libs" in p for p in loaded), loaded
    assert lib_version().startswith("libpcap version 1.")

"""Tests for the packet builders and the pcap/pcapng writers.

Every check re-derives the expected bytes with an independent, deliberately naive
implementation (checksums by summing 16-bit words, headers by struct slicing), and the pcapng
check walks blocks with a minimal reader written here.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from netscope.gen import packets as pk
from netscope.gen.pcapfile import (
    PCAPNG_UNKNOWN_BLOCK_TYPE,
    PcapWriter,
    iter_pcap,
    pcap_linktype,
    write_pcap,
    write_pcapng,
)

V4A, V4B = "10.0.0.1", "192.0.2.77"
V6A, V6B = "2001:db8::1", "2001:db8:ffff::2"


def word_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def verifies(data: bytes, pseudo: bytes = b"") -> bool:
    """A correct checksum makes the ones'-complement sum of everything 0xFFFF."""
    return word_sum(pseudo + data) == 0xFFFF


def pseudo4(src: str, dst: str, proto: int, length: int) -> bytes:
    return pk.ip_bytes(src) + pk.ip_bytes(dst) + struct.pack("!BBH", 0, proto, length)


def pseudo6(src: str, dst: str, proto: int, length: int) -> bytes:
    return pk.ip_bytes(src) + pk.ip_bytes(dst) + struct.pack("!IxxxB", length, proto)


# --------------------------------------------------------------------------- builders


def test_checksum_matches_rfc1071_example() -> None:
    # RFC 1071 §3 example words: 0001 f203 f4f5 f6f7 -> sum ddf2, checksum 220d.
    assert pk.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert pk.checksum(b"\x01") == ~0x0100 & 0xFFFF


def test_ipv4_header_fields_and_checksum() -> None:
    pkt = pk.ipv4(V4A, V4B, 17, b"x" * 10, ttl=33, ident=0x1234, flags_df=False,
                  frag_offset=185, more_fragments=True, options=b"\x94\x04")  # fmt: skip
    ihl = (pkt[0] & 0x0F) * 4
    assert pkt[0] >> 4 == 4 and ihl == 24
    total, ident, frag, ttl, proto = struct.unpack_from("!HHHBB", pkt, 2)
    assert total == len(pkt) == 34 and ident == 0x1234 and ttl == 33 and proto == 17
    assert frag == 0x2000 | 185
    assert verifies(pkt[:ihl])
    assert pkt[12:16] == bytes([10, 0, 0, 1])
    assert struct.unpack_from("!H", pk.ipv4(V4A, V4B, 6, b""), 6)[0] == 0x4000  # DF default


@pytest.mark.parametrize(("src", "dst"), [(V4A, V4B), (V6A, V6B)])
def test_tcp_checksum_and_fields(src: str, dst: str) -> None:
    opts = pk.tcp_options(mss=1460, wscale=7, sack_perm=True, timestamps=(1, 2))
    seg = pk.tcp(src, dst, 1234, 443, 2**32 + 5, -1, "SA", window=512, payload=b"hello",
                 options=opts)  # fmt: skip
    sport, dport, seq, ack, off, flags, win = struct.unpack_from("!HHIIBBH", seg)
    assert (sport, dport, seq, ack, flags, win) == (1234, 443, 5, 0xFFFFFFFF, 0x12, 512)
    assert (off >> 4) * 4 == 20 + len(opts) and len(opts) % 4 == 0
    assert seg.endswith(b"hello")
    pseudo = (pseudo4 if ":" not in src else pseudo6)(src, dst, 6, len(seg))
    assert verifies(seg, pseudo)


def test_tcp_flag_letters() -> None:
    assert pk.tcp_flags("S") == 0x02 and pk.tcp_flags("SA") == 0x12
    assert pk.tcp_flags("FPA") == 0x19 and pk.tcp_flags("R.") == 0x14
    assert pk.tcp_flags(0x1FF) == 0xFF


@pytest.mark.parametrize(("src", "dst"), [(V4A, V4B), (V6A, V6B)])
def test_udp_checksum(src: str, dst: str) -> None:
    for payload in (b"", b"a", b"abc" * 100):
        dgram = pk.udp(src, dst, 5353, 53, payload)
        assert struct.unpack_from("!H", dgram, 4)[0] == len(dgram)
        pseudo = (pseudo4 if ":" not in src else pseudo6)(src, dst, 17, len(dgram))
        assert verifies(dgram, pseudo)
        assert struct.unpack_from("!H", dgram, 6)[0] != 0


def test_icmp_echo_and_icmpv6_echo() -> None:
    req = pk.icmp_echo(7, 9, b"ping")
    rep = pk.icmp_echo(7, 9, b"ping", reply=True)
    assert req[0] == 8 and rep[0] == 0 and verifies(req) and verifies(rep)
    assert struct.unpack_from("!HH", req, 4) == (7, 9)
    msg = pk.icmpv6_echo(V6A, V6B, 7, 9, b"ping")
    assert msg[0] == 128 and pk.icmpv6_echo(V6A, V6B, 1, 1, reply=True)[0] == 129
    assert verifies(msg, pseudo6(V6A, V6B, 58, len(msg)))
    assert not verifies(msg, pseudo6(V6A, V6B, 58, len(msg) + 2))


def test_ethernet_vlan_tags() -> None:
    plain = pk.ethernet("02:00:00:00:00:01", b"\x02" * 6, 0x0800, b"IP")
    assert plain[:6] == b"\x02" * 6 and plain[6:12] == bytes.fromhex("020000000001")
    assert plain[12:] == b"\x08\x00IP"
    one = pk.ethernet(b"\x02" * 6, b"\x04" * 6, 0x86DD, b"", vlan_ids=(100,))
    assert struct.unpack_from("!HHH", one, 12) == (0x8100, 100, 0x86DD)
    two = pk.ethernet(b"\x02" * 6, b"\x04" * 6, 0x0800, b"", vlan_ids=(300, 20))
    assert struct.unpack_from("!HHHHH", two, 12) == (0x88A8, 300, 0x8100, 20, 0x0800)
    with pytest.raises(ValueError):
        pk.ethernet(b"\x02" * 6, b"\x04" * 6, 0x0800, b"", vlan_ids=(4096,))


def test_ipv6_extension_header_chain() -> None:
    exts = [
        pk.hop_by_hop(),
        pk.dest_options(b"\x01\x03\x00\x00\x00"),
        pk.routing_header([V6B, V6A]),
        pk.fragment_header(offset=3, more=True, ident=77),
    ]
    seg = pk.udp(V6A, V6B, 1, 2, b"data")
    pkt = pk.ipv6(V6A, V6B, 17, seg, hop_limit=9, ext_headers=exts, flow_label=0xABCDE)
    first, plen, nh, hop = struct.unpack_from("!IHBB", pkt)
    assert first >> 28 == 6 and first & 0xFFFFF == 0xABCDE and hop == 9
    assert plen == len(pkt) - 40
    walked = []
    off = 40
    while nh in (0, 43, 44, 60):
        walked.append(nh)
        if nh == 44:
            nxt_nh, _, frag, ident = struct.unpack_from("!BBHI", pkt, off)
            assert (frag >> 3, frag & 1, ident) == (3, 1, 77)
            length = 8
        else:
            nxt_nh, hlen = pkt[off], pkt[off + 1]
            length = (hlen + 1) * 8
        nh, off = nxt_nh, off + length
    assert walked == [0, 60, 43, 44] and nh == 17
    assert pkt[off:] == seg


def test_link_wrappers() -> None:
    payload = pk.ipv4(V4A, V4B, 1, pk.icmp_echo(1, 1))
    s1 = pk.sll(0x0800, payload, packet_type=4)
    assert len(s1) == 16 + len(payload)
    assert (
        struct.unpack_from("!HHH", s1) == (4, 1, 6)
        and struct.unpack_from("!H", s1, 14)[0] == 0x0800
    )
    s2 = pk.sll2(0x86DD, b"v6", ifindex=3)
    assert len(s2) == 22 and struct.unpack_from("!HHIHBB", s2) == (0x86DD, 0, 3, 1, 0, 6)
    assert pk.null_loopback(2, b"x") == b"\x02\x00\x00\x00x"
    assert pk.null_loopback(pk.AF_INET6_DARWIN, b"", "big") == b"\x00\x00\x00\x1e"
    with pytest.raises(ValueError):
        pk.null_loopback(2, b"", "middle")


def _dns_name(msg: bytes, off: int) -> tuple[str, int]:
    labels = []
    while msg[off]:
        labels.append(msg[off + 1 : off + 1 + msg[off]].decode())
        off += 1 + msg[off]
    return ".".join(labels), off + 1


def test_dns_query_and_response() -> None:
    q = pk.dns_query("www.example.com", qtype=28, txid=0xBEEF)
    txid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", q)
    assert (txid, flags & 0x8000, qd, an, ns, ar) == (0xBEEF, 0, 1, 0, 0, 0)
    name, off = _dns_name(q, 12)
    assert name == "www.example.com" and struct.unpack_from("!HH", q, off) == (28, 1)
    r = pk.dns_response("www.example.com", 1, 0xBEEF, answers=["192.0.2.1", "2001:db8::9"])
    txid, flags, qd, an = struct.unpack_from("!HHHH", r)
    assert (txid, flags >> 15, qd, an) == (0xBEEF, 1, 1, 2)
    _, off = _dns_name(r, 12)
    off += 4
    ptr, rtype, rclass, ttl, rdlen = struct.unpack_from("!HHHIH", r, off)
    assert (ptr, rtype, rclass, rdlen) == (0xC00C, 1, 1, 4)
    assert r[off + 12 : off + 16] == bytes([192, 0, 2, 1])
    assert struct.unpack_from("!H", r, off + 16 + 2)[0] == 28


def test_tls_client_hello_structure_and_sni() -> None:
    rec = pk.tls_client_hello("api.example.com", client_random=b"\x11" * 32)
    ctype, version, length = struct.unpack_from("!BHH", rec)
    assert (ctype, version, length) == (22, 0x0301, len(rec) - 5)
    hs_type = rec[5]
    hs_len = int.from_bytes(rec[6:9], "big")
    assert hs_type == 1 and hs_len == len(rec) - 9
    off = 9 + 2 + 32
    off += 1 + rec[off]  # session id
    off += 2 + struct.unpack_from("!H", rec, off)[0]  # cipher suites
    off += 1 + rec[off]  # compression methods
    ext_total = struct.unpack_from("!H", rec, off)[0]
    off += 2
    assert off + ext_total == len(rec)
    sni = None
    while off < len(rec):
        etype, elen = struct.unpack_from("!HH", rec, off)
        if etype == 0:
            _, name_type, name_len = struct.unpack_from("!HBH", rec, off + 4)
            assert name_type == 0
            sni = rec[off + 9 : off + 9 + name_len].decode()
        off += 4 + elen
    assert off == len(rec) and sni == "api.example.com"


def test_address_forms_accepted() -> None:
    import ipaddress

    assert pk.ip_bytes(ipaddress.ip_address(V4A)) == pk.ip_bytes(V4A) == bytes([10, 0, 0, 1])
    assert pk.ip_bytes(bytes(16)) == bytes(16)
    with pytest.raises(ValueError):
        pk.ip_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        pk.pseudo_header_sum(V4A, V6A, 6, 20)
    with pytest.raises(ValueError):
        pk.mac_bytes("02:00:00")


# --------------------------------------------------------------------------- pcap writer


T0 = 1_704_067_200_123_456_789


def _frames() -> list[bytes]:
    return [
        pk.ether_ip(V4A, V4B, 6, pk.tcp(V4A, V4B, 1000, 80, 1, 0, "S")),
        pk.ether_ip(V6A, V6B, 17, pk.udp(V6A, V6B, 1000, 53, pk.dns_query("a.test")), (5,)),
        pk.ether_ip(V4B, V4A, 1, pk.icmp_echo(1, 1, b"x" * 100)),
    ]


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_write_pcap_variants(tmp_path: Path, nanosecond: bool, big_endian: bool) -> None:
    path = tmp_path / "v.pcap"
    frames = _frames()
    # (ts, frame, wirelen); write the first and last without a wire length.
    wanted = [(T0, frames[0], len(frames[0])), (T0 + 1500, frames[1], 999),
              (T0 + 10**9, frames[2], len(frames[2]))]  # fmt: skip
    records: list[tuple[int, bytes] | tuple[int, bytes, int]] = [
        (wanted[0][0], wanted[0][1]),
        wanted[1],
        (wanted[2][0], wanted[2][1]),
    ]
    n = write_pcap(path, records, linktype=1, nanosecond=nanosecond, big_endian=big_endian,
                   snaplen=96)  # fmt: skip
    assert n == 3
    raw = path.read_bytes()
    order = ">" if big_endian else "<"
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from(order + "IHHiIII", raw)
    assert magic == (0xA1B23C4D if nanosecond else 0xA1B2C3D4)
    assert (major, minor, snaplen, linktype) == (2, 4, 96, 1)
    pos, got = 24, []
    while pos < len(raw):
        sec, frac, caplen, wirelen = struct.unpack_from(order + "IIII", raw, pos)
        got.append((sec, frac, raw[pos + 16 : pos + 16 + caplen], wirelen))
        pos += 16 + caplen
    scale = 1 if nanosecond else 1000
    for (ts, frame, want_wire), (sec, frac, data, wirelen) in zip(wanted, got, strict=True):
        assert sec == ts // 10**9 and frac == (ts % 10**9) // scale
        assert data == frame[:96]
        assert wirelen == want_wire
    assert [r[2] for r in iter_pcap(path)] == [g[3] for g in got]
    assert pcap_linktype(path) == 1


def test_pcap_writer_streams_to_file_objects() -> None:
    buf = io.BytesIO()
    with PcapWriter(buf, linktype=101) as w:
        for i in range(3000):  # > 1 MiB, so several chunks are flushed
            w.write(T0 + i * 1000, bytes(400))
    assert w.count == 3000
    assert len(buf.getvalue()) == 24 + 3000 * 416
    assert not buf.closed


def test_iter_pcap_rejects_truncated_files(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    write_pcap(path, [(T0, b"x" * 50)])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError):
        list(iter_pcap(path))


# --------------------------------------------------------------------------- pcapng writer


def read_pcapng(path: Path) -> tuple[str, list[tuple[int, bytes]]]:
    """Minimal pcapng walk: returns the byte order and (block type, body) pairs."""
    raw = path.read_bytes()
    assert struct.unpack_from("<I", raw)[0] == 0x0A0D0D0A
    bom = raw[8:12]
    order = "<" if bom == struct.pack("<I", 0x1A2B3C4D) else ">"
    assert struct.unpack_from(order + "I", raw, 8)[0] == 0x1A2B3C4D
    blocks = []
    pos = 0
    while pos < len(raw):
        btype, blen = struct.unpack_from(order + "II", raw, pos)
        assert blen % 4 == 0 and blen >= 12
        assert struct.unpack_from(order + "I", raw, pos + blen - 4)[0] == blen
        blocks.append((btype, raw[pos + 8 : pos + blen - 4]))
        pos += blen
    assert pos == len(raw)
    return order, blocks


@pytest.mark.parametrize("big_endian", [False, True])
def test_write_pcapng_blocks(tmp_path: Path, big_endian: bool) -> None:
    path = tmp_path / "x.pcapng"
    frames = _frames()
    interfaces = [(1, None, 65535), (101, 9, 0), (1, 0x80 | 10, 128)]
    records = [
        (0, T0, frames[0], None),
        (1, T0 + 5, frames[1][14:], None),
        (2, T0 + 10**9, frames[2], 5000),
    ]
    n = write_pcapng(path, interfaces, records, extra_unknown_block=True, big_endian=big_endian)
    assert n == 3
    order, blocks = read_pcapng(path)
    assert order == (">" if big_endian else "<")
    types = [b[0] for b in blocks]
    assert types == [0x0A0D0D0A, 1, 1, 1, PCAPNG_UNKNOWN_BLOCK_TYPE, 6,
                     PCAPNG_UNKNOWN_BLOCK_TYPE, 6, 6]  # fmt: skip
    shb = blocks[0][1]
    assert struct.unpack_from(order + "IHHq", shb) == (0x1A2B3C4D, 1, 0, -1)
    # IDBs: link type, snaplen and the if_tsresol option when asked for.
    idbs = [b[1] for b in blocks if b[0] == 1]
    resols = []
    for body, (lt, res, snap) in zip(idbs, interfaces, strict=True):
        assert struct.unpack_from(order + "HHI", body) == (lt, 0, snap)
        opts = body[8:]
        found = None
        while opts:
            code, olen = struct.unpack_from(order + "HH", opts)
            if code == 0:
                break
            if code == 9:
                found = opts[4]
            opts = opts[4 + olen + (-olen % 4) :]
        assert found == res
        resols.append(6 if res is None else res)
    epbs = [b[1] for b in blocks if b[0] == 6]
    for body, (iface, ts, data, wirelen) in zip(epbs, records, strict=True):
        idx, hi, lo, caplen, origlen = struct.unpack_from(order + "IIIII", body)
        units = (hi << 32) | lo
        res = resols[iface]
        if res & 0x80:
            assert units == (ts << (res & 0x7F)) // 10**9
        else:
            assert units == ts * 10**res // 10**9
        snap = interfaces[iface][2]
        want = data[:snap] if snap else data
        assert idx == iface and body[20 : 20 + caplen] == want
        assert origlen == (wirelen if wirelen is not None else len(data))


def test_write_pcapng_simple_packet_blocks(tmp_path: Path) -> None:
    path = tmp_path / "spb.pcapng"
    frames = _frames()
    records = [(0, T0 + i, f, None) for i, f in enumerate(frames)] + [(1, T0, frames[0], None)]
    write_pcapng(path, [(1, 6, 64), (1, 6, 0)], records, use_simple_blocks=True)
    _, blocks = read_pcapng(path)
    spbs = [b[1] for b in blocks if b[0] == 3]
    assert len(spbs) == 3 and sum(1 for b in blocks if b[0] == 6) == 1
    for body, frame in zip(spbs, frames, strict=True):
        assert struct.unpack_from("<I", body)[0] == len(frame)
        assert body[4 : 4 + min(len(frame), 64)] == frame[:64]
    with pytest.raises(ValueError):
        write_pcapng(tmp_path / "bad.pcapng", [(1, None, 0)], [(3, T0, b"", None)])


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_tcpdump_reads_written_files(tmp_path: Path) -> None:
    frames = _frames()
    pcap, ng = tmp_path / "a.pcap", tmp_path / "a.pcapng"
    write_pcap(pcap, [(T0 + i, f) for i, f in enumerate(frames)], nanosecond=True, big_endian=True)
    write_pcapng(ng, [(1, 9, 65535)], [(0, T0 + i, f, None) for i, f in enumerate(frames)],
                 extra_unknown_block=True)  # fmt: skip
    for path in (pcap, ng):
        proc = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == len(frames)


class _FailingFile(io.BytesIO):
    def write(self, data: object) -> int:
        raise OSError("disk full")


@pytest.mark.parametrize("threaded", [False, True])
def test_pcap_writer_threaded_output_and_errors(threaded: bool) -> None:
    plain, other = io.BytesIO(), io.BytesIO()
    for buf, mode in ((plain, False), (other, threaded)):
        with PcapWriter(buf, threaded=mode) as w:
            for i in range(5000):
                w.write(T0 + i, bytes([i & 0xFF]) * 300)
    assert plain.getvalue() == other.getvalue()
    w = PcapWriter(_FailingFile(), threaded=threaded)
    with pytest.raises(OSError, match="disk full"):
        for i in range(5000):
            w.write(T0 + i, bytes(300))
        w.close()
    with contextlib.suppress(OSError):
        w.close()  # idempotent: stops the writer thread even after a failure
    assert w._thread is None or not w._thread.is_alive()

"""A tiny, test-only pcap/pcapng reader for the decoder tests.

Deliberately independent of ``netscope.sources`` (a different implementation, so
a bug in one does not hide a bug in the other, and so these tests do not depend
on numba). Per-packet Python reads are fine here: the corpus is a few MB.

Handles classic pcap (both byte orders, µs/ns magic) and pcapng (SHB byte order,
IDB link type and if_tsresol, EPB, SPB). Stops quietly at a truncated record.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import NamedTuple

# Same location rule as tests/conftest.py (shared/ lies beside the checkout).
CORPUS_DIR = Path(
    os.environ.get(
        "NETSCOPE_CORPUS_DIR", str(Path(__file__).resolve().parents[2].parent / "shared" / "corpus")
    )
)


class Packet(NamedTuple):
    index: int  # 1-based, as tshark numbers frames
    linktype: int
    ts_ns: int
    wirelen: int
    data: bytes


def read_packets(path: Path | str) -> list[Packet]:
    """Every complete packet of a pcap or pcapng file ([] for an unreadable header)."""
    blob = Path(path).read_bytes()
    if len(blob) < 4:
        return []
    if blob[:4] == b"\x0a\x0d\x0d\x0a":
        return _pcapng(blob)
    return _pcap(blob)


_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}


def _pcap(blob: bytes) -> list[Packet]:
    if blob[:4] not in _PCAP_MAGICS or len(blob) < 24:
        return []
    order, frac_ns = _PCAP_MAGICS[blob[:4]]
    major, _minor = struct.unpack_from(order + "HH", blob, 4)
    if major != 2:
        return []  # what libpcap and tshark do with e.g. version 1.4
    linktype = struct.unpack_from(order + "I", blob, 20)[0] & 0xFFFF
    out: list[Packet] = []
    pos = 24
    while pos + 16 <= len(blob):
        sec, frac, caplen, wirelen = struct.unpack_from(order + "IIII", blob, pos)
        if pos + 16 + caplen > len(blob):
            break
        ts_ns = sec * 1_000_000_000 + frac * frac_ns
        out.append(
            Packet(len(out) + 1, linktype, ts_ns, wirelen, blob[pos + 16 : pos + 16 + caplen])
        )
        pos += 16 + caplen
    return out


def _tsresol(options: bytes, order: str) -> int:
    """Nanoseconds per timestamp unit from an IDB's options (default: microseconds)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(order + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = options[pos + 4]
            exponent = value & 0x7F
            if value & 0x80:
                return max(1, int(1e9 / (2**exponent)))
            return max(1, 10 ** (9 - exponent)) if exponent <= 9 else 1
        pos += 4 + ((length + 3) & ~3)
    return 1000


def _pcapng(blob: bytes) -> list[Packet]:
    out: list[Packet] = []
    interfaces: list[tuple[int, int]] = []  # (linktype, ns per unit)
    order = "<"
    pos = 0
    while pos + 12 <= len(blob):
        if blob[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if blob[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []  # a new section starts its own interface list
        block_type, block_len = struct.unpack_from(order + "II", blob, pos)
        if block_len < 12 or pos + block_len > len(blob):
            break
        body = blob[pos + 8 : pos + block_len - 4]
        if block_type == 1 and len(body) >= 8:
            linktype = struct.unpack_from(order + "H", body, 0)[0]
            interfaces.append((linktype, _tsresol(body[8:], order)))
        elif block_type == 6 and len(body) >= 20:
            iface, hi, lo, caplen, wirelen = struct.unpack_from(order + "IIIII", body, 0)
            if iface < len(interfaces):
                linktype, unit = interfaces[iface]
                ts_ns = ((hi << 32) | lo) * unit
                out.append(Packet(len(out) + 1, linktype, ts_ns, wirelen, body[20 : 20 + caplen]))
        elif block_type == 3 and len(body) >= 4 and interfaces:
            (wirelen,) = struct.unpack_from(order + "I", body, 0)
            linktype, _unit = interfaces[0]
            out.append(Packet(len(out) + 1, linktype, 0, wirelen, body[4 : 4 + wirelen]))
        pos += block_len
    return out

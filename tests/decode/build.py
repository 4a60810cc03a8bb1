"""Minimal packet builders for the decoder rule tests (struct-based, test-only).

Each builder returns bytes with sensible defaults so a test states only what it
is about. Checksums are computed where the decoder checks them (IPv4 header).
"""

from __future__ import annotations

import struct

SRC4, DST4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")
MAC_DST, MAC_SRC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(
    payload: bytes, ethertype: int = 0x0800, tags: tuple[tuple[int, int], ...] = ()
) -> bytes:
    """``tags``: (TPID, VLAN id) outermost first."""
    out = MAC_DST + MAC_SRC
    types = [tpid for tpid, _ in tags] + [ethertype]
    out += struct.pack("!H", types[0])
    for i, (_tpid, vid) in enumerate(tags):
        out += struct.pack("!HH", vid, types[i + 1])
    return out + payload


def ipv4(
    payload: bytes,
    proto: int = 17,
    *,
    ttl: int = 64,
    ihl: int | None = None,
    total_length: int | None = None,
    flags_frag: int = 0,
    options: bytes = b"",
    good_checksum: bool = True,
    version: int = 4,
) -> bytes:
    hlen = 20 + len(options)
    ihl = hlen // 4 if ihl is None else ihl
    total = hlen + len(payload) if total_length is None else total_length
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            (version << 4) | ihl,
            0,
            total,
            0x1234,
            flags_frag,
            ttl,
            proto,
            0,
            SRC4,
            DST4,
        )
        + options
    )
    csum = checksum(header) if good_checksum else 0xBEEF
    header = header[:10] + struct.pack("!H", csum) + header[12:]
    return header + payload


def ipv6(
    payload: bytes, next_header: int = 17, *, plen: int | None = None, hlim: int = 64
) -> bytes:
    length = len(payload) if plen is None else plen
    return struct.pack("!IHBB", 0x60000000, length, next_header, hlim) + SRC6 + DST6 + payload


def ext_options(next_header: int, length_units: int = 0) -> bytes:
    """Hop-by-hop / destination options header of (length_units + 1) * 8 bytes (PadN)."""
    size = (length_units + 1) * 8
    return bytes([next_header, length_units, 1, size - 4]) + bytes(size - 4)


def ext_fragment(next_header: int, offset_units: int = 0, more: bool = False) -> bytes:
    return struct.pack("!BBHI", next_header, 0, (offset_units << 3) | int(more), 0xABCD)


def ext_routing(next_header: int, rtype: int, segments_left: int, addresses: list[bytes]) -> bytes:
    units = 2 * len(addresses)
    head = bytes([next_header, units, rtype, segments_left])
    if rtype == 4:
        head += bytes([len(addresses) - 1, 0, 0, 0])
    else:
        head += bytes(4)
    return head + b"".join(addresses)


def tcp(
    payload: bytes = b"",
    *,
    sport: int = 1234,
    dport: int = 80,
    seq: int = 1000,
    ack: int = 0,
    flags: int = 0x02,
    win: int = 65535,
    options: bytes = b"",
    data_offset: int | None = None,
) -> bytes:
    doff = (20 + len(options)) // 4 if data_offset is None else data_offset
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, win, 0, 0)
        + options
        + payload
    )


def udp(payload: bytes = b"", *, sport: int = 5555, dport: int = 9999) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp_echo(icmp_type: int = 8, ident: int = 7, seq: int = 3, data: bytes = b"ping") -> bytes:
    return struct.pack("!BBHHH", icmp_type, 0, 0, ident, seq) + data


def dns_query(name: str, qtype: int = 1, ident: int = 0x1234, flags: int = 0x0100) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def client_hello(sni: bytes | None, *, extra_ext: bytes = b"") -> bytes:
    """A TLS 1.2-style ClientHello record with an optional server_name extension."""
    exts = extra_ext
    if sni is not None:
        entry = b"\0" + struct.pack("!H", len(sni)) + sni
        body = struct.pack("!H", len(entry)) + entry
        exts = struct.pack("!HH", 0, len(body)) + body + exts
    hello = (
        struct.pack("!H", 0x0303)
        + bytes(32)  # random
        + b"\0"  # session id
        + struct.pack("!HH", 2, 0x1301)  # one cipher suite
        + b"\x01\x00"  # null compression
        + struct.pack("!H", len(exts))
        + exts
    )
    handshake = struct.pack("!I", (1 << 24) | len(hello)) + hello
    return struct.pack("!BHH", 22, 0x0301, len(handshake)) + handshake

"""Small, readable packet builders for hand-made test traces.

Every function returns ``bytes`` for one protocol layer with lengths and checksums filled in,
so a test can write ``ethernet(..., ipv4(..., tcp(...)))`` and get a frame that tcpdump,
Wireshark and NetScope's own decoders accept. The builders favour clarity over speed: the bulk
trace generator (:mod:`netscope.gen.traffic`) has its own precomputed fast path and uses these
only for rare packets (handshakes, DNS, TLS) and as the reference its tests compare against.

Conventions:

* IP addresses are strings (``"10.0.0.1"``, ``"2001:db8::1"``), :mod:`ipaddress` objects or
  packed 4/16-byte ``bytes``.
* MAC addresses are ``"02:00:00:00:00:01"`` strings or 6 raw bytes.
* L4 builders take the IP addresses because TCP, UDP and ICMPv6 checksums cover a pseudo-header;
  the IP version is taken from the address type.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AF_INET",
    "AF_INET6_BSD",
    "AF_INET6_DARWIN",
    "AF_INET6_FREEBSD",
    "AF_INET6_LINUX",
    "ExtHeader",
    "IPAddr",
    "MacAddr",
    "checksum",
    "dest_options",
    "dns_query",
    "dns_response",
    "ether_ip",
    "ethernet",
    "fragment_header",
    "hop_by_hop",
    "icmp_echo",
    "icmpv6_echo",
    "ip",
    "ip_bytes",
    "ipv4",
    "ipv6",
    "mac_bytes",
    "null_loopback",
    "ones_complement_sum",
    "pseudo_header_sum",
    "routing_header",
    "sll",
    "sll2",
    "tcp",
    "tcp_flags",
    "tcp_options",
    "tls_client_hello",
    "udp",
]

IPAddr = str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address
MacAddr = str | bytes

# Address-family values used in the 4-byte NULL/LOOP link header. IPv6 has no single value:
# each BSD picked its own, and readers must accept all of them.
AF_INET = 2
AF_INET6_LINUX = 10
AF_INET6_BSD = 24  # NetBSD, OpenBSD
AF_INET6_FREEBSD = 28
AF_INET6_DARWIN = 30

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = 0x8100
_ETH_QINQ = 0x88A8

_PROTO_ICMP = 1
_PROTO_TCP = 6
_PROTO_UDP = 17
_PROTO_ICMPV6 = 58

DEFAULT_SRC_MAC = b"\x02\x00\x00\x00\x00\x01"
DEFAULT_DST_MAC = b"\x02\x00\x00\x00\x00\x02"


# --------------------------------------------------------------------------- checksums


def ones_complement_sum(data: bytes) -> int:
    """Ones'-complement sum of ``data`` as big-endian 16-bit words (odd length: zero padded).

    Returned as a plain integer in 0..0xFFFF that callers may add other sums to (a
    pseudo-header) before folding once. It relies on 2**16 = 1 (mod 0xFFFF): the sum of the
    words is congruent to the whole buffer read as one big integer, which ``int.from_bytes``
    and one ``%`` compute several times faster than summing unpacked words. A non-zero buffer
    whose sum is a multiple of 0xFFFF yields 0xFFFF, as the folded sum would (ones'-complement
    "negative zero"), so checksums match RFC 1071 bit for bit.
    """
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    rest = value % 0xFFFF
    return rest or (0xFFFF if value else 0)


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 Internet checksum of ``data`` plus an unfolded ``initial`` sum (pseudo-header)."""
    return ~_fold(initial + ones_complement_sum(data)) & 0xFFFF


def ip_bytes(addr: IPAddr) -> bytes:
    """Packed network-order bytes of an IPv4 or IPv6 address (packed bytes pass through)."""
    if isinstance(addr, bytes):
        if len(addr) not in (4, 16):
            raise ValueError(f"packed IP address must be 4 or 16 bytes, got {len(addr)}")
        return addr
    if isinstance(addr, str):
        addr = ipaddress.ip_address(addr)
    return addr.packed


def mac_bytes(mac: MacAddr) -> bytes:
    """Six raw bytes from ``"aa:bb:cc:dd:ee:ff"`` (``-`` also accepted) or from raw bytes."""
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"MAC address must be 6 bytes, got {len(mac)}")
        return mac
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"bad MAC address {mac!r}")
    return raw


def pseudo_header_sum(src_ip: IPAddr, dst_ip: IPAddr, proto: int, length: int) -> int:
    """Unfolded sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 793 for v4, RFC 8200 §8.1 for v6).

    The v4 and v6 layouts differ in field widths but sum to the same thing: both addresses,
    the protocol number and the upper-layer length.
    """
    src, dst = ip_bytes(src_ip), ip_bytes(dst_ip)
    if len(src) != len(dst):
        raise ValueError("source and destination must be the same IP version")
    return ones_complement_sum(src + dst) + proto + (length >> 16) + (length & 0xFFFF)


# --------------------------------------------------------------------------- link layer


def ethernet(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    ethertype: int,
    payload: bytes,
    vlan_ids: Sequence[int] = (),
) -> bytes:
    """Ethernet II frame (no FCS, as captures normally show it).

    ``vlan_ids`` lists tags outermost first. One id gives an 802.1Q tag (TPID 0x8100); with two
    or more, the outermost is an 802.1ad service tag (TPID 0x88A8) and the rest are 802.1Q, the
    usual QinQ layout. Priority bits are zero.
    """
    parts = [mac_bytes(dst_mac), mac_bytes(src_mac)]
    for i, vid in enumerate(vlan_ids):
        if not 0 <= vid < 4096:
            raise ValueError(f"VLAN id {vid} out of range 0..4095")
        tpid = _ETH_QINQ if (i == 0 and len(vlan_ids) > 1) else _ETH_VLAN
        parts.append(struct.pack("!HH", tpid, vid))
    parts.append(struct.pack("!H", ethertype))
    parts.append(payload)
    return b"".join(parts)


def sll(
    protocol: int,
    payload: bytes,
    packet_type: int = 0,
    hatype: int = 1,
    addr: bytes = DEFAULT_SRC_MAC,
) -> bytes:
    """Linux "cooked" capture v1 header (LINKTYPE_LINUX_SLL, 113) followed by ``payload``.

    ``packet_type`` 0 = to us, 4 = outgoing; ``protocol`` is an EtherType; ``addr`` is the
    link-layer source address (at most 8 bytes, zero padded).
    """
    if len(addr) > 8:
        raise ValueError("SLL address is at most 8 bytes")
    return (
        struct.pack("!HHH8sH", packet_type, hatype, len(addr), addr.ljust(8, b"\0"), protocol)
        + payload
    )


def sll2(
    protocol: int,
    payload: bytes,
    ifindex: int = 1,
    packet_type: int = 0,
    hatype: int = 1,
    addr: bytes = DEFAULT_SRC_MAC,
) -> bytes:
    """Linux "cooked" capture v2 header (LINKTYPE_LINUX_SLL2, 276) followed by ``payload``.

    Same information as SLL v1 plus the interface index, with the protocol moved first.
    """
    if len(addr) > 8:
        raise ValueError("SLL2 address is at most 8 bytes")
    return (
        struct.pack(
            "!HHIHBB8s", protocol, 0, ifindex, hatype, packet_type, len(addr), addr.ljust(8, b"\0")
        )
        + payload
    )


def null_loopback(af: int, payload: bytes, byteorder: str = "little") -> bytes:
    """BSD loopback header: the address family as a 4-byte integer, then ``payload``.

    LINKTYPE_NULL (0) stores the family in the *capturing host's* byte order (so readers must
    accept both); LINKTYPE_LOOP (108) always uses network order (``byteorder="big"``).
    """
    if byteorder == "little":
        return af.to_bytes(4, "little") + payload
    if byteorder == "big":
        return af.to_bytes(4, "big") + payload
    raise ValueError("byteorder must be 'little' or 'big'")


# --------------------------------------------------------------------------- IP


def ipv4(
    src: IPAddr,
    dst: IPAddr,
    proto: int,
    payload: bytes,
    ttl: int = 64,
    ident: int = 0,
    flags_df: bool = True,
    frag_offset: int = 0,
    more_fragments: bool = False,
    options: bytes = b"",
    tos: int = 0,
) -> bytes:
    """IPv4 packet with a correct header checksum.

    ``frag_offset`` is the header field value, i.e. in units of 8 bytes (as in scapy).
    ``options`` are padded with zero (end-of-list) bytes to a multiple of 4.
    """
    if len(options) % 4:
        options = options + b"\x00" * (4 - len(options) % 4)
    if len(options) > 40:
        raise ValueError("IPv4 options are at most 40 bytes")
    ihl = 5 + len(options) // 4
    flags = (0x4000 if flags_df else 0) | (0x2000 if more_fragments else 0)
    if not 0 <= frag_offset < 0x2000:
        raise ValueError("frag_offset is in 8-byte units and must be < 8192")
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | ihl,
            tos,
            ihl * 4 + len(payload),
            ident & 0xFFFF,
            flags | frag_offset,
            ttl,
            proto,
            0,
            ip_bytes(src),
            ip_bytes(dst),
        )
        + options
    )
    csum = checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


@dataclass(frozen=True)
class ExtHeader:
    """One IPv6 extension header, minus its leading next-header byte.

    :func:`ipv6` chains a list of these, writing each one's next-header byte from the kind of
    the header that follows it, so the helpers below never need to know their successor.
    """

    kind: int
    body: bytes


def _tlv_ext(kind: int, options: bytes) -> ExtHeader:
    # Hop-by-hop and destination options: 2 fixed bytes + options, padded to a multiple of 8
    # with a PadN option (or Pad1 when a single byte is missing), per RFC 8200 §4.2.
    pad = (-(2 + len(options))) % 8
    if pad == 1:
        options = options + b"\x00"
    elif pad:
        options = options + bytes([1, pad - 2]) + b"\x00" * (pad - 2)
    length = (2 + len(options)) // 8 - 1
    return ExtHeader(kind, bytes([length]) + options)


def hop_by_hop(options: bytes = b"") -> ExtHeader:
    """Hop-by-hop options header (next header 0), padded to 8 bytes with PadN."""
    return _tlv_ext(0, options)


def dest_options(options: bytes = b"") -> ExtHeader:
    """Destination options header (next header 60), padded to 8 bytes with PadN."""
    return _tlv_ext(60, options)


def routing_header(
    segments: Sequence[IPAddr] = (),
    routing_type: int = 4,
    segments_left: int | None = None,
) -> ExtHeader:
    """Routing header (next header 43) listing ``segments`` (16 bytes each).

    Defaults to type 4 (segment routing) layout without TLVs; the decoder only needs the length
    to skip it. ``segments_left`` defaults to the number of segments.
    """
    if segments_left is None:
        segments_left = len(segments)
    addrs = b"".join(ip_bytes(a) for a in segments)
    # Fixed part after the next-header byte: len, type, segments left, 4 type-specific bytes.
    last_entry = max(len(segments) - 1, 0)
    body = bytes([2 * len(segments), routing_type, segments_left, last_entry, 0, 0, 0]) + addrs
    return ExtHeader(43, body)


def fragment_header(offset: int = 0, more: bool = False, ident: int = 0) -> ExtHeader:
    """IPv6 fragment header (next header 44). ``offset`` in 8-byte units, like IPv4."""
    if not 0 <= offset < 0x2000:
        raise ValueError("fragment offset is in 8-byte units and must be < 8192")
    return ExtHeader(44, struct.pack("!BHI", 0, (offset << 3) | int(more), ident & 0xFFFFFFFF))


def ipv6(
    src: IPAddr,
    dst: IPAddr,
    next_header: int,
    payload: bytes,
    hop_limit: int = 64,
    ext_headers: Sequence[ExtHeader] = (),
    traffic_class: int = 0,
    flow_label: int = 0,
) -> bytes:
    """IPv6 packet; ``next_header`` is the upper-layer protocol after any ``ext_headers``.

    Extension headers are emitted in the order given, each one's next-header byte pointing at
    the following header. IPv6 has no header checksum.
    """
    chain = b""
    following = next_header
    for ext in reversed(ext_headers):
        chain = bytes([following]) + ext.body + chain
        following = ext.kind
    body = chain + payload
    first_word = (6 << 28) | ((traffic_class & 0xFF) << 20) | (flow_label & 0xFFFFF)
    return (
        struct.pack(
            "!IHBB16s16s", first_word, len(body), following, hop_limit, ip_bytes(src), ip_bytes(dst)
        )
        + body
    )


def ip(src: IPAddr, dst: IPAddr, proto: int, payload: bytes, ttl: int = 64) -> bytes:
    """IPv4 or IPv6 packet depending on the address version (a shortcut for tests)."""
    if len(ip_bytes(src)) == 4:
        return ipv4(src, dst, proto, payload, ttl=ttl)
    return ipv6(src, dst, proto, payload, hop_limit=ttl)


def ether_ip(
    src: IPAddr,
    dst: IPAddr,
    proto: int,
    payload: bytes,
    vlan_ids: Sequence[int] = (),
    src_mac: MacAddr = DEFAULT_SRC_MAC,
    dst_mac: MacAddr = DEFAULT_DST_MAC,
    ttl: int = 64,
) -> bytes:
    """Ethernet frame carrying an IPv4/IPv6 packet (version from the addresses)."""
    ethertype = _ETH_IPV4 if len(ip_bytes(src)) == 4 else _ETH_IPV6
    return ethernet(src_mac, dst_mac, ethertype, ip(src, dst, proto, payload, ttl=ttl), vlan_ids)


# --------------------------------------------------------------------------- transport

_FLAG_LETTERS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
}


def tcp_flags(flags: int | str) -> int:
    """Flag byte from an int or tcpdump-style letters (``"SA"``, ``"PA"``, ``"FA"``, ``"R"``)."""
    if isinstance(flags, int):
        return flags & 0xFF
    value = 0
    for letter in flags.upper():
        if letter == ".":
            letter = "A"
        value |= _FLAG_LETTERS[letter]
    return value


def tcp_options(
    mss: int | None = None,
    wscale: int | None = None,
    sack_perm: bool = False,
    timestamps: tuple[int, int] | None = None,
) -> bytes:
    """TCP options block in the usual SYN order, NOP-padded to a multiple of 4 bytes."""
    out = b""
    if mss is not None:
        out += struct.pack("!BBH", 2, 4, mss)
    if sack_perm:
        out += b"\x04\x02"
    if timestamps is not None:
        out += b"\x01\x01" if len(out) % 4 == 0 else b""
        out += struct.pack("!BBII", 8, 10, timestamps[0], timestamps[1])
    if wscale is not None:
        out += b"\x01" + struct.pack("!BBB", 3, 3, wscale)
    if len(out) % 4:
        out += b"\x01" * (4 - len(out) % 4)
    return out


def tcp(
    src_ip: IPAddr,
    dst_ip: IPAddr,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int | str,
    window: int = 65535,
    payload: bytes = b"",
    options: bytes = b"",
    urgent: int = 0,
) -> bytes:
    """TCP segment with the pseudo-header checksum for the addresses' IP version.

    ``seq``/``ack`` are taken modulo 2**32 so callers can do plain arithmetic across the wrap.
    ``options`` are padded with end-of-list zero bytes to a multiple of 4.
    """
    if len(options) % 4:
        options = options + b"\x00" * (4 - len(options) % 4)
    if len(options) > 40:
        raise ValueError("TCP options are at most 40 bytes")
    offset_words = 5 + len(options) // 4
    header = (
        struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            offset_words << 4,
            tcp_flags(flags),
            window,
            0,
            urgent,
        )
        + options
    )
    segment = header + payload
    csum = checksum(segment, pseudo_header_sum(src_ip, dst_ip, _PROTO_TCP, len(segment)))
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def udp(src_ip: IPAddr, dst_ip: IPAddr, sport: int, dport: int, payload: bytes = b"") -> bytes:
    """UDP datagram with checksum (a computed 0 is sent as 0xFFFF, as RFC 768 requires)."""
    length = 8 + len(payload)
    datagram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = checksum(datagram, pseudo_header_sum(src_ip, dst_ip, _PROTO_UDP, length)) or 0xFFFF
    return datagram[:6] + struct.pack("!H", csum) + datagram[8:]


def icmp_echo(ident: int, seq: int, payload: bytes = b"", reply: bool = False) -> bytes:
    """ICMPv4 echo request (type 8) or reply (type 0); the checksum has no pseudo-header."""
    msg = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident & 0xFFFF, seq & 0xFFFF) + payload
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def icmpv6_echo(
    src_ip: IPAddr,
    dst_ip: IPAddr,
    ident: int,
    seq: int,
    payload: bytes = b"",
    reply: bool = False,
) -> bytes:
    """ICMPv6 echo request (128) or reply (129); unlike ICMPv4 it covers a pseudo-header."""
    msg = struct.pack("!BBHHH", 129 if reply else 128, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    msg += payload
    csum = checksum(msg, pseudo_header_sum(src_ip, dst_ip, _PROTO_ICMPV6, len(msg)))
    return msg[:2] + struct.pack("!H", csum) + msg[4:]


# --------------------------------------------------------------------------- applications


def _dns_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def dns_query(qname: str, qtype: int = 1, txid: int = 0, recursion_desired: bool = True) -> bytes:
    """DNS query message (class IN, one question) to put in a UDP/53 payload."""
    flags = 0x0100 if recursion_desired else 0
    return (
        struct.pack("!HHHHHH", txid & 0xFFFF, flags, 1, 0, 0, 0)
        + _dns_name(qname)
        + (struct.pack("!HH", qtype, 1))
    )


def dns_response(
    qname: str,
    qtype: int = 1,
    txid: int = 0,
    answers: Sequence[IPAddr] = (),
    ttl: int = 300,
    rcode: int = 0,
) -> bytes:
    """DNS response echoing the question, with one A/AAAA record per address in ``answers``.

    Answer names use a compression pointer to the question (offset 12), as real servers do, so
    decoders that follow pointers get exercised.
    """
    flags = 0x8180 | (rcode & 0xF)
    msg = struct.pack("!HHHHHH", txid & 0xFFFF, flags, 1, len(answers), 0, 0)
    msg += _dns_name(qname) + struct.pack("!HH", qtype, 1)
    for addr in answers:
        raw = ip_bytes(addr)
        rtype = 1 if len(raw) == 4 else 28
        msg += struct.pack("!HHHIH", 0xC00C, rtype, 1, ttl, len(raw)) + raw
    return msg


_TLS_CIPHER_SUITES = (
    0x1301,
    0x1302,
    0x1303,
    0xC02B,
    0xC02F,
    0xC02C,
    0xC030,
    0xCCA9,
    0xCCA8,
    0x009C,
    0x009D,
    0x002F,
    0x0035,
)


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def tls_client_hello(
    sni: str,
    client_random: bytes = bytes(32),
    session_id: bytes = bytes(32),
    key_share: bytes = bytes(32),
) -> bytes:
    """A syntactically valid TLS 1.3-style ClientHello in one TLS handshake record.

    Carries server_name (the SNI under test), supported_groups, ec_point_formats,
    signature_algorithms, supported_versions, psk_key_exchange_modes and an x25519 key_share,
    so Wireshark dissects it cleanly. The random-looking fields are parameters (zeros by
    default) to keep generated traces deterministic.
    """
    if len(client_random) != 32 or len(key_share) != 32 or len(session_id) > 32:
        raise ValueError("client_random and key_share are 32 bytes; session_id at most 32")
    host = sni.encode("ascii")
    server_name_list = b"\x00" + struct.pack("!H", len(host)) + host
    extensions = b"".join(
        (
            _ext(0x0000, struct.pack("!H", len(server_name_list)) + server_name_list),
            _ext(0x000A, struct.pack("!HHHH", 6, 0x001D, 0x0017, 0x0018)),
            _ext(0x000B, b"\x01\x00"),
            _ext(0x000D, struct.pack("!H4H", 8, 0x0403, 0x0804, 0x0401, 0x0201)),
            _ext(0x002B, b"\x04\x03\x04\x03\x03"),
            _ext(0x002D, b"\x01\x01"),
            _ext(0x0033, struct.pack("!HHH", 36, 0x001D, 32) + key_share),
        )
    )
    suites = struct.pack(f"!{len(_TLS_CIPHER_SUITES)}H", *_TLS_CIPHER_SUITES)
    body = (
        b"\x03\x03"
        + client_random
        + bytes([len(session_id)])
        + session_id
        + struct.pack("!H", len(suites))
        + suites
        + b"\x01\x00"
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(handshake)) + handshake

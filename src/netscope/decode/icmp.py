"""ICMP (and the machinery ICMPv6 shares with it).

Both have the same shape: type, code, checksum, then a 4-byte "rest of header"
whose meaning depends on the type (echo id/seq, next-hop MTU, gateway …). The
8-byte header must be captured, else ERR_TRUNC_L4. Columns: l4_off, icmp_type,
icmp_code (sport = dport = 0), payload_off = l4_off + 8, payload_len =
max(0, IP-declared bytes after the IP headers - 8).

For error messages (destination unreachable, time exceeded …) the quoted IP
datagram is decoded too and summarised in the detail view, one level deep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from netscope.constants import ERR_TRUNC_L4, ETH_IPV4
from netscope.decode.base import (
    ETHERTYPE_DECODERS,
    DecodedPacket,
    Layer,
    captured,
    truncated_layer,
)
from netscope.decode.fields import Field, Header, dec, enum, hex_width, ipv4_text

COMMON_SIZE = 4  # type, code, checksum
HEADER_SIZE = 8  # … plus the 4-byte rest of header


@dataclass(frozen=True)
class IcmpFamily:
    """What differs between ICMP and ICMPv6: names, rest-of-header layouts, quoting."""

    name: str
    header: Header  # the common part: type, code, checksum (see ``common_header``)
    type_names: Mapping[int, str]
    code_names: Mapping[int, Mapping[int, str]]
    rest: Mapping[int, Header]  # type -> layout of bytes 4..8 (default: one opaque word)
    error_types: frozenset[int]  # types that quote the offending datagram
    quoted_ethertype: int
    # extra detail fields (also shown as summary words) from bytes after the 8-byte header
    extra: Callable[[DecodedPacket, memoryview, int, int], list[tuple[str, str]]] = field(
        default=lambda pkt, data, off, icmp_type: []
    )


def common_header(name: str, type_names: Mapping[int, str]) -> Header:
    """Type, code, checksum: the 4 bytes every ICMP/ICMPv6 message starts with."""
    return Header(
        name,
        [
            Field("type", "B", enum(type_names)),
            Field("code", "B", dec),
            Field("checksum", "H", hex_width(4)),
        ],
    )


REST_WORD = Header("rest", [Field("rest", "I", hex_width(8), "rest of header")])
ECHO = Header("echo", [Field("identifier", "H", dec), Field("sequence", "H", dec)])


def _quoted_summary(pkt: DecodedPacket, data: memoryview, offset: int, ethertype: int) -> str:
    """One-line summary of the datagram quoted by an ICMP error (never recursive)."""
    decoder = ETHERTYPE_DECODERS.get(ethertype)
    if pkt.quoted or decoder is None or captured(pkt, offset) == 0:
        return ""
    inner = DecodedPacket(pkt.linktype, pkt.caplen, quoted=True)
    decoder(inner, data, offset)
    text = " | ".join(layer.summary for layer in inner.layers if layer.summary)
    return f"{text} (cut)" if not inner.ok else text


def decode_family(
    family: IcmpFamily, pkt: DecodedPacket, data: memoryview, offset: int, ip_remaining: int
) -> None:
    if captured(pkt, offset) < HEADER_SIZE:
        truncated_layer(pkt, family.name, offset, HEADER_SIZE)
        pkt.fail(ERR_TRUNC_L4)
        return
    v = family.header.unpack(data, offset)
    icmp_type, code = v["type"], v["code"]
    rest = family.rest.get(icmp_type, REST_WORD)
    rv = rest.unpack(data, offset + COMMON_SIZE)
    code_name = family.code_names.get(icmp_type, {}).get(code)
    extra = family.extra(pkt, data, offset, icmp_type)

    words = []
    type_name = family.type_names.get(icmp_type)
    if type_name:
        words.append(f"{type_name}: {code_name}" if code_name else type_name)
    if rest is ECHO:
        words.append(f"id={rv['identifier']} seq={rv['sequence']}")
    words += [f"{label}={text}" for label, text in extra]
    if "gateway" in rv:
        words.append(f"gateway={ipv4_text(rv['gateway'])}")
    if rv.get("mtu"):
        words.append(f"mtu={rv['mtu']}")
    summary = f"{family.name} type={icmp_type} code={code}"
    if words:
        summary += f" ({' '.join(words)})"

    if icmp_type in family.error_types:
        quoted = _quoted_summary(pkt, data, offset + HEADER_SIZE, family.quoted_ethertype)
        if quoted:
            extra.append(("quoted", quoted))
    pkt.add(
        Layer(
            family.name,
            offset,
            HEADER_SIZE,
            {**v, **rv},
            summary,
            headers=(family.header, rest),
            overrides={"code": f"{code} ({code_name})"} if code_name else {},
            extra=extra,
        )
    )
    pkt.set_columns(
        l4_off=offset,
        icmp_type=icmp_type,
        icmp_code=code,
        payload_off=offset + HEADER_SIZE,
        payload_len=max(0, ip_remaining - HEADER_SIZE),
    )


# --- ICMP (IPv4) --------------------------------------------------------------------

ICMP_TYPES = {
    0: "echo reply",
    3: "destination unreachable",
    4: "source quench",
    5: "redirect",
    8: "echo request",
    9: "router advertisement",
    10: "router solicitation",
    11: "time exceeded",
    12: "parameter problem",
    13: "timestamp request",
    14: "timestamp reply",
    15: "information request",
    16: "information reply",
    17: "address mask request",
    18: "address mask reply",
}
ICMP_CODES = {
    3: {
        0: "network unreachable",
        1: "host unreachable",
        2: "protocol unreachable",
        3: "port unreachable",
        4: "fragmentation needed",
        5: "source route failed",
        6: "destination network unknown",
        7: "destination host unknown",
        9: "network administratively prohibited",
        10: "host administratively prohibited",
        11: "network unreachable for TOS",
        12: "host unreachable for TOS",
        13: "communication administratively prohibited",
    },
    5: {0: "network", 1: "host", 2: "TOS and network", 3: "TOS and host"},
    11: {0: "TTL exceeded in transit", 1: "fragment reassembly time exceeded"},
}

UNREACHABLE = Header(
    "unreachable", [Field("unused", "H", hex_width(4)), Field("mtu", "H", dec, "MTU")]
)
REDIRECT = Header("redirect", [Field("gateway", "4s", ipv4_text)])
PARAMETER = Header("parameter", [Field("pointer", "B"), Field("unused", "3s", lambda b: b.hex())])

ICMP = IcmpFamily(
    name="ICMP",
    header=common_header("ICMP", ICMP_TYPES),
    type_names=ICMP_TYPES,
    code_names=ICMP_CODES,
    rest={
        0: ECHO,
        8: ECHO,
        13: ECHO,
        14: ECHO,
        15: ECHO,
        16: ECHO,
        17: ECHO,
        18: ECHO,
        3: UNREACHABLE,
        5: REDIRECT,
        12: PARAMETER,
    },
    error_types=frozenset({3, 4, 5, 11, 12}),
    quoted_ethertype=ETH_IPV4,
)


def decode(pkt: DecodedPacket, data: memoryview, offset: int, ip_remaining: int) -> None:
    decode_family(ICMP, pkt, data, offset, ip_remaining)

"""ICMPv6: same 8-byte shape and column rules as ICMP (see ``icmp.py``).

Neighbour solicitation/advertisement and redirect also show their target address
when it is captured (it is display only; it does not affect any column).
"""

from __future__ import annotations

from netscope.constants import ETH_IPV6
from netscope.decode.base import DecodedPacket, captured
from netscope.decode.fields import Bit, Bits, Field, Header, dec, flag, hex_width, ipv6_text
from netscope.decode.icmp import ECHO, HEADER_SIZE, IcmpFamily, common_header, decode_family

ICMPV6_TYPES = {
    1: "destination unreachable",
    2: "packet too big",
    3: "time exceeded",
    4: "parameter problem",
    128: "echo request",
    129: "echo reply",
    130: "multicast listener query",
    131: "multicast listener report",
    132: "multicast listener done",
    133: "router solicitation",
    134: "router advertisement",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
    137: "redirect",
    143: "multicast listener report v2",
}
ICMPV6_CODES = {
    1: {
        0: "no route",
        1: "administratively prohibited",
        2: "beyond scope of source address",
        3: "address unreachable",
        4: "port unreachable",
        5: "source address failed policy",
        6: "reject route",
    },
    3: {0: "hop limit exceeded in transit", 1: "fragment reassembly time exceeded"},
    4: {0: "erroneous header field", 1: "unrecognized next header", 2: "unrecognized IPv6 option"},
}

PACKET_TOO_BIG = Header("too big", [Field("mtu", "I", dec, "MTU")])
PARAMETER = Header("parameter", [Field("pointer", "I")])
NEIGHBOR_ADVERT = Header(
    "NA",
    [
        Bits(
            "I",
            (
                Bit("router", 1, flag),
                Bit("solicited", 1, flag),
                Bit("override", 1, flag),
                Bit("reserved", 29, hex_width(8)),
            ),
        ),
    ],
)
ROUTER_ADVERT = Header(
    "RA",
    [
        Field("cur_hop_limit", "B", dec, "current hop limit"),
        Field("ra_flags", "B", hex_width(2), "flags"),
        Field("router_lifetime", "H", dec, "router lifetime"),
    ],
)
MLDV2_REPORT = Header(
    "MLDv2 report",
    [Field("reserved", "H", hex_width(4)), Field("records", "H", dec, "address records")],
)
TARGET_TYPES = (135, 136, 137)  # target address at bytes 8..24


def _extra(
    pkt: DecodedPacket, data: memoryview, offset: int, icmp_type: int
) -> list[tuple[str, str]]:
    if icmp_type in TARGET_TYPES and captured(pkt, offset + HEADER_SIZE) >= 16:
        start = offset + HEADER_SIZE
        return [("target", ipv6_text(bytes(data[start : start + 16])))]
    return []


ICMPV6 = IcmpFamily(
    name="ICMPv6",
    header=common_header("ICMPv6", ICMPV6_TYPES),
    type_names=ICMPV6_TYPES,
    code_names=ICMPV6_CODES,
    rest={
        128: ECHO,
        129: ECHO,
        2: PACKET_TOO_BIG,
        4: PARAMETER,
        134: ROUTER_ADVERT,
        136: NEIGHBOR_ADVERT,
        143: MLDV2_REPORT,
    },
    error_types=frozenset({1, 2, 3, 4}),
    quoted_ethertype=ETH_IPV6,
    extra=_extra,
)


def decode(pkt: DecodedPacket, data: memoryview, offset: int, ip_remaining: int) -> None:
    decode_family(ICMPV6, pkt, data, offset, ip_remaining)

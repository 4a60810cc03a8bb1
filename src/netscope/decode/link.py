"""Link layers: Ethernet (+ 802.1Q/802.1ad tags, PPPoE), Linux SLL/SLL2, NULL/LOOP, raw IP.

The link types that carry an EtherType (Ethernet, SLL, SLL2) share
``_finish_link``: walk VLAN tags and a PPPoE session header, write the link-stage
columns, hand the rest to the EtherType's decoder. ``l3_off`` is only set when an
IPv4/IPv6 header follows, so a non-IP frame (ARP, LLDP …) decodes without error
and with l3 = 0.
"""

from __future__ import annotations

import struct

from netscope.constants import (
    ERR_BAD_IP_VERSION,
    ERR_TRUNC_IP,
    ERR_TRUNC_LINK,
    ETH_IPV4,
    ETH_IPV6,
    ETH_PPPOE_SESSION,
    ETH_QINQ,
    ETH_QINQ_OLD,
    ETH_VLAN,
    LINKTYPE_NAMES,
    PPP_IPV4,
    PPP_IPV6,
)
from netscope.decode.base import (
    ETHERTYPE_NAMES,
    DecodedPacket,
    Layer,
    captured,
    decode_ethertype,
    truncated_layer,
)
from netscope.decode.fields import Bit, Bits, Field, Header, dec, enum, flag, hex2, hex4, mac

ETHERTYPE = enum(ETHERTYPE_NAMES, hex4)

ETHERNET = Header(
    "Ethernet",
    [
        Field("destination", "6s", mac),
        Field("source", "6s", mac),
        Field("ethertype", "H", ETHERTYPE, "type"),
    ],
)

# One 802.1Q/802.1ad tag: the TPID is the EtherType that announced it.
VLAN_TAG = Header(
    "802.1Q",
    [
        Bits("H", (Bit("priority", 3), Bit("dei", 1, flag, "DEI"), Bit("vlan_id", 12, dec, "ID"))),
        Field("ethertype", "H", ETHERTYPE, "type"),
    ],
)
VLAN_TPIDS = {ETH_VLAN: "802.1Q", ETH_QINQ: "802.1ad", ETH_QINQ_OLD: "QinQ"}

# PPPoE session stage (RFC 2516) plus the PPP protocol field that follows it.
PPPOE = Header(
    "PPPoE",
    [
        Bits("B", (Bit("version", 4), Bit("type", 4))),
        Field("code", "B", hex2),
        Field("session_id", "H", hex4, "session id"),
        Field("length", "H", dec, "payload length"),
        Field(
            "ppp_protocol", "H", enum({PPP_IPV4: "IPv4", PPP_IPV6: "IPv6"}, hex4), "PPP protocol"
        ),
    ],
)
PPP_TO_ETHERTYPE = {PPP_IPV4: ETH_IPV4, PPP_IPV6: ETH_IPV6}

SLL_PACKET_TYPES = {
    0: "to us",
    1: "broadcast",
    2: "multicast",
    3: "to another host",
    4: "sent by us",
}

SLL = Header(
    "Linux SLL",
    [
        Field("packet_type", "H", enum(SLL_PACKET_TYPES), "packet type"),
        Field("arphrd_type", "H", dec, "link-layer address type"),
        Field("address_length", "H", dec, "link-layer address length"),
        Field("address", "8s", mac, "source address"),
        Field("protocol", "H", ETHERTYPE),
    ],
)

SLL2 = Header(
    "Linux SLL2",
    [
        Field("protocol", "H", ETHERTYPE),
        Field("reserved", "H", hex4),
        Field("interface_index", "I", dec, "interface index"),
        Field("arphrd_type", "H", dec, "link-layer address type"),
        Field("packet_type", "B", enum(SLL_PACKET_TYPES), "packet type"),
        Field("address_length", "B", dec, "link-layer address length"),
        Field("address", "8s", mac, "source address"),
    ],
)

# BSD loopback: a 4-byte address family. NULL writes it in the capturing host's
# byte order (so both orders are tried), LOOP in network order.
AF_INET = 2
AF_INET6_VALUES = (24, 28, 30)  # NetBSD/OpenBSD, FreeBSD, macOS
AF_NAMES = {2: "AF_INET", 24: "AF_INET6 (BSD)", 28: "AF_INET6 (FreeBSD)", 30: "AF_INET6 (macOS)"}
LOOP = Header("Loopback", [Field("family", "I", enum(AF_NAMES))])


def _address_ethertype(family: int) -> int:
    """EtherType implied by a loopback address family; 0 if it is not IP."""
    if family == AF_INET:
        return ETH_IPV4
    if family in AF_INET6_VALUES:
        return ETH_IPV6
    return 0


# Tag stacks deeper than this are not walked further: the frame is treated as non-IP
# (bounded work per packet). Must equal ``kernels.headers.MAX_VLAN_TAGS``.
MAX_VLAN_TAGS = 8


def _finish_link(pkt: DecodedPacket, data: memoryview, offset: int, ethertype: int) -> None:
    """Walk VLAN tags and a PPPoE session header from ``offset``, then decode L3.

    Used by every link type that carries an EtherType (Ethernet, SLL, SLL2).
    Link-stage columns are written as they are read, so after ERR_TRUNC_LINK they
    describe what was read: ``ethertype`` is the last EtherType seen (the TPID of a
    cut tag, 0x8864 for a cut PPPoE header), ``vlan_id``/``vlan_count`` the complete
    tags. ``l3_off`` is only set once an IPv4/IPv6 header is known to follow.
    """
    pkt.set_columns(ethertype=ethertype)
    count = 0
    while ethertype in VLAN_TPIDS and count < MAX_VLAN_TAGS:
        name = VLAN_TPIDS[ethertype]
        if captured(pkt, offset) < VLAN_TAG.size:
            truncated_layer(pkt, name, offset, VLAN_TAG.size)
            pkt.fail(ERR_TRUNC_LINK)
            return
        tag = VLAN_TAG.unpack(data, offset)
        pkt.add(
            Layer(
                name,
                offset,
                VLAN_TAG.size,
                tag,
                summary=f"VLAN:{tag['vlan_id']}",
                inline=True,
                headers=(VLAN_TAG,),
            )
        )
        if count == 0:
            pkt.set_columns(vlan_id=tag["vlan_id"])
        count += 1
        ethertype = tag["ethertype"]
        offset += VLAN_TAG.size
        pkt.set_columns(vlan_count=count, ethertype=ethertype)

    if ethertype == ETH_PPPOE_SESSION:
        if captured(pkt, offset) < PPPOE.size:
            truncated_layer(pkt, "PPPoE", offset, PPPOE.size)
            pkt.fail(ERR_TRUNC_LINK)
            return
        session = PPPOE.unpack(data, offset)
        pkt.add(
            Layer(
                "PPPoE",
                offset,
                PPPOE.size,
                session,
                summary=f"PPPoE session 0x{session['session_id']:04x}",
                headers=(PPPOE,),
            )
        )
        offset += PPPOE.size
        ip_type = PPP_TO_ETHERTYPE.get(session["ppp_protocol"])
        if ip_type is None:
            protocol, have = session["ppp_protocol"], captured(pkt, offset)
            pkt.add(
                Layer(
                    f"PPP protocol 0x{protocol:04x}",
                    offset,
                    have,
                    {"ppp_protocol": protocol},
                    summary=f"PPP 0x{protocol:04x}",
                    extra=[("PPP protocol", f"0x{protocol:04x}"), ("data", f"{have} bytes")],
                )
            )
            return
        ethertype = ip_type
        pkt.set_columns(ethertype=ethertype)

    if ethertype in (ETH_IPV4, ETH_IPV6):
        pkt.set_columns(l3_off=offset)
    decode_ethertype(pkt, data, offset, ethertype)


def _fixed_link(pkt: DecodedPacket, data: memoryview, header: Header) -> dict[str, int] | None:
    """Parse a link header that starts the frame; None (and ERR_TRUNC_LINK) if cut."""
    if pkt.caplen < header.size:
        truncated_layer(pkt, header.name, 0, header.size)
        pkt.fail(ERR_TRUNC_LINK)
        return None
    values = header.unpack(data, 0)
    pkt.add(Layer(header.name, 0, header.size, values, headers=(header,)))
    return values


def decode_ethernet(pkt: DecodedPacket, data: memoryview) -> None:
    values = _fixed_link(pkt, data, ETHERNET)
    if values is not None:
        _finish_link(pkt, data, ETHERNET.size, values["ethertype"])


def decode_sll(pkt: DecodedPacket, data: memoryview) -> None:
    """Linux cooked v1: 16 bytes, protocol (an EtherType) at offset 14."""
    values = _fixed_link(pkt, data, SLL)
    if values is not None:
        _finish_link(pkt, data, SLL.size, values["protocol"])


def decode_sll2(pkt: DecodedPacket, data: memoryview) -> None:
    """Linux cooked v2: 20 bytes, protocol (an EtherType) at offset 0."""
    values = _fixed_link(pkt, data, SLL2)
    if values is not None:
        _finish_link(pkt, data, SLL2.size, values["protocol"])


def _loopback(pkt: DecodedPacket, data: memoryview, family: int, name: str, ethertype: int) -> None:
    """Show the loopback header; decode IP when ``ethertype`` (implied) is IPv4/IPv6.

    No VLAN tags can follow a loopback header, so this does not use ``_finish_link``.
    """
    layer = pkt.add(Layer(name, 0, LOOP.size, {"family": family}, headers=(LOOP,)))
    if ethertype and not _address_ethertype(family):
        layer.extra.append(("ethertype", ETHERTYPE(ethertype)))
    if ethertype == 0:
        # Not IP: a complete, error-free decode that stops here (like ARP on Ethernet).
        pkt.set_columns(ethertype=0)
        have = captured(pkt, LOOP.size)
        pkt.add(
            Layer(
                f"Address family {family}",
                LOOP.size,
                have,
                {"family": family},
                summary=f"AF {family}",
                extra=[("family", str(family)), ("data", f"{have} bytes")],
            )
        )
        return
    pkt.set_columns(ethertype=ethertype, l3_off=LOOP.size)
    decode_ethertype(pkt, data, LOOP.size, ethertype)


def decode_null(pkt: DecodedPacket, data: memoryview) -> None:
    """BSD NULL: family in the capturing host's byte order.

    Tried in order: little-endian, big-endian (the known values are < 256, so at most
    one order can match), then an EtherType (0x0800/0x86DD) in the last two bytes,
    which some writers put there. Otherwise the frame is non-IP (no error).
    """
    if pkt.caplen < LOOP.size:
        truncated_layer(pkt, "Null/Loopback", 0, LOOP.size)
        pkt.fail(ERR_TRUNC_LINK)
        return
    (little,) = struct.unpack_from("<I", data, 0)
    (big,) = struct.unpack_from(">I", data, 0)
    for family in (little, big):
        if _address_ethertype(family):
            _loopback(pkt, data, family, "Null/Loopback", _address_ethertype(family))
            return
    (low16,) = struct.unpack_from(">H", data, 2)
    _loopback(pkt, data, little, "Null/Loopback", low16 if low16 in (ETH_IPV4, ETH_IPV6) else 0)


def decode_loop(pkt: DecodedPacket, data: memoryview) -> None:
    """OpenBSD LOOP: family in network byte order."""
    if pkt.caplen < LOOP.size:
        truncated_layer(pkt, "Loopback", 0, LOOP.size)
        pkt.fail(ERR_TRUNC_LINK)
        return
    (family,) = struct.unpack_from(">I", data, 0)
    _loopback(pkt, data, family, "Loopback", _address_ethertype(family))


def decode_raw(pkt: DecodedPacket, data: memoryview) -> None:
    """Raw IP (101; 12 as numbered on OpenBSD; 228 IPV4; 229 IPV6): the version nibble
    picks IPv4/IPv6, as tcpdump and tshark do — an IPv6 packet in a LINKTYPE_IPV4 file
    is decoded as IPv6, not reported as an error.

    There is no link header. An empty packet is ERR_TRUNC_IP (the IP header is what
    is missing) and a nibble other than 4/6 is ERR_BAD_IP_VERSION; in both cases
    ethertype = 0 and l3_off = -1. Otherwise ethertype is implied by the nibble and
    l3_off = 0.
    """
    if pkt.caplen < 1:
        truncated_layer(pkt, "IP", 0, 20)
        pkt.fail(ERR_TRUNC_IP)
        return
    version = data[0] >> 4
    ethertype = {4: ETH_IPV4, 6: ETH_IPV6}.get(version, 0)
    if ethertype == 0:
        pkt.add(
            Layer(
                "IP",
                0,
                1,
                {"version": version},
                summary=f"IP version {version}",
                extra=[("version", f"{version} (not 4 or 6)")],
            )
        )
        pkt.fail(ERR_BAD_IP_VERSION)
        return
    pkt.set_columns(l3_off=0, ethertype=ethertype)
    decode_ethertype(pkt, data, 0, ethertype)


def link_name(linktype: int) -> str:
    """Short link-type name used after ``Link:`` (``Unsupported(N)`` when not decoded)."""
    name = LINKTYPE_NAMES.get(linktype)
    return name if name else f"Unsupported({linktype})"


def link_type_text(linktype: int) -> str:
    return f"{link_name(linktype)} ({linktype})"

"""Decoded-packet model, the protocol registry and the dispatch between layers.

Each protocol module exposes one ``decode`` function with the signature of its
level (link, L3, transport, application) and is bound to a number (link type,
EtherType, IP protocol, UDP port) or to the TCP payload heuristics by one
``register_*`` call in ``netscope.decode.__init__``. Nothing here knows any
particular protocol, so adding one never touches this file.

Column bookkeeping mirrors the compiled kernel (``kernels/decode.py``): each
decoder writes its columns once the header they come from has been read and
checked; decoding stops at the first error and nothing already written is reset.
``docs/protocols.md`` ("Decoding rules shared with the kernel") is the normative
text, including exactly which columns each error leaves set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netscope.columns import COLUMN_SPEC
from netscope.constants import ERR_OK
from netscope.decode.fields import Header

# Column defaults: -1 for "absent" offsets and the VLAN id, 0 for everything else.
_MINUS_ONE = frozenset({"l3_off", "vlan_id", "l4_off", "payload_off"})
DEFAULT_COLUMNS: dict[str, int] = {
    name: (-1 if name in _MINUS_ONE else 0) for name, _dtype, _doc in COLUMN_SPEC
}


@dataclass
class Layer:
    """One decoded header.

    - ``name``: display name and detail-block title (``IPv4``, ``802.1Q`` …).
    - ``offset`` / ``length``: where the header sits in the packet (bytes decoded).
    - ``values``: the raw parsed values (ints, ``bytes`` addresses, ``str`` names),
      for code that wants numbers rather than text.
    - ``headers``: the declared tables the values came from; ``fields`` formats them
      only when someone looks (the one-line view never does, so it stays cheap).
    - ``overrides``: field texts that replace a formatter's (a checksum verdict).
    - ``extra``: detail lines after the declared fields (options, notes, …).
    - ``summary``: this layer's segment of the one-line view ("" = not shown);
      ``inline`` segments are joined with a space instead of `` | `` (VLAN tags).
    """

    name: str
    offset: int
    length: int
    values: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    inline: bool = False
    headers: tuple[Header, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)
    extra: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fields(self) -> list[tuple[str, str]]:
        """Ordered ``(label, text)`` pairs for the detail view and the packet inspector."""
        out: list[tuple[str, str]] = []
        for header in self.headers:
            out += header.describe(self.values, self.overrides)
        return out + self.extra


@dataclass
class DecodedPacket:
    """Result of :func:`netscope.decode.decode_packet`.

    Holds no reference to the packet bytes (batch buffers are reused by sources),
    only the layers and the column values. ``error`` is an ``ERR_*`` code from
    ``netscope.constants`` with the kernel's semantics; decoding stops at the
    first error and the layers decoded so far are kept.
    """

    linktype: int
    caplen: int
    layers: list[Layer] = field(default_factory=list)
    error: int = ERR_OK
    # True while decoding the datagram quoted inside an ICMP error, so that a quote
    # inside the quote is not decoded again (bounded recursion).
    quoted: bool = field(default=False, repr=False)
    _cols: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_COLUMNS), repr=False)

    # --- used by the decoders -----------------------------------------------------

    def add(self, layer: Layer) -> Layer:
        self.layers.append(layer)
        return layer

    def fail(self, code: int) -> None:
        """Record a decode error; the caller stops decoding (returns) right after."""
        self.error = code

    def set_columns(self, **values: int) -> None:
        """Write columns (names from COLUMN_SPEC; a typo is a bug → KeyError)."""
        for name, value in values.items():
            if name not in DEFAULT_COLUMNS:
                raise KeyError(f"unknown column {name!r}")
            self._cols[name] = int(value)

    # --- public -----------------------------------------------------------------

    def columns(self) -> dict[str, int]:
        """Every column of ``columns.COLUMN_SPEC`` for this packet, as the kernel writes it."""
        cols = dict(self._cols)
        cols["err"] = self.error
        return cols

    def layer(self, name: str) -> Layer | None:
        """First layer called ``name``, or None."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        return None

    @property
    def ok(self) -> bool:
        return self.error == ERR_OK


# --- registry -----------------------------------------------------------------------

LinkDecoder = Callable[[DecodedPacket, memoryview], None]
"""Decode a whole frame of one link type."""
L3Decoder = Callable[[DecodedPacket, memoryview, int], None]
"""Decode the network header at the given offset (selected by EtherType)."""
TransportDecoder = Callable[[DecodedPacket, memoryview, int, int], None]
"""Decode the transport header at ``offset``; the last argument is the IP-declared
number of bytes from ``offset`` to the end of the IP datagram (may be negative for
inconsistent length fields)."""
AppDecoder = Callable[[DecodedPacket, memoryview, int, int], bool]
"""Try to decode an application message in ``data[start:end]`` (captured bytes of
the transport payload); return True if recognised (a layer was added)."""

LINK_DECODERS: dict[int, LinkDecoder] = {}
ETHERTYPE_DECODERS: dict[int, L3Decoder] = {}
IP_PROTOCOL_DECODERS: dict[int, TransportDecoder] = {}
UDP_PORT_DECODERS: dict[int, AppDecoder] = {}
TCP_PAYLOAD_DECODERS: list[AppDecoder] = []

# These tables are filled once, at import of ``netscope.decode``, and read-only after.


def register_link(linktype: int, decoder: LinkDecoder) -> None:
    LINK_DECODERS[linktype] = decoder


def register_ethertype(ethertype: int, decoder: L3Decoder) -> None:
    ETHERTYPE_DECODERS[ethertype] = decoder


def register_ip_protocol(proto: int, decoder: TransportDecoder) -> None:
    IP_PROTOCOL_DECODERS[proto] = decoder


def register_udp_port(port: int, decoder: AppDecoder) -> None:
    UDP_PORT_DECODERS[port] = decoder


def register_tcp_payload(decoder: AppDecoder) -> None:
    """Payload heuristics tried in registration order on every TCP segment with data."""
    TCP_PAYLOAD_DECODERS.append(decoder)


# --- names for protocols we recognise but do not decode -----------------------------

ETHERTYPE_NAMES: dict[int, str] = {
    0x0800: "IPv4",
    0x0806: "ARP",
    0x8035: "RARP",
    0x8100: "802.1Q",
    0x86DD: "IPv6",
    0x8808: "Ethernet flow control",
    0x8847: "MPLS",
    0x8848: "MPLS multicast",
    0x8863: "PPPoE discovery",
    0x8864: "PPPoE session",
    0x888E: "EAPOL",
    0x88A8: "802.1ad",
    0x88CC: "LLDP",
    0x88F7: "PTP",
    0x9000: "Loopback",
    0x9100: "QinQ",
}

IP_PROTOCOL_NAMES: dict[int, str] = {
    0: "IPv6 Hop-by-Hop",
    1: "ICMP",
    2: "IGMP",
    4: "IP-in-IP",
    6: "TCP",
    17: "UDP",
    41: "IPv6-in-IP",
    43: "IPv6 Routing",
    44: "IPv6 Fragment",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "ICMPv6",
    59: "No Next Header",
    60: "IPv6 Destination Options",
    89: "OSPF",
    103: "PIM",
    112: "VRRP",
    115: "L2TP",
    132: "SCTP",
}


def ethertype_text(ethertype: int) -> str:
    name = ETHERTYPE_NAMES.get(ethertype)
    return f"0x{ethertype:04x} ({name})" if name else f"0x{ethertype:04x}"


def ip_protocol_text(proto: int) -> str:
    name = IP_PROTOCOL_NAMES.get(proto)
    return f"{proto} ({name})" if name else str(proto)


# --- dispatch -----------------------------------------------------------------------


def captured(pkt: DecodedPacket, offset: int) -> int:
    """Bytes captured from ``offset`` to the end of the packet (0 if past it)."""
    return max(0, pkt.caplen - offset)


def truncated_layer(pkt: DecodedPacket, name: str, offset: int, needed: int) -> None:
    """Show a header the capture cut short: only how much of it is there."""
    have = captured(pkt, offset)
    pkt.add(
        Layer(
            name,
            offset,
            have,
            values={"truncated": True},
            summary=name,
            extra=[("captured", f"{have} of {needed} bytes")],
        )
    )


def decode_ethertype(pkt: DecodedPacket, data: memoryview, offset: int, ethertype: int) -> None:
    """Hand the bytes after a link header to the L3 decoder for ``ethertype``.

    An EtherType without a decoder (ARP, LLDP …) is not an error: it gets an opaque
    layer so the display can name it, and decoding ends there (l3 = 0).
    """
    decoder = ETHERTYPE_DECODERS.get(ethertype)
    if decoder is not None:
        decoder(pkt, data, offset)
        return
    name = ETHERTYPE_NAMES.get(ethertype, f"EtherType 0x{ethertype:04x}")
    if ethertype < 0x0600:  # IEEE 802.3: the field is a length, an LLC header follows
        name = "802.3 LLC"
    have = captured(pkt, offset)
    pkt.add(
        Layer(
            name,
            offset,
            have,
            values={"ethertype": ethertype},
            summary=name,
            extra=[("ethertype", ethertype_text(ethertype)), ("data", f"{have} bytes")],
        )
    )


def decode_ip_payload(
    pkt: DecodedPacket, data: memoryview, offset: int, proto: int, ip_remaining: int
) -> None:
    """Continue after the IP header(s) at ``offset`` with upper-layer protocol ``proto``.

    ``ip_remaining`` is the IP-declared length from ``offset`` to the datagram's end.
    Protocols without a transport decoder (GRE, ESP …) are shown as an opaque layer
    and their bytes become the payload: l4_off = -1, payload_off = offset,
    payload_len = max(0, ip_remaining).
    """
    decoder = IP_PROTOCOL_DECODERS.get(proto)
    if decoder is not None:
        decoder(pkt, data, offset, ip_remaining)
        return
    name = IP_PROTOCOL_NAMES.get(proto, f"IP protocol {proto}")
    pkt.add(
        Layer(
            name,
            offset,
            0,
            values={"protocol": proto},
            summary=name,
            extra=[("protocol", ip_protocol_text(proto))],
        )
    )
    pkt.set_columns(payload_off=offset, payload_len=max(0, ip_remaining))


def decode_udp_payload(
    pkt: DecodedPacket, data: memoryview, start: int, end: int, sport: int, dport: int
) -> None:
    """Application decoders bound to a UDP port (destination port tried first)."""
    if end <= start:
        return
    for port in (dport, sport):
        decoder = UDP_PORT_DECODERS.get(port)
        if decoder is not None and decoder(pkt, data, start, end):
            return


def decode_tcp_payload(pkt: DecodedPacket, data: memoryview, start: int, end: int) -> None:
    """Content heuristics (TLS ClientHello …) on a segment's captured payload."""
    if end <= start:
        return
    for decoder in TCP_PAYLOAD_DECODERS:
        if decoder(pkt, data, start, end):
            return

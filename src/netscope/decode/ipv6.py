"""IPv6: fixed header and a bounded walk over extension headers.

Walked headers: hop-by-hop (0), routing (43), fragment (44), destination options
(60) and AH (51). ESP (50) is not walked — what follows it is encrypted — so it
ends the walk as the upper-layer protocol. At most ``IPV6_MAX_EXT_HEADERS``
headers are walked; if the next header is still an extension header after that,
the packet is ERR_IPV6_EXT_LIMIT. Each header's length comes from its second byte
(fragment: always 8; AH: (len + 2) * 4; others: (len + 1) * 8) and the whole header
must be captured, else ERR_TRUNC_IPV6_EXT. On those two errors the fixed-header
columns stay set, ``proto`` is the next-header value where the walk stopped and
``frag`` holds the bits of the fragment headers walked so far.

A fragment header with offset > 0 ends the walk: its next-header value is the
upper-layer protocol (``proto``), and the rest of the packet is fragment data
(payload, no transport). An atomic fragment (offset 0, M = 0) only sets
FRAG_HEADER and the walk continues into the transport header.

A routing header (type 0, 2 or 4) with segments left > 0 replaces the ``dst``
columns with the final destination it names (see ``_final_destination``).

A payload length of 0 (jumbogram, or a capture taken before segmentation offload)
is read as "up to the end of the captured bytes".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netscope.constants import (
    ERR_BAD_IP_VERSION,
    ERR_IPV6_EXT_LIMIT,
    ERR_TRUNC_IP,
    ERR_TRUNC_IPV6_EXT,
    FRAG_HEADER,
    FRAG_MORE,
    FRAG_NONINITIAL,
    IPPROTO_AH,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPV6_MAX_EXT_HEADERS,
    L3_IPV6,
)
from netscope.decode.base import (
    IP_PROTOCOL_NAMES,
    DecodedPacket,
    Layer,
    captured,
    decode_ip_payload,
    truncated_layer,
)
from netscope.decode.fields import (
    Bit,
    Bits,
    Field,
    Header,
    dec,
    enum,
    flag,
    hex2,
    hex8,
    hex_width,
    ipv6_text,
    times,
)

NEXT_HEADER = enum(IP_PROTOCOL_NAMES)

IPV6 = Header(
    "IPv6",
    [
        Bits(
            "I",
            (
                Bit("version", 4),
                Bit("traffic_class", 8, hex2, "traffic class"),
                Bit("flow_label", 20, hex_width(5), "flow label"),
            ),
        ),
        Field("payload_length", "H", dec, "payload length"),
        Field("next_header", "B", NEXT_HEADER, "next header"),
        Field("hop_limit", "B", dec, "hop limit"),
        Field("src", "16s", ipv6_text, "source"),
        Field("dst", "16s", ipv6_text, "destination"),
    ],
)

OPTIONS = Header(
    "Options",
    [
        Field("next_header", "B", NEXT_HEADER, "next header"),
        Field("hdr_ext_len", "B", lambda n: f"{(n + 1) * 8} bytes ({n})", "length"),
    ],
)
ROUTING = Header(
    "Routing",
    [
        Field("next_header", "B", NEXT_HEADER, "next header"),
        Field("hdr_ext_len", "B", lambda n: f"{(n + 1) * 8} bytes ({n})", "length"),
        Field(
            "routing_type",
            "B",
            enum(
                {
                    0: "source route (deprecated)",
                    2: "type 2 (Mobile IPv6)",
                    3: "RPL",
                    4: "segment routing",
                }
            ),
            "type",
        ),
        Field("segments_left", "B", dec, "segments left"),
    ],
)
FRAGMENT = Header(
    "Fragment",
    [
        Field("next_header", "B", NEXT_HEADER, "next header"),
        Field("reserved", "B", hex2),
        Bits(
            "H",
            (
                Bit("frag_offset", 13, times(8), "fragment offset"),
                Bit("res", 2),
                Bit("m", 1, flag, "more fragments"),
            ),
        ),
        Field("identification", "I", hex8),
    ],
)
AH = Header(
    "AH",
    [
        Field("next_header", "B", NEXT_HEADER, "next header"),
        Field("payload_len", "B", lambda n: f"{(n + 2) * 4} bytes ({n})", "length"),
        Field("reserved", "H", hex_width(4)),
        Field("spi", "I", hex8, "SPI"),
        Field("sequence", "I", dec),
    ],
)

# next header -> (detail block title, short name for the summary, declared header,
#                 length in bytes from the header's second byte)
ExtSpec = tuple[str, str, Header, Callable[[int], int]]
EXTENSION_HEADERS: dict[int, ExtSpec] = {
    IPPROTO_HOPOPTS: ("IPv6 Hop-by-Hop Options", "hop-by-hop", OPTIONS, lambda n: (n + 1) * 8),
    IPPROTO_ROUTING: ("IPv6 Routing", "routing", ROUTING, lambda n: (n + 1) * 8),
    IPPROTO_FRAGMENT: ("IPv6 Fragment", "fragment", FRAGMENT, lambda n: 8),
    IPPROTO_DSTOPTS: ("IPv6 Destination Options", "dest-opts", OPTIONS, lambda n: (n + 1) * 8),
    IPPROTO_AH: ("IPv6 AH", "AH", AH, lambda n: (n + 2) * 4),
}

TLV_OPTION_NAMES = {
    0: "Pad1",
    1: "PadN",
    4: "Tunnel Encapsulation Limit",
    5: "Router Alert",
    0x26: "Quick-Start",
    0x63: "RPL",
    0xC2: "Jumbo Payload",
    0xC9: "Home Address",
}


def _tlv_options(data: memoryview, start: int, end: int) -> str:
    """Names of the TLV options in a hop-by-hop / destination-options header."""
    names: list[str] = []
    pos = start
    while pos < end:
        kind = data[pos]
        names.append(TLV_OPTION_NAMES.get(kind, f"option 0x{kind:02x}"))
        if kind == 0:
            pos += 1
            continue
        if pos + 1 >= end:
            names.append("malformed")
            break
        pos += 2 + data[pos + 1]
    return ", ".join(names) if names else "none"


def _extension_layer(
    title: str, nh: int, header: Header, data: memoryview, start: int, length: int
) -> Layer:
    """Layer of one extension header (declared fields only if they fit in it)."""
    if length >= header.size:
        layer = Layer(title, start, length, header.unpack(data, start), headers=(header,))
    else:  # e.g. an AH shorter than its 12-byte minimum: show what is certain
        values = OPTIONS.unpack(data, start)
        layer = Layer(
            title,
            start,
            length,
            values,
            extra=[
                ("next header", NEXT_HEADER(values["next_header"])),
                ("length", f"{length} bytes"),
            ],
        )
    if nh in (IPPROTO_HOPOPTS, IPPROTO_DSTOPTS):
        layer.extra.append(("options", _tlv_options(data, start + 2, start + length)))
    elif nh == IPPROTO_ROUTING and layer.values.get("routing_type") in (0, 4):
        # type 0: addresses follow 4 reserved bytes; type 4 (SRH): segment list after
        # last-entry/flags/tag. Both start at byte 8, 16 bytes each.
        count = (length - 8) // 16
        addrs = [
            ipv6_text(bytes(data[start + 8 + 16 * i : start + 24 + 16 * i])) for i in range(count)
        ]
        label = "segments" if layer.values["routing_type"] == 4 else "addresses"
        layer.extra.append((label, ", ".join(addrs) or "none"))
    return layer


def _final_destination(data: memoryview, pos: int, length: int) -> bytes | None:
    """Where a routing header with segments left will finally deliver the packet.

    That address — not the IPv6 destination field, which names the next hop of
    the route — is what transport checksums and flow keys use, so it becomes the
    ``dst`` columns. Type 0 and 2 list it last; type 4 (SRH) lists it first.
    """
    if length < 24 or data[pos + 3] == 0:
        return None
    routing_type = data[pos + 2]
    if routing_type in (0, 2):
        return bytes(data[pos + length - 16 : pos + length])
    if routing_type == 4:
        return bytes(data[pos + 8 : pos + 24])
    return None


def _summary(v: dict[str, Any], walked: list[str], frag: int, frag_offset: int) -> str:
    text = (
        f"IPv6: {ipv6_text(v['src'])} -> {ipv6_text(v['dst'])} "
        f"hlim={v['hop_limit']} plen={v['payload_length']}"
    )
    if walked:
        text += f" ext={','.join(walked)}"
    if frag & FRAG_MORE:
        text += " MF"
    if frag_offset:
        text += f" frag={frag_offset}"
    return text


def decode(pkt: DecodedPacket, data: memoryview, offset: int) -> None:
    if captured(pkt, offset) < IPV6.size:
        truncated_layer(pkt, "IPv6", offset, IPV6.size)
        pkt.fail(ERR_TRUNC_IP)
        return
    v = IPV6.unpack(data, offset)
    if v["version"] != 6:
        pkt.add(
            Layer(
                "IPv6",
                offset,
                1,
                {"version": v["version"]},
                summary="IPv6",
                extra=[("version", f"{v['version']} (expected 6)")],
            )
        )
        pkt.fail(ERR_BAD_IP_VERSION)
        return
    layer = pkt.add(Layer("IPv6", offset, IPV6.size, v, headers=(IPV6,)))
    pkt.set_columns(
        l3=L3_IPV6,
        ip_csum_ok=1,
        ttl=v["hop_limit"],
        src_hi=int.from_bytes(v["src"][:8], "big"),
        src_lo=int.from_bytes(v["src"][8:], "big"),
        dst_hi=int.from_bytes(v["dst"][:8], "big"),
        dst_lo=int.from_bytes(v["dst"][8:], "big"),
    )
    # Payload length 0 means a jumbogram or a segmentation-offload capture: the
    # datagram then extends to the end of the captured bytes.
    payload_length = v["payload_length"] or captured(pkt, offset + IPV6.size)

    # --- extension-header walk: decides proto and frag ---
    nh = v["next_header"]
    pos = offset + IPV6.size
    walked: list[str] = []
    frag = 0
    frag_offset = 0
    while nh in EXTENSION_HEADERS:
        title, short, header, length_of = EXTENSION_HEADERS[nh]
        if len(walked) == IPV6_MAX_EXT_HEADERS:
            # proto = the header where the walk stopped; frag = bits seen so far.
            pkt.set_columns(proto=nh, frag=frag)
            layer.summary = _summary(v, [*walked, "…"], frag, frag_offset)
            pkt.fail(ERR_IPV6_EXT_LIMIT)
            return
        avail = captured(pkt, pos)
        length = length_of(data[pos + 1]) if avail >= 2 else 2
        if avail < length:
            pkt.set_columns(proto=nh, frag=frag)
            layer.summary = _summary(v, walked, frag, frag_offset)
            truncated_layer(pkt, title, pos, length)
            pkt.fail(ERR_TRUNC_IPV6_EXT)
            return
        ext = pkt.add(_extension_layer(title, nh, header, data, pos, length))
        if nh == IPPROTO_ROUTING:
            final = _final_destination(data, pos, length)
            if final is not None:
                ext.extra.append(("final destination", ipv6_text(final)))
                pkt.set_columns(
                    dst_hi=int.from_bytes(final[:8], "big"), dst_lo=int.from_bytes(final[8:], "big")
                )
        walked.append(short)
        nh = data[pos]
        pos += length
        if header is FRAGMENT:
            frag |= FRAG_HEADER | (FRAG_MORE if ext.values["m"] else 0)
            if ext.values["frag_offset"]:
                # Non-initial: the rest is fragment data, not headers. Stop here.
                frag |= FRAG_NONINITIAL
                frag_offset = ext.values["frag_offset"] * 8
                break
    layer.summary = _summary(v, walked, frag, frag_offset)

    pkt.set_columns(proto=nh, frag=frag)
    ip_remaining = payload_length - (pos - offset - IPV6.size)
    if frag & FRAG_NONINITIAL:
        pkt.set_columns(payload_off=pos, payload_len=max(0, ip_remaining))
        return
    decode_ip_payload(pkt, data, pos, nh, ip_remaining)

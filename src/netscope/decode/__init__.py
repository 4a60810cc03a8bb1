"""Readable per-packet decoder for display: CLI per-packet lines, detail view, inspector.

This is not the hot path (that is ``kernels.decode``, which writes columns for whole
batches). It decodes one packet into :class:`Layer` objects a human can read, and
reproduces the kernel's columns exactly (``DecodedPacket.columns()``) so the two
can be checked against each other. ``docs/protocols.md`` describes every rule.

Usage::

    from netscope.decode import decode_packet
    pkt = decode_packet(frame_bytes, linktype)
    for layer in pkt.layers:
        print(layer.name, layer.fields)

Adding a protocol: write one module with a ``decode`` function and a ``Header``
declaration, then add one ``register_*`` line below.
"""

from __future__ import annotations

from netscope.constants import (
    ERR_UNSUPPORTED_LINK,
    ETH_IPV4,
    ETH_IPV6,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_OPENBSD,
)
from netscope.decode import dns, icmp, icmpv6, ipv4, ipv6, link, tcp, tls, udp
from netscope.decode.base import (
    LINK_DECODERS,
    DecodedPacket,
    Layer,
    register_ethertype,
    register_ip_protocol,
    register_link,
    register_tcp_payload,
    register_udp_port,
)

__all__ = ["DecodedPacket", "Layer", "decode_packet"]

# --- registration: one line per protocol binding ---------------------------------
register_link(LINKTYPE_ETHERNET, link.decode_ethernet)
register_link(LINKTYPE_LINUX_SLL, link.decode_sll)
register_link(LINKTYPE_LINUX_SLL2, link.decode_sll2)
register_link(LINKTYPE_NULL, link.decode_null)
register_link(LINKTYPE_LOOP, link.decode_loop)
register_link(LINKTYPE_RAW, link.decode_raw)
register_link(LINKTYPE_RAW_OPENBSD, link.decode_raw)
register_link(LINKTYPE_IPV4, link.decode_raw)
register_link(LINKTYPE_IPV6, link.decode_raw)

register_ethertype(ETH_IPV4, ipv4.decode)
register_ethertype(ETH_IPV6, ipv6.decode)

register_ip_protocol(IPPROTO_TCP, tcp.decode)
register_ip_protocol(IPPROTO_UDP, udp.decode)
register_ip_protocol(IPPROTO_ICMP, icmp.decode)
register_ip_protocol(IPPROTO_ICMPV6, icmpv6.decode)

register_udp_port(53, dns.decode)
register_tcp_payload(tls.decode)


def decode_packet(data: memoryview | bytes | bytearray, linktype: int) -> DecodedPacket:
    """Decode one captured frame of the given LINKTYPE_* into layers and columns.

    Never raises on packet content: any bytes with any link type give a
    DecodedPacket, with ``error`` set (and the layers decoded so far kept) when the
    packet is malformed or truncated. The packet bytes are read through a
    memoryview, never copied, and not retained by the result.
    """
    view = memoryview(data)
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")  # e.g. a numpy int8 slice: read it as unsigned bytes
    pkt = DecodedPacket(linktype=linktype, caplen=view.nbytes)
    decoder = LINK_DECODERS.get(linktype)
    if decoder is None:
        pkt.fail(ERR_UNSUPPORTED_LINK)
        return pkt
    decoder(pkt, view)
    return pkt

"""UDP: 8-byte header; the payload is handed to the decoder bound to either port.

payload_len comes from the IP length fields (IP-declared bytes after the IP
headers - 8, never negative), not from the UDP length field, so it means the same
thing for every transport; the UDP length is shown in the summary and detail.
"""

from __future__ import annotations

from netscope.constants import ERR_TRUNC_L4
from netscope.decode.base import (
    DecodedPacket,
    Layer,
    captured,
    decode_udp_payload,
    truncated_layer,
)
from netscope.decode.fields import Field, Header, dec, hex_width

UDP = Header(
    "UDP",
    [
        Field("sport", "H", dec, "source port"),
        Field("dport", "H", dec, "destination port"),
        Field("length", "H"),
        Field("checksum", "H", hex_width(4)),
    ],
)


def decode(pkt: DecodedPacket, data: memoryview, offset: int, ip_remaining: int) -> None:
    if captured(pkt, offset) < UDP.size:
        truncated_layer(pkt, "UDP", offset, UDP.size)
        pkt.fail(ERR_TRUNC_L4)
        return
    v = UDP.unpack(data, offset)
    summary = f"UDP :{v['sport']} -> :{v['dport']} len={v['length']}"
    pkt.add(Layer("UDP", offset, UDP.size, v, summary, headers=(UDP,)))
    payload_off = offset + UDP.size
    payload_len = max(0, ip_remaining - UDP.size)
    pkt.set_columns(
        l4_off=offset,
        sport=v["sport"],
        dport=v["dport"],
        payload_off=payload_off,
        payload_len=payload_len,
    )
    end = min(pkt.caplen, payload_off + payload_len)
    decode_udp_payload(pkt, data, payload_off, end, v["sport"], v["dport"])

"""IPv4: fixed header + options, header checksum verification, fragments.

Checks, in this order (the kernel uses the same order, so the first failing check
names the error): 20 bytes captured (else ERR_TRUNC_IP); version nibble 4 (else
ERR_BAD_IP_VERSION); IHL >= 5 and total length >= IHL*4 (else ERR_BAD_IP_HEADER; a total
length of 0 means "to the end of the captured bytes", as with segmentation offload);
IHL*4 bytes captured, options included (else ERR_TRUNC_IP). The L3 columns are
written only when all of them pass. A wrong checksum is not an error: it only
clears ``ip_csum_ok``.
"""

from __future__ import annotations

import struct
from typing import Any

from netscope.constants import (
    ERR_BAD_IP_HEADER,
    ERR_BAD_IP_VERSION,
    ERR_TRUNC_IP,
    FRAG_MORE,
    FRAG_NONINITIAL,
    L3_IPV4,
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
    hex4,
    hex_dec4,
    ipv4_text,
    times,
)

IPV4 = Header(
    "IPv4",
    [
        Bits("B", (Bit("version", 4), Bit("ihl", 4, times(4), "header length"))),
        Bits("B", (Bit("dscp", 6, hex2, "DSCP"), Bit("ecn", 2, dec, "ECN"))),
        Field("total_length", "H", dec, "total length"),
        Field("identification", "H", hex_dec4),
        Bits(
            "H",
            (
                Bit("reserved_flag", 1, flag, "reserved flag"),
                Bit("df", 1, flag, "don't fragment"),
                Bit("mf", 1, flag, "more fragments"),
                Bit("frag_offset", 13, times(8), "fragment offset"),
            ),
        ),
        Field("ttl", "B", dec, "TTL"),
        Field("protocol", "B", enum(IP_PROTOCOL_NAMES)),
        Field("checksum", "H", hex4),
        Field("src", "4s", ipv4_text, "source"),
        Field("dst", "4s", ipv4_text, "destination"),
    ],
)

OPTION_NAMES = {
    0: "EOL",
    1: "NOP",
    7: "Record Route",
    68: "Timestamp",
    130: "Security",
    131: "Loose Source Route",
    137: "Strict Source Route",
    148: "Router Alert",
}


def header_checksum(data: memoryview, offset: int, length: int) -> tuple[bool, int]:
    """(verifies, the value the checksum field should hold) for the header bytes.

    One's-complement sum of the 16-bit words; a correct header sums to 0xFFFF.
    """
    words = struct.unpack_from(f"!{length // 2}H", data, offset)
    stored = words[5]

    def fold(total: int) -> int:
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
        return total

    total = sum(words)
    return fold(total) == 0xFFFF, ~fold(total - stored) & 0xFFFF


def _options_text(data: memoryview, start: int, end: int) -> str:
    """Option names in a bounded walk over the options bytes (display only)."""
    names: list[str] = []
    pos = start
    while pos < end:
        kind = data[pos]
        names.append(OPTION_NAMES.get(kind, f"option {kind}"))
        if kind == 0:
            break
        if kind == 1:
            pos += 1
            continue
        if pos + 1 >= end or data[pos + 1] < 2:
            names.append("malformed")
            break
        pos += data[pos + 1]
    return f"{end - start} bytes ({', '.join(names)})"


def _summary(v: dict[str, Any]) -> str:
    parts = [
        f"IPv4: {ipv4_text(v['src'])} -> {ipv4_text(v['dst'])}",
        f"ttl={v['ttl']}",
        f"len={v['total_length']}",
    ]
    if v["df"]:
        parts.append("DF")
    if v["mf"]:
        parts.append("MF")
    if v["frag_offset"]:
        parts.append(f"frag={v['frag_offset'] * 8}")
    return " ".join(parts)


def decode(pkt: DecodedPacket, data: memoryview, offset: int) -> None:
    avail = captured(pkt, offset)
    if avail < IPV4.size:
        truncated_layer(pkt, "IPv4", offset, IPV4.size)
        pkt.fail(ERR_TRUNC_IP)
        return
    v = IPV4.unpack(data, offset)
    if v["version"] != 4:
        pkt.add(
            Layer(
                "IPv4",
                offset,
                1,
                {"version": v["version"]},
                summary="IPv4",
                extra=[("version", f"{v['version']} (expected 4)")],
            )
        )
        pkt.fail(ERR_BAD_IP_VERSION)
        return
    hlen = v["ihl"] * 4
    # Total length 0: captured before segmentation offload filled it in; like Wireshark,
    # the packet extends to the end of the captured bytes.
    total = v["total_length"] or avail
    if v["ihl"] < 5 or total < hlen or avail < hlen:
        layer = pkt.add(Layer("IPv4", offset, IPV4.size, v, _summary(v), headers=(IPV4,)))
        if v["ihl"] < 5 or total < hlen:
            pkt.fail(ERR_BAD_IP_HEADER)
        else:
            layer.extra.append(("options", f"{hlen - IPV4.size} bytes, cut by the capture"))
            pkt.fail(ERR_TRUNC_IP)
        return

    csum_ok, expected = header_checksum(data, offset, hlen)
    verdict = "[correct]" if csum_ok else f"[incorrect, should be 0x{expected:04x}]"
    v["checksum_ok"] = csum_ok
    layer = pkt.add(
        Layer(
            "IPv4",
            offset,
            hlen,
            v,
            _summary(v),
            headers=(IPV4,),
            overrides={"checksum": f"0x{v['checksum']:04x} {verdict}"},
        )
    )
    if hlen > IPV4.size:
        layer.extra.append(("options", _options_text(data, offset + IPV4.size, offset + hlen)))
    if v["total_length"] == 0:
        layer.extra.append(("length", f"0: segmentation offload, the {avail} captured bytes used"))

    frag = (FRAG_MORE if v["mf"] else 0) | (FRAG_NONINITIAL if v["frag_offset"] else 0)
    pkt.set_columns(
        l3=L3_IPV4,
        ip_csum_ok=int(csum_ok),
        ttl=v["ttl"],
        src_hi=0,
        src_lo=int.from_bytes(v["src"], "big"),
        dst_hi=0,
        dst_lo=int.from_bytes(v["dst"], "big"),
        proto=v["protocol"],
        frag=frag,
    )
    ip_remaining = total - hlen
    if v["frag_offset"]:
        # A non-initial fragment carries no transport header: its bytes are payload.
        pkt.set_columns(payload_off=offset + hlen, payload_len=ip_remaining)
        return
    decode_ip_payload(pkt, data, offset + hlen, v["protocol"], ip_remaining)

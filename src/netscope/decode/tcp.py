"""TCP: fixed header, options (named in the detail view), flags.

The fixed 20 bytes must be captured (else ERR_TRUNC_L4); they alone fill the TCP
columns (l4_off, ports, flags, seq, ack, win). Options cut by the snap length are
*not* an error — a capture with a 54- or 64-byte snaplen still has everything flow
tracking needs. A data offset < 5 is ERR_BAD_TCP_HEADER: the TCP columns stay set,
there is no payload. Otherwise payload_off = l4_off + data offset * 4 (which may be
beyond the captured bytes) and payload_len = max(0, IP-declared bytes after the IP
headers - data offset * 4).
The checksum is shown, not verified (offloaded checksums are normal in captures).
"""

from __future__ import annotations

import struct

from netscope.constants import (
    ERR_BAD_TCP_HEADER,
    ERR_TRUNC_L4,
    TCP_ACK,
    TCP_CWR,
    TCP_ECE,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    TCP_URG,
)
from netscope.decode.base import (
    DecodedPacket,
    Layer,
    captured,
    decode_tcp_payload,
    truncated_layer,
)
from netscope.decode.fields import Bit, Bits, Field, Header, dec, hex_width, times

# Lowest bit first, so the usual combinations read as people say them: SYN,ACK / FIN,ACK.
FLAG_NAMES = (
    (TCP_FIN, "FIN"),
    (TCP_SYN, "SYN"),
    (TCP_RST, "RST"),
    (TCP_PSH, "PSH"),
    (TCP_ACK, "ACK"),
    (TCP_URG, "URG"),
    (TCP_ECE, "ECE"),
    (TCP_CWR, "CWR"),
)


def flags_text(flags: int) -> str:
    """``SYN,ACK``; ``none`` when no flag is set."""
    return ",".join(name for bit, name in FLAG_NAMES if flags & bit) or "none"


TCP = Header(
    "TCP",
    [
        Field("sport", "H", dec, "source port"),
        Field("dport", "H", dec, "destination port"),
        Field("seq", "I", dec, "sequence number"),
        Field("ack", "I", dec, "acknowledgment number"),
        Bits(
            "B",
            (Bit("data_offset", 4, times(4), "header length"), Bit("reserved", 4, hex_width(1))),
        ),
        Field("flags", "B", lambda f: f"0x{f:02x} ({flags_text(f)})"),
        Field("window", "H"),
        Field("checksum", "H", hex_width(4)),
        Field("urgent", "H", dec, "urgent pointer"),
    ],
)


def options_text(data: memoryview, start: int, end: int) -> str:
    """Named TCP options from a walk bounded by the header length (display only)."""
    out: list[str] = []
    pos = start
    while pos < end:
        kind = data[pos]
        if kind == 0:
            out.append("EOL")
            break
        if kind == 1:
            out.append("NOP")
            pos += 1
            continue
        if pos + 1 >= end or data[pos + 1] < 2 or pos + data[pos + 1] > end:
            out.append(f"malformed option {kind}")
            break
        length = data[pos + 1]
        body = pos + 2
        if kind == 2 and length == 4:
            out.append(f"MSS={struct.unpack_from('!H', data, body)[0]}")
        elif kind == 3 and length == 3:
            out.append(f"WS={data[body]}")
        elif kind == 4:
            out.append("SACK_PERM")
        elif kind == 5:
            blocks = [
                struct.unpack_from("!II", data, body + 8 * i) for i in range((length - 2) // 8)
            ]
            out.append("SACK " + (" ".join(f"{a}-{b}" for a, b in blocks) or "(empty)"))
        elif kind == 8 and length == 10:
            val, ecr = struct.unpack_from("!II", data, body)
            out.append(f"TS val={val} ecr={ecr}")
        elif kind == 30:
            out.append("MPTCP")
        elif kind == 34:
            out.append("TFO")
        else:
            out.append(f"option {kind} (len {length})")
        pos += length
    return ", ".join(out)


def decode(pkt: DecodedPacket, data: memoryview, offset: int, ip_remaining: int) -> None:
    avail = captured(pkt, offset)
    if avail < TCP.size:
        truncated_layer(pkt, "TCP", offset, TCP.size)
        pkt.fail(ERR_TRUNC_L4)
        return
    v = TCP.unpack(data, offset)
    summary = (
        f"TCP :{v['sport']} -> :{v['dport']} {flags_text(v['flags'])} "
        f"seq={v['seq']} ack={v['ack']} win={v['window']}"
    )
    layer = pkt.add(Layer("TCP", offset, TCP.size, v, summary, headers=(TCP,)))
    pkt.set_columns(
        l4_off=offset,
        sport=v["sport"],
        dport=v["dport"],
        tcp_flags=v["flags"],
        seq=v["seq"],
        ack=v["ack"],
        win=v["window"],
    )
    if v["data_offset"] < 5:
        pkt.fail(ERR_BAD_TCP_HEADER)
        return
    hlen = v["data_offset"] * 4
    if hlen > TCP.size:
        options_end = offset + min(hlen, avail)
        text = options_text(data, offset + TCP.size, options_end)
        cut = "" if avail >= hlen else f", {options_end - offset - TCP.size} captured"
        layer.extra.append(("options", f"{hlen - TCP.size} bytes{cut} ({text})"))
    layer.length = min(hlen, avail)

    payload_off = offset + hlen
    payload_len = max(0, ip_remaining - hlen)
    pkt.set_columns(payload_off=payload_off, payload_len=payload_len)
    decode_tcp_payload(pkt, data, payload_off, min(pkt.caplen, payload_off + payload_len))

"""DNS over UDP port 53 (either side): header, up to 2 questions and 3 answers.

Display only — DNS sets no column and never an error code: a payload shorter than
the 12-byte header is simply not shown as DNS. Names are read with compression
pointers followed, bounded by ``MAX_NAME_STEPS`` labels/pointers in total, so a
pointer loop ends as ``<malformed>`` instead of spinning.

The detail view (and the dashboard inspector, which shows the same fields) lists
``question N`` and ``answer N`` lines in the original NetScope's form —
``A example.com (IN)`` and ``A example.com -> 192.0.2.1 (ttl=300)`` — with RDATA
decoded for A, AAAA, CNAME, NS, PTR, MX and TXT and shown as hex otherwise. The
one-line summary is unchanged (scripts parse it).
"""

from __future__ import annotations

import ipaddress
import struct

from netscope.decode.base import DecodedPacket, Layer
from netscope.decode.fields import Bit, Bits, Field, Header, dec, enum, flag, hex_width

OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE", 6: "DSO"}
RCODES = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
}
QTYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    13: "HINFO",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    39: "DNAME",
    41: "OPT",
    43: "DS",
    46: "RRSIG",
    47: "NSEC",
    48: "DNSKEY",
    50: "NSEC3",
    52: "TLSA",
    64: "SVCB",
    65: "HTTPS",
    99: "SPF",
    251: "IXFR",
    252: "AXFR",
    255: "ANY",
    257: "CAA",
}
QCLASSES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}

DNS = Header(
    "DNS",
    [
        Field("id", "H", hex_width(4), "transaction id"),
        Bits(
            "H",
            (
                Bit("qr", 1, lambda v: "response" if v else "query", "message type"),
                Bit("opcode", 4, enum(OPCODES)),
                Bit("aa", 1, flag, "authoritative"),
                Bit("tc", 1, flag, "truncated"),
                Bit("rd", 1, flag, "recursion desired"),
                Bit("ra", 1, flag, "recursion available"),
                Bit("z", 1, dec, "reserved"),
                Bit("ad", 1, flag, "authentic data"),
                Bit("cd", 1, flag, "checking disabled"),
                Bit("rcode", 4, enum(RCODES), "response code"),
            ),
        ),
        Field("qdcount", "H", dec, "questions"),
        Field("ancount", "H", dec, "answers"),
        Field("nscount", "H", dec, "authority records"),
        Field("arcount", "H", dec, "additional records"),
    ],
)

MAX_NAME_STEPS = 128  # labels + pointers followed while reading one name
MAX_NAME_LENGTH = 255  # RFC 1035 limit on the wire form


def _label_text(label: bytes) -> str:
    """Printable ASCII as is; '.', '\\' and other bytes escaped the way dig does."""
    out = []
    for b in label:
        if b in (0x2E, 0x5C):
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def read_name(data: memoryview, msg_start: int, pos: int, end: int) -> tuple[str | None, int]:
    """Read a (possibly compressed) name at ``pos`` of the message at ``msg_start``.

    Returns (name, position after the name in the original stream); name is None if
    the name runs past ``end``, uses a reserved label type, is too long, or loops.
    """
    labels: list[str] = []
    wire_length = 1
    after: int | None = None  # where the name ends in the stream, set at the first pointer
    for _ in range(MAX_NAME_STEPS):
        if pos >= end:
            return None, end
        size = data[pos]
        if size == 0:
            name = ".".join(labels) if labels else "<root>"
            return name, (after if after is not None else pos + 1)
        kind = size & 0xC0
        if kind == 0xC0:
            if pos + 1 >= end:
                return None, end
            if after is None:
                after = pos + 2
            pos = msg_start + (((size & 0x3F) << 8) | data[pos + 1])
            continue
        if kind:  # 0x40 / 0x80: extended or reserved label types
            return None, end
        wire_length += size + 1
        if pos + 1 + size > end or wire_length > MAX_NAME_LENGTH:
            return None, end
        labels.append(_label_text(bytes(data[pos + 1 : pos + 1 + size])))
        pos += 1 + size
    return None, end


def type_text(qtype: int) -> str:
    return QTYPES.get(qtype, f"TYPE{qtype}")


SHOWN_QUESTIONS = 2  # as the original's detail view: the first 2 questions ...
SHOWN_ANSWERS = 3  # ... and the first 3 answers
MAX_SECTION_ENTRIES = 1024  # questions walked to reach the answers, at most
RDATA_HEX_BYTES = 24  # unknown record types: this much RDATA as hex, then "..."
_NAME_RDATA = {2, 5, 12}  # NS, CNAME, PTR


def class_text(qclass: int) -> str:
    return QCLASSES.get(qclass, f"CLASS{qclass}")


def _txt_text(rdata: bytes) -> str:
    """TXT RDATA as quoted character-strings separated by spaces."""
    if not rdata:
        return '""'
    chunks = []
    i = 0
    while i < len(rdata):
        size = rdata[i]
        if i + 1 + size > len(rdata):
            return "<malformed>"
        chunks.append('"' + _label_text(rdata[i + 1 : i + 1 + size]) + '"')
        i += 1 + size
    return " ".join(chunks)


def rdata_text(
    data: memoryview, msg_start: int, rtype: int, rdata_start: int, rdata_end: int
) -> str:
    """Best-effort RDATA for the common record types; hex (``0x…``) for the others."""
    rdata = bytes(data[rdata_start:rdata_end])
    if rtype == 1 and len(rdata) == 4:
        return str(ipaddress.IPv4Address(rdata))
    if rtype == 28 and len(rdata) == 16:
        return str(ipaddress.IPv6Address(rdata))
    if rtype in _NAME_RDATA:
        name, _ = read_name(data, msg_start, rdata_start, rdata_end)
        return name if name is not None else "<malformed>"
    if rtype == 15:
        if len(rdata) < 3:
            return "<malformed>"
        exchange, _ = read_name(data, msg_start, rdata_start + 2, rdata_end)
        if exchange is None:
            return "<malformed>"
        return f"preference={int.from_bytes(rdata[:2], 'big')} exchange={exchange}"
    if rtype == 16:
        return _txt_text(rdata)
    more = "..." if len(rdata) > RDATA_HEX_BYTES else ""
    return "0x" + rdata[:RDATA_HEX_BYTES].hex() + more


def _sections(
    data: memoryview, start: int, end: int, qdcount: int, ancount: int
) -> list[tuple[str, str]]:
    """``question N`` / ``answer N`` detail lines; a malformed entry ends the walk."""
    lines: list[tuple[str, str]] = []
    pos = start + DNS.size
    for i in range(min(qdcount, MAX_SECTION_ENTRIES)):
        name, pos = read_name(data, start, pos, end)
        if name is None or pos + 4 > end:
            lines.append(("note", f"question {i + 1} malformed"))
            return lines
        qtype, qclass = struct.unpack_from("!HH", data, pos)
        pos += 4
        if i < SHOWN_QUESTIONS:
            lines.append((f"question {i + 1}", f"{type_text(qtype)} {name} ({class_text(qclass)})"))
    if qdcount > MAX_SECTION_ENTRIES:
        return lines
    for i in range(min(ancount, SHOWN_ANSWERS)):
        name, pos = read_name(data, start, pos, end)
        if name is None or pos + 10 > end:
            lines.append(("note", f"answer {i + 1} malformed"))
            return lines
        rtype, _rclass, ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
        rdata_start = pos + 10
        pos = rdata_start + rdlen
        if pos > end:
            lines.append(("note", f"answer {i + 1} malformed"))
            return lines
        rdata = rdata_text(data, start, rtype, rdata_start, pos)
        lines.append((f"answer {i + 1}", f"{type_text(rtype)} {name} -> {rdata} (ttl={ttl})"))
    return lines


def decode(pkt: DecodedPacket, data: memoryview, start: int, end: int) -> bool:
    """Decode ``data[start:end]`` as a DNS message; False if it cannot be one."""
    if end - start < DNS.size:
        return False
    v = DNS.unpack(data, start)
    question = ""
    if v["qdcount"]:
        name, pos = read_name(data, start, start + DNS.size, end)
        v["qname"] = name
        if name is not None and pos + 4 <= end:
            qtype, qclass = struct.unpack_from("!HH", data, pos)
            v["qtype"], v["qclass"] = qtype, qclass
            question = f" {type_text(qtype)}? {name}"
        else:
            question = f" ?? {name if name is not None else '<malformed>'}"
    extra = _sections(data, start, end, v["qdcount"], v["ancount"])

    words = [f"DNS {'response' if v['qr'] else 'query'} id=0x{v['id']:04x}"]
    if v["opcode"]:
        words.append(f"opcode={OPCODES.get(v['opcode'], v['opcode'])}")
    summary = " ".join(words) + question
    if v["qr"]:
        summary += f" answers={v['ancount']}"
        if v["rcode"]:
            summary += f" rcode={RCODES.get(v['rcode'], v['rcode'])}"
    pkt.add(Layer("DNS", start, end - start, v, summary, headers=(DNS,), extra=extra))
    return True

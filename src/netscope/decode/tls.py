"""TLS ClientHello and its SNI, packet-level and best effort.

Recognised on any TCP port when the segment's payload is TLS records (version
3.x) whose first handshake record (content type 22, after at most a few change
cipher spec / alert records) holds a ClientHello (handshake type 1). Only the
bytes of this one segment are read: a ClientHello split over segments shows what
is here, and its SNI only if the server_name extension is in this segment.
The SNI is reported only when it is an ASCII hostname whose labels are non-empty
runs of ``A-Za-z0-9-`` (SPEC §3); anything else is shown as invalid, not as sni.
Display only: no column, no error code.
"""

from __future__ import annotations

import struct

from netscope.decode.base import DecodedPacket, Layer
from netscope.decode.fields import Bit, Bits, Field, Header, dec, enum, hex_width

VERSIONS = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}
VERSION = enum(VERSIONS, hex_width(4))
CONTENT_TYPES = {20: "change cipher spec", 21: "alert", 22: "handshake", 23: "application data"}
HANDSHAKE_TYPES = {1: "ClientHello", 2: "ServerHello"}
EXTENSIONS = {
    0: "server_name",
    5: "status_request",
    10: "supported_groups",
    11: "ec_point_formats",
    13: "signature_algorithms",
    16: "ALPN",
    18: "signed_certificate_timestamp",
    21: "padding",
    23: "extended_master_secret",
    27: "compress_certificate",
    35: "session_ticket",
    41: "pre_shared_key",
    43: "supported_versions",
    45: "psk_key_exchange_modes",
    51: "key_share",
    17513: "application_settings",
    0xFE0D: "encrypted_client_hello",
    0xFF01: "renegotiation_info",
}

RECORD = Header(
    "TLS record",
    [
        Field("content_type", "B", enum(CONTENT_TYPES), "content type"),
        Field("record_version", "H", VERSION, "record version"),
        Field("record_length", "H", dec, "record length"),
    ],
)
HANDSHAKE = Header(
    "TLS handshake",
    [
        Bits(
            "I",
            (
                Bit("handshake_type", 8, enum(HANDSHAKE_TYPES), "handshake type"),
                Bit("handshake_length", 24, dec, "handshake length"),
            ),
        ),
        Field("client_version", "H", VERSION, "client version"),
    ],
)
RANDOM_SIZE = 32
MAX_SKIPPED_RECORDS = 4  # non-handshake records tolerated before the ClientHello
HOSTNAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def valid_hostname(raw: bytes) -> str | None:
    """The SNI as text if every dot-separated label is a non-empty ``A-Za-z0-9-`` run."""
    labels = raw.split(b".")
    if all(label and set(label) <= HOSTNAME_CHARS for label in labels):
        return raw.decode("ascii")
    return None


class _Cursor:
    """Bounded reader over ``data[pos:end]``: every read checks the bound first."""

    def __init__(self, data: memoryview, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def u8(self) -> int | None:
        if self.pos + 1 > self.end:
            return None
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int | None:
        if self.pos + 2 > self.end:
            return None
        self.pos += 2
        return int(struct.unpack_from("!H", self.data, self.pos - 2)[0])

    def skip(self, n: int) -> bool:
        if self.pos + n > self.end:
            return False
        self.pos += n
        return True


def _server_name(data: memoryview, pos: int, end: int) -> bytes | None:
    """First host_name entry of a server_name extension body, or None."""
    cur = _Cursor(data, pos, end)
    list_len = cur.u16()
    if list_len is None:
        return None
    cur.end = min(end, cur.pos + list_len)
    while True:
        name_type, length = cur.u8(), cur.u16()
        if name_type is None or length is None or cur.pos + length > cur.end:
            return None
        if name_type == 0:
            return bytes(data[cur.pos : cur.pos + length])
        cur.skip(length)


def _alpn(data: memoryview, pos: int, end: int) -> list[str]:
    cur = _Cursor(data, pos, end)
    list_len = cur.u16()
    if list_len is None:
        return []
    cur.end = min(end, cur.pos + list_len)
    out: list[str] = []
    while (length := cur.u8()) is not None and cur.pos + length <= cur.end:
        out.append(bytes(data[cur.pos : cur.pos + length]).decode("ascii", "replace"))
        cur.skip(length)
    return out


def _client_hello_body(
    data: memoryview, pos: int, end: int, fields: list[tuple[str, str]]
) -> tuple[str | None, bool]:
    """Walk the ClientHello after its version field, appending detail fields.

    Returns (valid SNI or None, whether the extensions block ended inside ``end``).
    Every length is checked against ``end`` before it is used, so a hello cut by the
    segment boundary or by a lying length field just ends the walk early.
    """
    cur = _Cursor(data, pos, end)
    if not cur.skip(RANDOM_SIZE):
        return None, False
    sid_len = cur.u8()
    if sid_len is None or not cur.skip(sid_len):
        return None, False
    fields.append(("session id length", str(sid_len)))
    suites_len = cur.u16()
    if suites_len is None or not cur.skip(suites_len):
        return None, False
    fields.append(("cipher suites", str(suites_len // 2)))
    comp_len = cur.u8()
    if comp_len is None or not cur.skip(comp_len):
        return None, False
    ext_total = cur.u16()
    if ext_total is None:
        return None, False

    sni: str | None = None
    names: list[str] = []
    declared_end = cur.pos + ext_total
    ext_end = min(end, declared_end)
    while cur.pos + 4 <= ext_end:
        ext_type, ext_len = struct.unpack_from("!HH", data, cur.pos)
        body, body_end = cur.pos + 4, min(ext_end, cur.pos + 4 + ext_len)
        names.append(EXTENSIONS.get(ext_type, str(ext_type)))
        if ext_type == 0:
            raw = _server_name(data, body, body_end)
            if raw is not None:
                sni = valid_hostname(raw)
                fields.append(("server name", sni if sni is not None else f"<invalid: {raw!r}>"))
        elif ext_type == 16:
            fields.append(("ALPN", ", ".join(_alpn(data, body, body_end))))
        cur.pos = body + ext_len
    if names:
        fields.append(("extensions", ", ".join(names)))
    return sni, declared_end <= end  # the whole extensions block was in this segment


def _first_handshake_record(data: memoryview, start: int, end: int) -> int | None:
    """Offset of the first handshake record in the segment, skipping a few leading
    change-cipher-spec / alert records (a TLS 1.3 client sends CCS before its second
    ClientHello); None if the payload does not look like TLS records."""
    pos = start
    for _ in range(MAX_SKIPPED_RECORDS + 1):
        if end - pos < RECORD.size:
            return None
        record = RECORD.unpack(data, pos)
        if record["record_version"] >> 8 != 3:
            return None
        if record["content_type"] == 22:
            return pos
        if record["content_type"] not in (20, 21):
            return None
        pos += RECORD.size + record["record_length"]
    return None


def decode(pkt: DecodedPacket, data: memoryview, start: int, end: int) -> bool:
    """Decode a ClientHello at the start of ``data[start:end]``; False if it is not one."""
    pos = _first_handshake_record(data, start, end)
    if pos is None or end - pos < RECORD.size + HANDSHAKE.size:
        return False
    record = RECORD.unpack(data, pos)
    hs = HANDSHAKE.unpack(data, pos + RECORD.size)
    if hs["handshake_type"] != 1:
        return False

    extra: list[tuple[str, str]] = []
    record_end = min(end, pos + RECORD.size + record["record_length"])
    body = pos + RECORD.size + HANDSHAKE.size
    sni, complete = _client_hello_body(data, body, record_end, extra)
    if not complete:
        extra.append(("note", "ClientHello continues beyond this segment"))
    values = {**record, **hs, "sni": sni}
    summary = "TLS ClientHello" + (f" sni={sni}" if sni else "")
    layer = Layer(
        "TLS", pos, record_end - pos, values, summary, headers=(RECORD, HANDSHAKE), extra=extra
    )
    pkt.add(layer)
    return True

"""IPFIX (RFC 7011) message encoding: templates and vectorised data records.

Flow records never exist as Python objects here. :func:`build_records` turns the flow
table's columns (keys, i64, u8 matrices of a batch of rows) into two numpy structured
arrays whose big-endian dtypes *are* the wire layout of the v4 and v6 templates, filled
column by column; :class:`MessageEncoder` then cuts them into messages of at most ``mtu``
bytes with one more structured array per message run (header + set header + records), so
encoding a million flows is a few dozen numpy passes, not a million ``struct.pack`` calls.

Biflows follow RFC 5103: the forward direction is the flow's initiator when the TCP
handshake showed it (layout.B_CLIENT), else endpoint A (the smaller (address, port)); the
reverse counters are the enterprise-29305 "reverse" variants of the same elements.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from netscope.flows import layout as L

IPFIX_VERSION = 10
HEADER_LEN = 16
SET_HEADER_LEN = 4
TEMPLATE_SET_ID = 2
OPTIONS_TEMPLATE_SET_ID = 3
TEMPLATE_V4 = 256
TEMPLATE_V6 = 257
TEMPLATE_STATS = 258
REVERSE_PEN = 29305  # RFC 5103 reverse information elements
ENTERPRISE_BIT = 0x8000

# flowEndReason (IANA IE 136)
END_IDLE = 0x01
END_ACTIVE = 0x02
END_FORCED = 0x04  # end of capture / exporter shutdown
END_RESOURCES = 0x05  # evicted: the flow table was full

# (field name in the record dtype, IE id, enterprise (0 = IANA), length, numpy dtype)
Field = tuple[str, int, int, int, str]

_COMMON_TAIL: tuple[Field, ...] = (
    ("src_port", 7, 0, 2, ">u2"),  # sourceTransportPort
    ("dst_port", 11, 0, 2, ">u2"),  # destinationTransportPort
    ("proto", 4, 0, 1, "u1"),  # protocolIdentifier
    ("end_reason", 136, 0, 1, "u1"),  # flowEndReason
    ("tcp_flags", 6, 0, 2, ">u2"),  # tcpControlBits
    ("rev_tcp_flags", 6, REVERSE_PEN, 2, ">u2"),  # reverseTcpControlBits
    ("octets", 1, 0, 8, ">u8"),  # octetDeltaCount (IP bytes)
    ("packets", 2, 0, 8, ">u8"),  # packetDeltaCount
    ("rev_octets", 1, REVERSE_PEN, 8, ">u8"),  # reverseOctetDeltaCount
    ("rev_packets", 2, REVERSE_PEN, 8, ">u8"),  # reversePacketDeltaCount
    ("start_ms", 152, 0, 8, ">u8"),  # flowStartMilliseconds
    ("end_ms", 153, 0, 8, ">u8"),  # flowEndMilliseconds
)
V4_FIELDS: tuple[Field, ...] = (
    ("src", 8, 0, 4, ">u4"),  # sourceIPv4Address
    ("dst", 12, 0, 4, ">u4"),  # destinationIPv4Address
    *_COMMON_TAIL,
)
V6_FIELDS: tuple[Field, ...] = (
    ("src_hi", 27, 0, 16, ">u8"),  # sourceIPv6Address (16 bytes as two big-endian halves)
    ("src_lo", 0, 0, 0, ">u8"),
    ("dst_hi", 28, 0, 16, ">u8"),  # destinationIPv6Address
    ("dst_lo", 0, 0, 0, ">u8"),
    *_COMMON_TAIL,
)
# Options template (exporter statistics): scope observationDomainId (149), then
# exportedMessageTotalCount (41), exportedFlowRecordTotalCount (42),
# exportedOctetTotalCount (40), notSentFlowTotalCount (166).
STATS_SCOPE: tuple[Field, ...] = (("domain", 149, 0, 4, ">u4"),)
STATS_FIELDS: tuple[Field, ...] = (
    ("messages", 41, 0, 8, ">u8"),
    ("records", 42, 0, 8, ">u8"),
    ("octets", 40, 0, 8, ">u8"),
    ("not_sent", 166, 0, 8, ">u8"),
)


def record_dtype(fields: tuple[Field, ...]) -> np.dtype:
    """The packed big-endian dtype of one data record (its itemsize is the record size)."""
    return np.dtype([(name, dt) for name, _ie, _pen, _len, dt in fields])


V4_DTYPE = record_dtype(V4_FIELDS)
V6_DTYPE = record_dtype(V6_FIELDS)
STATS_DTYPE = record_dtype(STATS_SCOPE + STATS_FIELDS)


def _field_specs(fields: tuple[Field, ...]) -> bytes:
    """Field specifiers of a template record (a zero IE id marks the second half of an
    address split in two dtype fields: it has no specifier of its own)."""
    out = b""
    for _name, ie, pen, length, _dt in fields:
        if ie == 0:
            continue
        if pen:
            out += struct.pack("!HHI", ie | ENTERPRISE_BIT, length, pen)
        else:
            out += struct.pack("!HH", ie, length)
    return out


def _count(fields: tuple[Field, ...]) -> int:
    return sum(1 for f in fields if f[1] != 0)


def template_set(with_stats: bool) -> bytes:
    """The template set (v4 and v6 records), plus the options template set if asked."""
    body = b""
    for tid, fields in ((TEMPLATE_V4, V4_FIELDS), (TEMPLATE_V6, V6_FIELDS)):
        body += struct.pack("!HH", tid, _count(fields)) + _field_specs(fields)
    out = struct.pack("!HH", TEMPLATE_SET_ID, SET_HEADER_LEN + len(body)) + body
    if with_stats:
        scope = _count(STATS_SCOPE)
        rec = struct.pack("!HHH", TEMPLATE_STATS, scope + _count(STATS_FIELDS), scope)
        rec += _field_specs(STATS_SCOPE) + _field_specs(STATS_FIELDS)
        out += struct.pack("!HH", OPTIONS_TEMPLATE_SET_ID, SET_HEADER_LEN + len(rec)) + rec
    return out


@dataclass
class RecordArrays:
    """One batch of encoded records: the v4 and v6 arrays (wire layout) in row order."""

    v4: np.ndarray
    v6: np.ndarray

    def __len__(self) -> int:
        return len(self.v4) + len(self.v6)


@dataclass
class Deltas:
    """Per-direction counts (A→B / B→A, canonical orientation) to put in the records."""

    pkts_ab: np.ndarray
    pkts_ba: np.ndarray
    ipb_ab: np.ndarray
    ipb_ba: np.ndarray


def build_records(
    keys: np.ndarray,
    i64: np.ndarray,
    u8: np.ndarray,
    reason: np.ndarray,
    deltas: Deltas,
) -> RecordArrays:
    """Fill the v4/v6 record arrays column-wise from flow-table rows.

    ``keys``/``i64``/``u8`` are the rows' matrices (layout.py), ``reason`` the
    flowEndReason per row and ``deltas`` the counts to report (the exporter subtracts what
    it already exported). The TCP flag unions come from layout.B_TCPF_*.
    """
    meta = keys[:, L.K_META]
    swap = u8[:, L.B_CLIENT] == L.CLIENT_B  # B opened the connection: it is the source
    a_port = ((meta >> np.uint64(48)) & np.uint64(0xFFFF)).astype(np.uint16)
    b_port = ((meta >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.uint16)
    proto = ((meta >> np.uint64(8)) & np.uint64(0xFF)).astype(np.uint8)
    v6 = (meta & np.uint64(0xFF)) == np.uint64(6)
    fl_ab = u8[:, L.B_TCPF_AB].astype(np.uint16)
    fl_ba = u8[:, L.B_TCPF_BA].astype(np.uint16)
    columns = {
        "src_port": np.where(swap, b_port, a_port),
        "dst_port": np.where(swap, a_port, b_port),
        "proto": proto,
        "end_reason": reason.astype(np.uint8),
        "tcp_flags": np.where(swap, fl_ba, fl_ab),
        "rev_tcp_flags": np.where(swap, fl_ab, fl_ba),
        "octets": np.where(swap, deltas.ipb_ba, deltas.ipb_ab),
        "packets": np.where(swap, deltas.pkts_ba, deltas.pkts_ab),
        "rev_octets": np.where(swap, deltas.ipb_ab, deltas.ipb_ba),
        "rev_packets": np.where(swap, deltas.pkts_ab, deltas.pkts_ba),
        "start_ms": i64[:, L.I_FIRST_NS] // 1_000_000,
        "end_ms": i64[:, L.I_LAST_NS] // 1_000_000,
    }
    src_lo = np.where(swap, keys[:, L.K_B_LO], keys[:, L.K_A_LO])
    dst_lo = np.where(swap, keys[:, L.K_A_LO], keys[:, L.K_B_LO])
    idx6 = np.flatnonzero(v6)
    idx4 = np.flatnonzero(~v6)
    out4 = np.zeros(len(idx4), dtype=V4_DTYPE)
    out6 = np.zeros(len(idx6), dtype=V6_DTYPE)
    for name, col in columns.items():
        out4[name] = col[idx4]
        out6[name] = col[idx6]
    out4["src"] = src_lo[idx4]
    out4["dst"] = dst_lo[idx4]
    if len(idx6):
        out6["src_hi"] = np.where(swap, keys[:, L.K_B_HI], keys[:, L.K_A_HI])[idx6]
        out6["dst_hi"] = np.where(swap, keys[:, L.K_A_HI], keys[:, L.K_B_HI])[idx6]
        out6["src_lo"] = src_lo[idx6]
        out6["dst_lo"] = dst_lo[idx6]
    return RecordArrays(out4, out6)


def _header_dtype(rec: np.dtype, per_msg: int) -> np.dtype:
    return np.dtype(
        [
            ("version", ">u2"),
            ("length", ">u2"),
            ("export_time", ">u4"),
            ("sequence", ">u4"),
            ("domain", ">u4"),
            ("set_id", ">u2"),
            ("set_length", ">u2"),
            ("records", rec, (per_msg,)),
        ]
    )


class MessageEncoder:
    """Cuts record arrays into IPFIX messages and keeps the per-domain sequence number.

    The sequence number (RFC 7011 §3.1) counts every data record *encoded* before a
    message, so records that the sender later drops show up at the collector as a gap —
    the loss signal IPFIX defines.
    """

    def __init__(self, domain_id: int, mtu: int, with_stats: bool = True) -> None:
        self.domain_id = domain_id
        self.mtu = mtu
        self.with_stats = with_stats
        self.sequence = 0  # data records encoded so far (mod 2**32 on the wire)
        self.messages = 0
        self.octets = 0
        self._templates = template_set(with_stats)
        if HEADER_LEN + len(self._templates) > mtu:
            raise ValueError(f"mtu {mtu} is too small for the template message")
        for dt in (V4_DTYPE, V6_DTYPE):
            if self.per_message(dt) < 1:
                raise ValueError(f"mtu {mtu} is too small for one {dt.itemsize}-byte record")

    def per_message(self, rec: np.dtype) -> int:
        """Records of ``rec`` that fit in one message of at most ``mtu`` bytes."""
        return (self.mtu - HEADER_LEN - SET_HEADER_LEN) // rec.itemsize

    def _header(self, length: int, export_s: int) -> bytes:
        return struct.pack(
            "!HHIII",
            IPFIX_VERSION,
            length,
            export_s & 0xFFFFFFFF,
            self.sequence & 0xFFFFFFFF,
            self.domain_id,
        )

    def templates(self, export_s: int, count: bool = True) -> bytes:
        """A message carrying the templates (and the options template). ``count=False``
        leaves the totals alone (the TCP sender thread builds one per connection)."""
        msg = self._header(HEADER_LEN + len(self._templates), export_s) + self._templates
        if count:
            self.messages += 1
            self.octets += len(msg)
        return msg

    def stats(self, export_s: int, not_sent: int) -> bytes:
        """An options data record with the exporter's totals so far."""
        rec = np.zeros(1, dtype=STATS_DTYPE)
        rec["domain"] = self.domain_id
        rec["messages"] = self.messages + 1  # this message included
        rec["records"] = self.sequence
        rec["octets"] = self.octets
        rec["not_sent"] = not_sent
        body = struct.pack("!HH", TEMPLATE_STATS, SET_HEADER_LEN + STATS_DTYPE.itemsize)
        body += rec.tobytes()
        msg = self._header(HEADER_LEN + len(body), export_s) + body
        self.sequence += 1
        self.messages += 1
        self.octets += len(msg)
        return msg

    def data(self, records: RecordArrays, export_s: int) -> list[bytes]:
        """All records as messages (full ones built in one structured array per template)."""
        out: list[bytes] = []
        for arr, tid in ((records.v4, TEMPLATE_V4), (records.v6, TEMPLATE_V6)):
            if len(arr):
                out += self._cut(arr, tid, export_s)
        return out

    def _cut(self, recs: np.ndarray, template_id: int, export_s: int) -> list[bytes]:
        k = self.per_message(recs.dtype)
        n = len(recs)
        out: list[bytes] = []
        full = n // k
        for count, start, per in ((full, 0, k), (1 if n % k else 0, full * k, n % k)):
            if count == 0:
                continue
            dt = _header_dtype(recs.dtype, per)
            msgs = np.zeros(count, dtype=dt)
            size = dt.itemsize
            msgs["version"] = IPFIX_VERSION
            msgs["length"] = size
            msgs["export_time"] = export_s & 0xFFFFFFFF
            seqs = self.sequence + np.arange(count, dtype=np.int64) * per
            msgs["sequence"] = (seqs & 0xFFFFFFFF).astype(np.uint32)
            msgs["domain"] = self.domain_id
            msgs["set_id"] = template_id
            msgs["set_length"] = SET_HEADER_LEN + per * recs.dtype.itemsize
            msgs["records"] = recs[start : start + count * per].reshape(count, per)
            buf = msgs.tobytes()
            out += [buf[i : i + size] for i in range(0, len(buf), size)]
            self.sequence += count * per
            self.messages += count
            self.octets += len(buf)
        return out

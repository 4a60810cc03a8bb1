"""Flow rows → Python records (exports, library API, stats lines, dashboard).

This is an edge: it runs per flow at export/report time, never per packet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import numpy as np

from netscope.flows import layout as L
from netscope.flows.community_id import community_ids_from_keys, to_strings
from netscope.flows.schema import CLIENT_NAMES, PROTO_NAMES, TEXT_FIELDS

__all__ = ["FLOW_FIELDS", "PROTO_NAMES", "FlowRecord", "format_ip", "records_from_rows"]


def _text_fields() -> tuple[str, ...]:
    """The JSON field order: the schema's text fields with endpoint columns as objects."""
    out: list[str] = []
    for name in TEXT_FIELDS:
        side = name[: len("endpoint_a")]
        if name.startswith("endpoint_"):
            if side not in out:
                out.append(side)
        else:
            out.append(name)
    return tuple(out)


FLOW_FIELDS = _text_fields()


def format_ip(version: int, hi: int, lo: int) -> str:
    """Text form of an address stored as (hi, lo) big-endian halves."""
    if version == 4:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def format_ts(ts_ns: int) -> float:
    """Seconds since the epoch as a float (microsecond-exact for export)."""
    return round(ts_ns / 1e9, 9)


@dataclass(frozen=True)
class FlowRecord:
    """One flow as users see it (SPEC §6 export fields)."""

    protocol: str
    a_ip: str
    a_port: int
    b_ip: str
    b_port: int
    first_seen_ns: int
    last_seen_ns: int
    packets_a_to_b: int
    packets_b_to_a: int
    bytes_a_to_b: int
    bytes_b_to_a: int
    tcp_state: str | None
    client: str | None
    retransmissions: int
    out_of_order: int
    rtt_last_ms: float | None
    rtt_min_ms: float | None
    rtt_ewma_ms: float | None
    rtt_samples: int
    delta_bytes: int = 0
    delta_packets: int = 0
    community_id: str | None = None

    @property
    def packets_total(self) -> int:
        return self.packets_a_to_b + self.packets_b_to_a

    @property
    def bytes_total(self) -> int:
        return self.bytes_a_to_b + self.bytes_b_to_a

    @property
    def duration_secs(self) -> float:
        return max(0, self.last_seen_ns - self.first_seen_ns) / 1e9

    @property
    def avg_bps(self) -> float:
        d = self.duration_secs
        return self.bytes_total * 8 / d if d > 0 else 0.0

    def label(self) -> str:
        """``tcp 10.0.0.1:1234 <-> 10.0.0.2:80`` (IPv6 addresses bracketed)."""
        a = f"[{self.a_ip}]" if ":" in self.a_ip else self.a_ip
        b = f"[{self.b_ip}]" if ":" in self.b_ip else self.b_ip
        return f"{self.protocol} {a}:{self.a_port} <-> {b}:{self.b_port}"

    def to_dict(self) -> dict[str, Any]:
        """The export object of SPEC §6 (null where unknown; rtt_samples is a count, 0 if none)."""
        return {
            "protocol": self.protocol,
            "endpoint_a": {"ip": self.a_ip, "port": self.a_port},
            "endpoint_b": {"ip": self.b_ip, "port": self.b_port},
            "first_seen": format_ts(self.first_seen_ns),
            "last_seen": format_ts(self.last_seen_ns),
            "duration_secs": round(self.duration_secs, 9),
            "packets_a_to_b": self.packets_a_to_b,
            "packets_b_to_a": self.packets_b_to_a,
            "bytes_a_to_b": self.bytes_a_to_b,
            "bytes_b_to_a": self.bytes_b_to_a,
            "packets_total": self.packets_total,
            "bytes_total": self.bytes_total,
            "avg_bps": round(self.avg_bps, 3),
            "tcp_state": self.tcp_state,
            "client": self.client,
            "retransmissions": self.retransmissions,
            "out_of_order": self.out_of_order,
            "rtt_last_ms": self.rtt_last_ms,
            "rtt_min_ms": self.rtt_min_ms,
            "rtt_ewma_ms": self.rtt_ewma_ms,
            "rtt_samples": self.rtt_samples,
            "community_id": self.community_id,
        }


def records_from_rows(
    keys: np.ndarray,
    i64: np.ndarray,
    f64: np.ndarray | None,
    u8: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    seed: int = 0,
) -> list[FlowRecord]:
    """Build records for ``rows`` (all rows if None) of the given matrices.

    ``f64`` None means scale mode: RTT fields are null and counters (rtt_samples too) 0
    (SPEC §6). ``seed`` is the Community ID seed (computed for all rows in one compiled call).
    """
    if rows is None:
        rows = np.arange(keys.shape[0])
    out: list[FlowRecord] = []
    ids = to_strings(community_ids_from_keys(keys, rows, seed))
    keys_l = keys[rows].tolist()
    i64_l = i64[rows].tolist()
    u8_l = u8[rows].tolist()
    f64_l = f64[rows].tolist() if f64 is not None else None
    for n, (k, iv, bv) in enumerate(zip(keys_l, i64_l, u8_l, strict=True)):
        meta = k[L.K_META]
        version = meta & 0xFF
        proto = (meta >> 8) & 0xFF
        is_tcp = proto == 6
        if f64_l is not None and len(iv) > L.I_RTT_SAMPLES and iv[L.I_RTT_SAMPLES] > 0:
            fv = f64_l[n]
            rtt = (fv[L.F_RTT_LAST], fv[L.F_RTT_MIN], fv[L.F_RTT_EWMA])
        else:
            rtt = (None, None, None)
        deep = len(iv) > L.I_RTT_SAMPLES
        client = CLIENT_NAMES.get(bv[L.B_CLIENT]) if is_tcp else None
        out.append(
            FlowRecord(
                protocol=PROTO_NAMES.get(proto, str(proto)),
                a_ip=format_ip(version, k[L.K_A_HI], k[L.K_A_LO]),
                a_port=(meta >> 48) & 0xFFFF,
                b_ip=format_ip(version, k[L.K_B_HI], k[L.K_B_LO]),
                b_port=(meta >> 32) & 0xFFFF,
                first_seen_ns=iv[L.I_FIRST_NS],
                last_seen_ns=iv[L.I_LAST_NS],
                packets_a_to_b=iv[L.I_PKTS_AB],
                packets_b_to_a=iv[L.I_PKTS_AB + 1],
                bytes_a_to_b=iv[L.I_BYTES_AB],
                bytes_b_to_a=iv[L.I_BYTES_AB + 1],
                tcp_state=L.TCP_STATE_NAMES[bv[L.B_STATE]] if is_tcp else None,
                client=client,
                retransmissions=iv[L.I_RETRANS] if deep else 0,
                out_of_order=iv[L.I_OOO] if deep else 0,
                rtt_last_ms=rtt[0],
                rtt_min_ms=rtt[1],
                rtt_ewma_ms=rtt[2],
                # a count, 0 where nothing was sampled (UDP, scale mode) as in the original
                rtt_samples=iv[L.I_RTT_SAMPLES] if (f64_l is not None and deep and is_tcp) else 0,
                delta_bytes=iv[L.I_DELTA_BYTES],
                delta_packets=iv[L.I_DELTA_PKTS],
                community_id=ids[n],
            )
        )
    return out

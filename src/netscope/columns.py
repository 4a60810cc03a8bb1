"""Decoded per-packet columns (struct-of-arrays) written by the decode kernel.

The Python side owns allocation (here); ``kernels.decode`` only fills arrays.
Addresses are held as two big-endian uint64 halves so that comparing
``(l3, src_hi, src_lo, sport)`` tuples orders endpoints exactly like comparing
(ip version, ip bytes, port), which is how flows pick endpoint A (SPEC §6).
IPv4 addresses live in ``*_lo`` (``*_hi`` = 0).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

# (name, dtype, meaning) — one row per column; the kernel writes every column for
# every packet (zero / -1 where a layer is absent), so stale values never leak.
COLUMN_SPEC: tuple[tuple[str, type, str], ...] = (
    ("err", np.uint8, "ERR_* code; 0 = decoded (constants.py)"),
    ("l3_off", np.int32, "offset of the IP header in the packet, -1 if none"),
    ("vlan_id", np.int16, "outermost VLAN id, -1 if untagged"),
    ("vlan_count", np.uint8, "number of 802.1Q/802.1ad tags"),
    ("ethertype", np.uint16, "EtherType after VLAN tags (or implied by link type)"),
    ("l3", np.uint8, "L3_NONE / L3_IPV4 / L3_IPV6"),
    ("ip_csum_ok", np.uint8, "1 if the IPv4 header checksum verifies (always 1 for IPv6)"),
    ("ttl", np.uint8, "IPv4 TTL / IPv6 hop limit"),
    ("src_hi", np.uint64, "source address, high 64 bits (0 for IPv4)"),
    ("src_lo", np.uint64, "source address, low 64 bits (IPv4 address as integer)"),
    ("dst_hi", np.uint64, "destination address, high 64 bits"),
    ("dst_lo", np.uint64, "destination address, low 64 bits"),
    ("proto", np.uint8, "upper-layer protocol after the IPv6 extension walk"),
    ("frag", np.uint8, "FRAG_* bits"),
    ("l4_off", np.int32, "offset of the transport header, -1 if absent"),
    ("sport", np.uint16, "TCP/UDP source port (0 otherwise)"),
    ("dport", np.uint16, "TCP/UDP destination port (0 otherwise)"),
    ("tcp_flags", np.uint8, "TCP flag byte (FIN..CWR)"),
    ("seq", np.uint32, "TCP sequence number"),
    ("ack", np.uint32, "TCP acknowledgement number"),
    ("win", np.uint16, "TCP window"),
    ("icmp_type", np.uint8, "ICMP/ICMPv6 type"),
    ("icmp_code", np.uint8, "ICMP/ICMPv6 code"),
    ("payload_off", np.int32, "offset of the transport payload, -1 if absent"),
    ("payload_len", np.int32, "transport payload length per the IP length fields"),
)


@dataclass
class DecodedColumns:
    """Output arrays of ``decode_batch``; see COLUMN_SPEC for each column's meaning."""

    err: npt.NDArray[np.uint8]
    l3_off: npt.NDArray[np.int32]
    vlan_id: npt.NDArray[np.int16]
    vlan_count: npt.NDArray[np.uint8]
    ethertype: npt.NDArray[np.uint16]
    l3: npt.NDArray[np.uint8]
    ip_csum_ok: npt.NDArray[np.uint8]
    ttl: npt.NDArray[np.uint8]
    src_hi: npt.NDArray[np.uint64]
    src_lo: npt.NDArray[np.uint64]
    dst_hi: npt.NDArray[np.uint64]
    dst_lo: npt.NDArray[np.uint64]
    proto: npt.NDArray[np.uint8]
    frag: npt.NDArray[np.uint8]
    l4_off: npt.NDArray[np.int32]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    tcp_flags: npt.NDArray[np.uint8]
    seq: npt.NDArray[np.uint32]
    ack: npt.NDArray[np.uint32]
    win: npt.NDArray[np.uint16]
    icmp_type: npt.NDArray[np.uint8]
    icmp_code: npt.NDArray[np.uint8]
    payload_off: npt.NDArray[np.int32]
    payload_len: npt.NDArray[np.int32]

    @classmethod
    def allocate(cls, capacity: int) -> DecodedColumns:
        """Zeroed columns for up to ``capacity`` packets."""
        return cls(**{name: np.zeros(capacity, dtype=dt) for name, dt, _ in COLUMN_SPEC})

    @property
    def capacity(self) -> int:
        return int(self.err.shape[0])

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Columns in COLUMN_SPEC order (the kernel's positional argument order)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def row(self, i: int) -> dict[str, int]:
        """One packet's columns as Python ints (tests and debugging, not the hot path)."""
        return {f.name: int(getattr(self, f.name)[i]) for f in fields(self)}

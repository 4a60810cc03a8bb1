"""Community ID v1 (https://github.com/corelight/community-id-spec) for flow exports.

A Community ID is a hash of a flow's 5-tuple that other tools (Zeek, Suricata, tshark,
Elastic) compute the same way, so flows from different tools can be joined on it. The
hash input is ``seed(2) | src addr | dst addr | proto(1) | 0(1) | src port(2) | dst port(2)``
with the smaller (address, port) endpoint first, SHA-1'd and base64'd behind ``"1:"``.

ICMP and ICMPv6 have no ports: the type takes the source port's place and, for
request/reply types (echo, timestamp, router/neighbor solicitation, ...), the paired type
the destination port's; other ("one-way") types put the code there and keep the given
direction instead of ordering the endpoints. Callers pass ``src_port=type``,
``dst_port=code`` for ICMP rows; this module applies the mapping.

Everything here is vectorised: one compiled loop (``kernels.community_id``) hashes all
rows, and the results come back as a fixed-width ``S30`` numpy array, which converts to
an Arrow string column without a per-flow loop (``to_arrow_array``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np

from netscope.flows import layout as L

ID_WIDTH = 30
DEFAULT_SEED = 0


def _check_seed(seed: int) -> int:
    if not 0 <= int(seed) <= 0xFFFF:
        raise ValueError(f"community ID seed must be 0..65535, got {seed}")
    return int(seed)


def community_ids(
    version: np.ndarray,
    src_hi: np.ndarray,
    src_lo: np.ndarray,
    dst_hi: np.ndarray,
    dst_lo: np.ndarray,
    proto: np.ndarray,
    src_port: np.ndarray,
    dst_port: np.ndarray,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """Community IDs of many flows: ``S30`` array of ``b"1:..."``.

    Addresses are (hi, lo) 64-bit big-endian halves as in the flow table (an IPv4
    address is the low 32 bits of ``lo``); ``version`` is 4 or 6 per row. For ICMP
    (proto 1) and ICMPv6 (58) pass the type as ``src_port`` and the code as ``dst_port``.
    """
    from netscope.kernels import community_id as K

    n = int(np.shape(version)[0])
    out = np.zeros((n, ID_WIDTH), dtype=np.uint8)
    if n:

        def i64(a: Any) -> np.ndarray:
            arr = np.ascontiguousarray(a)
            if arr.dtype == np.uint64:
                return arr.view(np.int64)
            return arr.astype(np.int64, copy=False)

        K.community_ids(
            np.ascontiguousarray(version, dtype=np.uint8),
            i64(src_hi),
            i64(src_lo),
            i64(dst_hi),
            i64(dst_lo),
            np.ascontiguousarray(proto, dtype=np.uint8),
            i64(src_port),
            i64(dst_port),
            _check_seed(seed),
            K.ICMP_PAIRS,
            K.B64_ALPHABET,
            np.zeros(K.BLOCK, dtype=np.uint8),
            np.zeros(K.SCHEDULE, dtype=np.int64),
            np.zeros(20, dtype=np.uint8),
            out,
        )
    return out.view(f"S{ID_WIDTH}").reshape(n)


def community_ids_from_keys(
    keys: np.ndarray, rows: np.ndarray | None = None, seed: int = DEFAULT_SEED
) -> np.ndarray:
    """Community IDs of flow-table rows (``keys`` is the table's uint64 key matrix)."""
    k = keys if rows is None else keys[rows]
    meta = k[:, L.K_META]
    return community_ids(
        (meta & 0xFF).astype(np.uint8),
        k[:, L.K_A_HI],
        k[:, L.K_A_LO],
        k[:, L.K_B_HI],
        k[:, L.K_B_LO],
        ((meta >> np.uint64(8)) & np.uint64(0xFF)).astype(np.uint8),
        ((meta >> np.uint64(48)) & np.uint64(0xFFFF)).astype(np.int64),
        ((meta >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.int64),
        seed,
    )


def _halves(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, int]:
    v = int(ip)
    return v >> 64, v & 0xFFFFFFFFFFFFFFFF


def community_id(
    src_ip: str, dst_ip: str, proto: int, src_port: int, dst_port: int, seed: int = 0
) -> str:
    """One flow's Community ID (convenience for tests and single lookups).

    ICMP/ICMPv6: ``src_port`` is the type and ``dst_port`` the code.
    """
    s = ipaddress.ip_address(src_ip)
    d = ipaddress.ip_address(dst_ip)
    if s.version != d.version:
        raise ValueError("source and destination address families differ")
    s_hi, s_lo = _halves(s)
    d_hi, d_lo = _halves(d)
    u64 = np.uint64
    ids = community_ids(
        np.array([s.version], dtype=np.uint8),
        np.array([s_hi], dtype=u64),
        np.array([s_lo], dtype=u64),
        np.array([d_hi], dtype=u64),
        np.array([d_lo], dtype=u64),
        np.array([proto], dtype=np.uint8),
        np.array([src_port], dtype=np.int64),
        np.array([dst_port], dtype=np.int64),
        seed,
    )
    return str(ids[0].decode("ascii"))


def to_strings(ids: np.ndarray) -> list[str]:
    """``S30`` ids as Python strings (JSON/CSV edge)."""
    return list(ids.astype(f"U{ID_WIDTH}").tolist())


def to_arrow_array(ids: np.ndarray) -> Any:
    """``S30`` ids as a ``pyarrow.string()`` array, sharing the bytes (no per-row work)."""
    import pyarrow as pa

    n = int(ids.shape[0])
    data = np.ascontiguousarray(ids).view(np.uint8)
    offsets = np.arange(0, (n + 1) * ID_WIDTH, ID_WIDTH, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])

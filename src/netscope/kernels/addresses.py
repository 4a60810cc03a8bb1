"""Address text for many flows in one compiled loop (the Arrow export's address columns).

IPv4 is the dotted quad. IPv6 follows RFC 5952, exactly as Python's ``ipaddress`` prints
it (so Arrow and JSON agree): lowercase hex without leading zeros, the longest run of two
or more zero groups (the first, on a tie) written ``::``. ``mapped_dotted`` selects how
IPv4-mapped addresses (``::ffff:a.b.c.d``) look: Python 3.13 prints the dotted form,
earlier versions hex groups; the caller passes what the running ``ipaddress`` does.
"""

from __future__ import annotations

import numpy as np

from netscope.kernels._jit import inline_helper, kernel

IPV4_MAX = 15  # "255.255.255.255"
IPV6_MAX = 39  # eight groups of four hex digits and seven colons


@inline_helper
def _dotted(v: int, out: np.ndarray, at: int) -> int:
    for k in range(4):
        octet = (v >> (24 - 8 * k)) & 0xFF
        if octet >= 100:
            out[at] = 48 + octet // 100
            out[at + 1] = 48 + (octet // 10) % 10
            out[at + 2] = 48 + octet % 10
            at += 3
        elif octet >= 10:
            out[at] = 48 + octet // 10
            out[at + 1] = 48 + octet % 10
            at += 2
        else:
            out[at] = 48 + octet
            at += 1
        if k < 3:
            out[at] = 46  # "."
            at += 1
    return at


@inline_helper
def _hex_group(g: int, out: np.ndarray, at: int) -> int:
    started = False
    for shift in (12, 8, 4, 0):
        d = (g >> shift) & 0xF
        if d != 0 or started or shift == 0:
            out[at] = 48 + d if d < 10 else 87 + d  # 0-9, a-f
            at += 1
            started = True
    return at


@kernel
def write_address_text(
    version: np.ndarray,  # uint8[n]
    hi: np.ndarray,  # int64[n]: the flow table's uint64 halves, viewed
    lo: np.ndarray,  # int64[n]: IPv4 in the low 32 bits
    mapped_dotted: bool,
    groups: np.ndarray,  # int64[8] scratch
    out_offsets: np.ndarray,  # int32[n + 1]
    out_data: np.ndarray,  # uint8: IPV4_MAX per IPv4 row + IPV6_MAX per IPv6 row
) -> None:
    """Fill an Arrow string array's offsets and data buffers."""
    at = 0
    out_offsets[0] = 0
    for i in range(version.shape[0]):
        if version[i] == 4:
            at = _dotted(lo[i] & 0xFFFFFFFF, out_data, at)
            out_offsets[i + 1] = at
            continue
        h = hi[i]
        v = lo[i]
        if mapped_dotted and h == 0 and ((v >> 32) & 0xFFFFFFFF) == 0xFFFF:
            for c in (58, 58, 102, 102, 102, 102, 58):  # "::ffff:"
                out_data[at] = c
                at += 1
            at = _dotted(v & 0xFFFFFFFF, out_data, at)
            out_offsets[i + 1] = at
            continue
        for k in range(4):
            groups[k] = (h >> (48 - 16 * k)) & 0xFFFF
            groups[4 + k] = (v >> (48 - 16 * k)) & 0xFFFF
        best_start = -1
        best_len = 0
        run_start = -1
        for k in range(8):
            if groups[k] == 0:
                if run_start < 0:
                    run_start = k
                if k - run_start + 1 > best_len:
                    best_len = k - run_start + 1
                    best_start = run_start
            else:
                run_start = -1
        if best_len < 2:
            best_start = -1
        k = 0
        while k < 8:
            if k == best_start:
                out_data[at] = 58
                at += 1
                if k == 0:
                    out_data[at] = 58
                    at += 1
                k += best_len
                if k == 8:
                    pass  # the "::" ends the text
                continue
            at = _hex_group(groups[k], out_data, at)
            if k < 7:
                out_data[at] = 58
                at += 1
            k += 1
        out_offsets[i + 1] = at

"""Address text for many flows in one compiled loop (the Arrow export's address columns).

IPv4 dotted quads are written digit by digit; IPv6 rows copy text that the caller
formatted once per distinct address (``flows.addresses``), since IPv6's compressed form
has more rules than belong in a kernel and distinct IPv6 addresses are few.
"""

from __future__ import annotations

import numpy as np

from netscope.kernels._jit import kernel


@kernel
def write_address_text(
    version: np.ndarray,  # uint8[n]
    lo: np.ndarray,  # int64[n]: IPv4 address in the low 32 bits
    v6_index: np.ndarray,  # int64[n]: row of the IPv6 text table (IPv6 rows only)
    v6_offsets: np.ndarray,  # int64[m + 1]
    v6_data: np.ndarray,  # uint8: concatenated IPv6 texts
    out_offsets: np.ndarray,  # int32[n + 1]
    out_data: np.ndarray,  # uint8, large enough (15 per IPv4 row + the IPv6 texts)
) -> None:
    """Fill an Arrow string array's offsets and data buffers."""
    at = 0
    out_offsets[0] = 0
    for i in range(version.shape[0]):
        if version[i] == 4:
            v = lo[i]
            for k in range(4):
                octet = (v >> (24 - 8 * k)) & 0xFF
                if octet >= 100:
                    out_data[at] = 48 + octet // 100
                    out_data[at + 1] = 48 + (octet // 10) % 10
                    out_data[at + 2] = 48 + octet % 10
                    at += 3
                elif octet >= 10:
                    out_data[at] = 48 + octet // 10
                    out_data[at + 1] = 48 + octet % 10
                    at += 2
                else:
                    out_data[at] = 48 + octet
                    at += 1
                if k < 3:
                    out_data[at] = 46  # "."
                    at += 1
        else:
            j = v6_index[i]
            for p in range(v6_offsets[j], v6_offsets[j + 1]):
                out_data[at] = v6_data[p]
                at += 1
        out_offsets[i + 1] = at

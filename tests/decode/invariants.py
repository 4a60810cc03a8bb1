"""Properties every decoded packet must have, whatever the input (shared by tests)."""

from __future__ import annotations

import numpy as np

from netscope.columns import COLUMN_SPEC
from netscope.constants import ERROR_NAMES
from netscope.decode import DecodedPacket, decode_packet
from netscope.display import format_detail, format_summary

_RANGES = {
    name: (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)) for name, dtype, _ in COLUMN_SPEC
}


def check_packet(data: bytes, linktype: int, index: int = 1, ts_ns: int = 0) -> DecodedPacket:
    """Decode, render both views, and check the result's invariants; return the packet."""
    pkt = decode_packet(data, linktype)
    assert pkt.error in ERROR_NAMES
    cols = pkt.columns()
    assert list(cols) == list(_RANGES)
    for name, value in cols.items():
        low, high = _RANGES[name]
        assert low <= value <= high, (name, value)
    for off in ("l3_off", "l4_off"):
        assert -1 <= cols[off] <= len(data)
    assert cols["payload_off"] >= -1 and cols["payload_len"] >= 0
    for layer in pkt.layers:
        assert isinstance(layer.name, str) and layer.name
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in layer.fields)
    line = format_summary(index, ts_ns, linktype, pkt)
    assert "\n" not in line
    format_detail(index, ts_ns, linktype, len(data), len(data), pkt, data)
    return pkt

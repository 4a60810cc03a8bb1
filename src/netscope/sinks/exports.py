"""Flow-table exports at exit: JSON (pretty array) and CSV (flattened columns).

Both are sorted by bytes_total descending (SPEC §6) and written atomically.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from typing import Any

from netscope.flows.records import FlowRecord
from netscope.sinks.atomic import atomic_text_file

CSV_COLUMNS = (
    "protocol",
    "endpoint_a_ip",
    "endpoint_a_port",
    "endpoint_b_ip",
    "endpoint_b_port",
    "first_seen",
    "last_seen",
    "duration_secs",
    "packets_a_to_b",
    "packets_b_to_a",
    "bytes_a_to_b",
    "bytes_b_to_a",
    "packets_total",
    "bytes_total",
    "avg_bps",
    "tcp_state",
    "client",
    "retransmissions",
    "out_of_order",
    "rtt_last_ms",
    "rtt_min_ms",
    "rtt_ewma_ms",
    "rtt_samples",
)


def sorted_for_export(records: Sequence[FlowRecord]) -> list[FlowRecord]:
    """Largest flows first; ties broken by endpoints so output is deterministic."""
    return sorted(
        records,
        key=lambda r: (-r.bytes_total, r.protocol, r.a_ip, r.a_port, r.b_ip, r.b_port),
    )


def flatten(flow: dict[str, Any]) -> dict[str, Any]:
    """SPEC §6 flow object → one CSV row (endpoint objects become _ip/_port columns)."""
    row = {k: v for k, v in flow.items() if k not in ("endpoint_a", "endpoint_b")}
    for side in ("a", "b"):
        endpoint = flow[f"endpoint_{side}"]
        row[f"endpoint_{side}_ip"] = endpoint["ip"]
        row[f"endpoint_{side}_port"] = endpoint["port"]
    return row


def write_json(path: str | os.PathLike[str], records: Sequence[FlowRecord]) -> int:
    """Write the pretty JSON array; returns the number of flows written."""
    flows = [r.to_dict() for r in sorted_for_export(records)]
    with atomic_text_file(path) as out:
        json.dump(flows, out, indent=2)
        out.write("\n")
    return len(flows)


def write_csv(path: str | os.PathLike[str], records: Sequence[FlowRecord]) -> int:
    """Write the CSV with a header row (csv module; empty cell = null)."""
    with atomic_text_file(path, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        rows = 0
        for rec in sorted_for_export(records):
            writer.writerow(flatten(rec.to_dict()))
            rows += 1
    return rows

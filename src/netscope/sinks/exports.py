"""Flow-table exports at exit: JSON (pretty array) and CSV (flattened columns).

Both are sorted by bytes_total descending (SPEC §6) and written atomically.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from typing import Any

from netscope.flows.records import FLOW_FIELDS, FlowRecord
from netscope.sinks.atomic import atomic_text_file


def _csv_columns() -> tuple[str, ...]:
    """FLOW_FIELDS with each endpoint object flattened into ``_ip`` / ``_port`` columns."""
    columns: list[str] = []
    for name in FLOW_FIELDS:
        if name.startswith("endpoint_"):
            columns += [f"{name}_ip", f"{name}_port"]
        else:
            columns.append(name)
    return tuple(columns)


CSV_COLUMNS = _csv_columns()


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

"""Flow-table exports at exit: JSON (pretty array) and CSV (flattened columns).

Both are sorted by bytes_total descending (SPEC §6) and written atomically. CSV floats
are fixed-precision as the original NetScope wrote them — seconds (first_seen,
last_seen, duration_secs) with 6 decimals, avg_bps and the RTT milliseconds with 3 — so
a pipeline that diffs or parses the columns as text sees the same shape; an empty cell
is null.
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


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def csv_row(rec: FlowRecord) -> list[Any]:
    """One CSV row in CSV_COLUMNS order, floats in the original's fixed precision.

    Built straight from the record (not via the JSON dict): it runs once per flow, and a
    100k-flow export should cost what the formatting costs. Timestamps are formatted from
    the integer nanoseconds, so ``.6f`` never shows a binary-rounding artefact.
    """
    return [
        rec.protocol,
        rec.a_ip,
        rec.a_port,
        rec.b_ip,
        rec.b_port,
        _seconds_text(rec.first_seen_ns),
        _seconds_text(rec.last_seen_ns),
        _seconds_text(max(0, rec.last_seen_ns - rec.first_seen_ns)),
        rec.packets_a_to_b,
        rec.packets_b_to_a,
        rec.bytes_a_to_b,
        rec.bytes_b_to_a,
        rec.packets_total,
        rec.bytes_total,
        f"{rec.avg_bps:.3f}",
        rec.tcp_state or "",
        rec.client or "",
        rec.retransmissions,
        rec.out_of_order,
        _ms(rec.rtt_last_ms),
        _ms(rec.rtt_min_ms),
        _ms(rec.rtt_ewma_ms),
        rec.rtt_samples,
        rec.community_id,  # None (no flow key) is written as an empty cell
    ]


def _seconds_text(ns: int) -> str:
    """Nanoseconds as seconds with 6 decimals, rounded half-up at the microsecond."""
    us = (ns + 500) // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def write_json(path: str | os.PathLike[str], records: Sequence[FlowRecord]) -> int:
    """Write the pretty JSON array; returns the number of flows written."""
    flows = [r.to_dict() for r in sorted_for_export(records)]
    with atomic_text_file(path) as out:
        json.dump(flows, out, indent=2)
        out.write("\n")
    return len(flows)


def write_csv(path: str | os.PathLike[str], records: Sequence[FlowRecord]) -> int:
    """Write the CSV with a header row (csv module; empty cell = null)."""
    ordered = sorted_for_export(records)
    with atomic_text_file(path, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(rec) for rec in ordered)
    return len(ordered)

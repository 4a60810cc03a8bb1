"""The Zeek connection model against Zeek's own regression-test baselines.

``../shared/zeek-conn`` holds traces from Zeek's test suite with the conn.log Zeek's tests
expect (README.md there). Every expected record must be matched by one of ours with the
same proto and orig/resp 5-tuple and equal conn_state, history, packets, IP bytes, payload
bytes and missed bytes, and a duration within 1 µs. Records that differ for a documented
reason (docs/exports.md, "Where conn.log differs from Zeek") are listed in KNOWN with that
reason, and the test pins that they still differ exactly there — a fix shows up as a
failure asking to remove the entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from netscope.analysis import Analyzer
from netscope.flows.zeek import ZeekConnTracker
from netscope.sinks.zeek_conn import conn_columns
from netscope.sources import open_capture_file
from skip_policy import LEDGER

ORACLE = Path(__file__).resolve().parents[2].parent / "shared" / "zeek-conn"
TUPLE = ("proto", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")
COMPARED = (
    "conn_state",
    "history",
    "orig_pkts",
    "resp_pkts",
    "orig_ip_bytes",
    "resp_ip_bytes",
    "orig_bytes",
    "resp_bytes",
    "missed_bytes",
)
LOCAL = ("local_orig", "local_resp")

CHECKSUM = (
    "Zeek drops TCP segments with a bad checksum (history C/c) unless run with -C; "
    "NetScope does not verify TCP checksums, so it keeps them"
)
GRIDFTP = (
    "Zeek's gridftp script stops analysing a GridFTP data channel once detected "
    "(skip_further_processing), freezing its state at S1; NetScope has no analyzers"
)
LOCAL_NETS = (
    "the Zeek test redefines Site::local_nets (a public responder is local there); "
    "NetScope uses Zeek's default, the private address space"
)
# (trace file, orig_p, resp_p, occurrence) -> (fields that differ, reason)
KNOWN: dict[tuple[str, int, int, int], tuple[tuple[str, ...], str]] = {
    ("chksums-localhost-bad-chksum.pcap", 53246, 80, 0): (("unmatched",), CHECKSUM),
    ("chksums-localhost-bad-chksum.pcap", 80, 53246, 0): (("unmatched",), CHECKSUM),
    ("http-connect-with-smtp.pcap", 3378, 8240, 0): (("local_resp",), LOCAL_NETS),
    ("globus-url-copy.pcap", 35391, 55968, 0): (
        (
            "conn_state",
            "history",
            "orig_pkts",
            "resp_pkts",
            "orig_ip_bytes",
            "resp_ip_bytes",
            "orig_bytes",
            "resp_bytes",
            "duration",
        ),
        GRIDFTP,
    ),
}


def _manifest() -> list[dict[str, Any]]:
    path = ORACLE / "manifest.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text())["triples"])


def conn_records(trace: Path) -> list[dict[str, Any]]:
    """Our conn.log records for ``trace`` (Zeek's default timers, no flow timeout)."""
    tracker = ZeekConnTracker()
    records: list[dict[str, Any]] = []

    def collect(batch: Any) -> None:
        cols = conn_columns(batch)
        n = cols.pop("_n")
        records.extend({name: cols[name][k] for name in cols} for k in range(n))

    tracker.on_finished = collect
    analyzer = Analyzer()
    source = open_capture_file(trace)
    try:
        for batch in source.batches():
            tracker(batch, analyzer.process(batch))
    finally:
        source.close()
    tracker.finish()
    return records


def _differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    diff = [f for f in COMPARED if ours[f] != theirs[f]]
    # local_*: Zeek's private address space is local (some baselines lack the columns)
    diff += [f for f in LOCAL if f in theirs and ours[f] != theirs[f]]
    if (
        (theirs["duration"] is None) != (ours["duration"] is None)
        or theirs["duration"] is not None
        and abs(float(ours["duration"]) - theirs["duration"]) > (1e-6 + 1e-9)
    ):
        diff.append("duration")
    return diff


@pytest.mark.parametrize("triple", _manifest(), ids=lambda t: t["test_id"])
def test_every_record_matches_zeek(triple: dict[str, Any]) -> None:
    trace = ORACLE / triple["trace"]
    expected = json.loads((ORACLE / triple["expected"]).read_text())["records"]
    LEDGER.note("zeek conn.log")
    ours = conn_records(trace)
    name = trace.name
    seen: dict[tuple[int, int], int] = {}
    used: set[int] = set()
    problems = []
    for theirs in expected:
        pair = (theirs["id.orig_p"], theirs["id.resp_p"])
        occurrence = seen.get(pair, 0)
        seen[pair] = occurrence + 1
        candidates = [
            k
            for k, rec in enumerate(ours)
            if k not in used and all(rec[f] == theirs[f] for f in TUPLE)
        ]
        exact = [k for k in candidates if not _differences(ours[k], theirs)]
        known = KNOWN.get((name, *pair, occurrence))
        if exact:
            used.add(exact[0])
            if known is not None:
                problems.append(f"{pair}: now matches Zeek, remove it from KNOWN")
            continue
        if known is None:
            got = [{f: ours[k][f] for f in (*COMPARED, "duration")} for k in candidates]
            problems.append(f"{pair}: expected {theirs}, ours {got}")
            continue
        fields, _reason = known
        if fields == ("unmatched",):
            continue
        diffs = [(k, _differences(ours[k], theirs)) for k in candidates]
        pinned = [k for k, d in diffs if sorted(d) == sorted(fields)]
        if not pinned:
            problems.append(f"{pair}: differs in {diffs}, KNOWN says {fields}")
        else:
            used.add(pinned[0])
    assert not problems, "\n".join(problems)

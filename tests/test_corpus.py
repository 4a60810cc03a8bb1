"""Every public capture in the shared corpus, checked against tshark's oracle.

These are real files written by other tools (fuzzed, truncated, odd link types), so they find
what hand-made files miss. Each check is one the oracle can answer exactly: frame count, link
types, byte totals, first/last timestamps, truncation, unreadability. The per-frame columns of
the oracle (IPv4/IPv6/VLAN and transport frames, SYN/SYN-ACK/RST, DNS, fragments, short and
malformed frames) are compared in tests/test_corpus_oracle_fields.py, where tshark's notion of a
"TCP frame" (reassembly, tunnels, ICMP-quoted headers) is mapped onto ours frame by frame.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from netscope.analysis import Analyzer
from netscope.errors import CaptureError
from netscope.sources import open_capture_file

UNREADABLE = "libpcap-pcap-invalid-version-1.pcap"

# A handful of small files covering each reader path and link-layer family; the CLI checks over
# the whole corpus are marked slow (one process per file), these run every time.
REPRESENTATIVE = [
    "dpkt-http.pcap",  # pcap µs LE, Ethernet
    "pcpp-nanosecs_big_endian.pcap",  # pcap ns BE
    "pcpp-pcapng-example.pcapng",  # pcapng, 2 interfaces (Ethernet + SLL)
    "ndpi-fuzz-2021-10-13.pcap",  # truncated
    "zeek-radiotap.pcap",  # unsupported link type
    UNREADABLE,
]


def _ns(text: str) -> int:
    """tshark's ``sec.nnnnnnnnn`` epoch text as integer nanoseconds."""
    return int(Decimal(text) * 1_000_000_000)


def analyse(path: Path) -> tuple[Analyzer, Any, list[int]]:
    """Read every batch through the Analyzer (the CLI's --quiet path, minus printing).

    Returns the analyzer, the source report and the timestamps of the first and last packet.
    """
    reader = open_capture_file(path)
    analyzer = Analyzer()
    edge_ts: list[int] = []
    try:
        for batch in reader.batches():
            analyzer.process(batch)
            if not edge_ts:
                edge_ts.append(int(batch.ts_ns[0]))
            last = int(batch.ts_ns[batch.count - 1])
        if edge_ts:
            edge_ts.append(last)
    finally:
        reader.close()
    return analyzer, reader.report, edge_ts


def test_corpus_read(
    corpus_capture: Path,
    oracle: Callable[[Path], dict[str, Any]],
    with_timeout: Callable[..., Any],
    warm_kernels: None,
) -> None:
    """Reading never raises or hangs, and agrees with tshark on what it can count."""
    exp = oracle(corpus_capture)
    if not exp["readable"]:
        with pytest.raises(CaptureError) as info:
            with_timeout(lambda: analyse(corpus_capture))
        assert "\n" not in info.value.one_line()
        return

    analyzer, report, edge_ts = with_timeout(lambda: analyse(corpus_capture))
    counters = analyzer.counters
    assert counters.packets == exp["packets"]
    assert report.packets_read == exp["packets"]
    assert sorted(report.link_types) == sorted(exp["link_types"])
    assert counters.bytes_wire == exp["bytes_wire_total"]
    assert counters.bytes_captured == exp["bytes_captured_total"]
    # Packets of a link type we do not decode are counted apart, never as parse errors.
    unsupported = set(exp["link_types"]) - _supported()
    assert set(counters.unsupported_linktypes) == unsupported
    if not unsupported:
        assert counters.unsupported_packets == 0

    if exp["read_complete"]:
        assert not report.truncated, report.warning
        assert report.stop_reason is None
    else:
        assert report.truncated
        assert report.stop_reason is not None
        assert re.search(rf"\b{exp['packets']} packets\b", report.stop_reason), report.warning
    # Timestamps beyond int64 ns (pcpp-pcapng-example) are clamped and warned about.
    out_of_range = not all(0 <= _ns(exp[k]) < 2**63 - 1 for k in ("earliest_ts", "latest_ts"))
    assert (report.timestamps_clamped > 0) == out_of_range, report.warning
    assert (report.timestamp_note is not None) == out_of_range

    if exp["packets"] and _timestamps_comparable(exp):
        assert edge_ts == [_ns(exp["first_ts"]), _ns(exp["last_ts"])]


def _timestamps_comparable(exp: dict[str, Any]) -> bool:
    """False where tshark's text is not a time we can hold: a sub-second field out of range
    (tshark prints it literally) or a pcapng tick count near 2**64 (pcpp-pcapng-example has one:
    tshark reads it unsigned, year ~586000; int64 nanoseconds stop in 2262)."""
    if any("non-canonical" in w for w in exp["warnings"]):
        return False
    return all(0 <= _ns(exp[key]) < 2**63 for key in ("first_ts", "last_ts"))


def _supported() -> set[int]:
    from netscope.constants import SUPPORTED_LINKTYPES

    return set(SUPPORTED_LINKTYPES)


def test_corpus_covers_what_the_manifest_promises(corpus: Callable[[str], Path]) -> None:
    """Guard against a silently shrunken corpus (an empty parametrization passes vacuously)."""
    corpus(UNREADABLE)
    directory = corpus(UNREADABLE).parent
    captures = [p for p in directory.iterdir() if p.suffix in (".pcap", ".pcapng")]
    assert len(captures) >= 70
    for p in captures:
        assert Path(f"{p}.expected.json").is_file(), p.name


# ------------------------------------------------------------------ through the CLI


def _check_quiet_run(path: Path, exp: dict[str, Any], cli: Callable[..., Any]) -> None:
    code, out, err = cli(["--read-pcap", str(path), "--quiet"])
    if not exp["readable"]:
        assert code == 1, (out, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert "Traceback" not in err
        return
    assert code == 0, err
    assert "Traceback" not in err
    assert not any(line.startswith("#") for line in out.splitlines())
    match = re.search(r"^  Packets captured:\s+(\d+)$", out, re.MULTILINE)
    assert match, out
    assert int(match.group(1)) == exp["packets"]
    if not exp["read_complete"]:
        assert re.search(rf"warning: .*\b{exp['packets']} packets\b", err), err


@pytest.mark.slow
def test_corpus_cli_quiet(
    corpus_capture: Path,
    oracle: Callable[[Path], dict[str, Any]],
    cli: Callable[..., Any],
) -> None:
    """``netscope --read-pcap F --quiet``: exit 0 with the right count (1 if unreadable)."""
    _check_quiet_run(corpus_capture, oracle(corpus_capture), cli)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_cli_quiet_representative(
    name: str,
    corpus: Callable[[str], Path],
    oracle: Callable[[Path], dict[str, Any]],
    cli: Callable[..., Any],
) -> None:
    path = corpus(name)
    _check_quiet_run(path, oracle(path), cli)


@pytest.mark.parametrize(
    "name",
    [
        "dpkt-http.pcap",
        "pcpp-pcapng-example.pcapng",
        "pcpp-sll2.pcap",
        "suricata-decode-too-small.pcap",
        "zeek-radiotap.pcap",
        "pcpp-VlanPackets.pcap",
    ],
)
def test_cli_prints_one_line_per_packet(
    name: str,
    corpus: Callable[[str], Path],
    oracle: Callable[[Path], dict[str, Any]],
    cli: Callable[..., Any],
) -> None:
    """Without --quiet every packet gets exactly one ``#N`` line, numbered 1..N in order,
    including malformed and unsupported-link-type packets."""
    path = corpus(name)
    n = oracle(path)["packets"]
    code, out, err = cli(["--read-pcap", str(path)])
    assert code == 0, err
    marks = [line for line in out.splitlines() if line.startswith("#")]
    assert len(marks) == n
    numbers = [int(re.match(r"#(\d+)", line).group(1)) for line in marks]  # type: ignore[union-attr]
    assert numbers == list(range(1, n + 1))

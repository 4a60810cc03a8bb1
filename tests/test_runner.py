"""``netscope --read-pcap`` end to end, in a real process: what users and scripts see.

Each test runs ``python -m netscope`` (see ``conftest.run_cli``) and checks the contract of
SPEC §4/§6: exit codes, ``error: …`` lines on stderr, per-packet ``#`` lines on stdout, and the
summary block that scripts parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netscope.gen import packets as pk
from netscope.gen.pcapfile import write_pcap

RULE = re.compile(r"^=+$")


def summary_block(stdout: str) -> list[str]:
    """The lines from the last rule of '=' to the end of stdout."""
    lines = stdout.rstrip("\n").splitlines()
    starts = [i for i, line in enumerate(lines) if RULE.match(line)]
    assert starts, f"no summary rule in output:\n{stdout}"
    return lines[starts[-1] :]


def summary_value(stdout: str, label: str) -> str:
    for line in summary_block(stdout):
        m = re.match(rf"^  {re.escape(label)}:\s+(.*)$", line)
        if m:
            return m.group(1)
    raise AssertionError(f"no {label!r} line in summary:\n{stdout}")


def packet_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("#")]


def tcp_frames(n: int) -> list[tuple[int, bytes]]:
    """``n`` small TCP frames (one flow), 1 ms apart."""
    out = []
    for i in range(n):
        seg = pk.tcp("10.1.0.1", "10.2.0.2", 1234, 80, 1000 + i, 0, "A")
        out.append((1_700_000_000 * 10**9 + i * 10**6, pk.ether_ip("10.1.0.1", "10.2.0.2", 6, seg)))
    return out


@pytest.fixture(scope="module")
def many_packets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 000 packets: more than one default batch (32 768), so -c must cut mid-file."""
    path = tmp_path_factory.mktemp("runner") / "many.pcap"
    frame = tcp_frames(1)[0][1]
    write_pcap(path, ((i * 1000, frame) for i in range(40_000)))
    return path


# ------------------------------------------------------------------ per-packet output


@pytest.mark.parametrize("count", [1, 5, 43, 1000])
def test_count_stops_after_n(
    count: int, corpus: Callable[[str], Path], cli: Callable[..., Any]
) -> None:
    """``-c N`` prints N packet lines, numbered 1..N, and the summary counts N (or fewer if
    the file is shorter: dpkt-http.pcap has 43 packets)."""
    code, out, err = cli(["--read-pcap", str(corpus("dpkt-http.pcap")), "-c", str(count)])
    assert code == 0, err
    want = min(count, 43)
    lines = packet_lines(out)
    assert len(lines) == want
    assert [int(re.match(r"#(\d+)", x).group(1)) for x in lines] == list(range(1, want + 1))  # type: ignore[union-attr]
    assert summary_value(out, "Packets captured") == str(want)


def test_count_across_batches(many_packets: Path, cli: Callable[..., Any]) -> None:
    code, out, err = cli(["--read-pcap", str(many_packets), "--quiet", "-c", "33000"])
    assert code == 0, err
    assert summary_value(out, "Packets captured") == "33000"
    code, out, err = cli(["--read-pcap", str(many_packets), "--quiet"])
    assert summary_value(out, "Packets captured") == "40000"


def test_quiet_prints_no_packet_lines(
    corpus: Callable[[str], Path], cli: Callable[..., Any]
) -> None:
    code, out, err = cli(["--read-pcap", str(corpus("pcpp-example2.pcap")), "--quiet"])
    assert code == 0, err
    assert packet_lines(out) == []
    assert summary_value(out, "Packets captured") == "4709"
    # nothing but the original's start-up lines (then a blank line) and the summary on stdout
    head, _, rest = out.partition("\n\n")
    assert head.splitlines()[0].startswith("NetScope v") and rest.startswith("=")


def test_quiet_and_no_quiet_is_a_usage_error(
    corpus: Callable[[str], Path], cli: Callable[..., Any]
) -> None:
    """SPEC §4: --x/--no-x pairs; giving both is a usage error (exit 2)."""
    path = str(corpus("dpkt-http.pcap"))
    code, _out, err = cli(["--read-pcap", path, "--quiet", "--no-quiet"])
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert _out == ""


def test_hex_dump_reproduces_the_packet_bytes(
    corpus: Callable[[str], Path], cli: Callable[..., Any], capture_reader: Callable[..., Any]
) -> None:
    """``--hex-dump``: the dump after each packet's detail block holds exactly its bytes."""
    path = corpus("dpkt-http.pcap")
    code, out, err = cli(["--read-pcap", str(path), "--hex-dump", "-c", "3"])
    assert code == 0, err
    dumped: list[bytes] = []
    current = bytearray()
    for line in out.splitlines():
        # "OOOO  xx xx xx xx xx xx xx xx  xx xx xx xx xx xx xx xx  ASCII": the hex area has a
        # fixed width (48 columns), so ASCII that happens to look like hex is never misread.
        m = re.match(r"^([0-9a-f]{4,8})  ([0-9a-f]{2}[ 0-9a-f]*)", line)
        if m:
            offset = int(m.group(1), 16)
            if offset == 0 and current:
                dumped.append(bytes(current))
                current = bytearray()
            assert offset == len(current), line
            hex_area = line[len(m.group(1)) + 2 :][:48]
            current += bytes.fromhex("".join(hex_area.split()))
    if current:
        dumped.append(bytes(current))
    want = [p.data for p in capture_reader(path).packets[:3]]
    assert dumped == want
    assert summary_value(out, "Packets captured") == "3"


# ------------------------------------------------------------------ summary block


def test_summary_block_format(corpus: Callable[[str], Path], cli: Callable[..., Any]) -> None:
    """A rule of '=' then ``Capture complete.`` then two-space-indented ``label: value`` lines
    whose values all start in one column (scripts parse these)."""
    code, out, err = cli(["--read-pcap", str(corpus("dpkt-http.pcap")), "--quiet"])
    assert code == 0, err
    block = summary_block(out)
    assert len(block[0]) >= 20
    assert block[1] == "Capture complete."
    rows = block[2:]
    assert rows[0].startswith("  Packets captured:")
    assert rows[1].startswith("  Parse errors:")
    assert summary_value(out, "Packets captured") == "43"
    assert summary_value(out, "Parse errors") == "0"
    columns = {len(r) - len(r.split(":", 1)[1].lstrip()) for r in rows}
    assert len(columns) == 1, rows


def test_summary_matches_spec_spacing(
    corpus: Callable[[str], Path], cli: Callable[..., Any]
) -> None:
    """SPEC §6 spells the two mandatory lines literally: ``  Packets captured:  N`` and
    ``  Parse errors:      N``."""
    code, out, _ = cli(["--read-pcap", str(corpus("dpkt-http.pcap")), "--quiet"])
    block = summary_block(out)
    assert block[2] == "  Packets captured:  43"
    assert block[3] == "  Parse errors:      0"


# ------------------------------------------------------------------ damaged input and errors


def test_truncated_file_warns_and_succeeds(tmp_path: Path, cli: Callable[..., Any]) -> None:
    """SPEC §3: a truncated last record is a warning naming the count; everything before it
    is processed; the run still succeeds (exit 0) and prints its summary."""
    path = tmp_path / "cut.pcap"
    write_pcap(path, tcp_frames(25))
    path.write_bytes(path.read_bytes()[:-30])  # cut inside the 25th packet
    code, out, err = cli(["--read-pcap", str(path)])
    assert code == 0, err
    assert len(packet_lines(out)) == 24
    assert summary_value(out, "Packets captured") == "24"
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and re.search(r"\b24 packets\b", warnings[0]), err
    assert "truncated" in warnings[0]


def test_truncated_corpus_file(corpus: Callable[[str], Path], cli: Callable[..., Any]) -> None:
    code, out, err = cli(["--read-pcap", str(corpus("ndpi-fuzz-2021-10-13.pcap")), "--quiet"])
    assert code == 0, err
    assert summary_value(out, "Packets captured") == "1"
    assert re.search(r"^warning: .*\b1 packets\b", err, re.MULTILINE), err


@pytest.mark.parametrize(
    "content",
    [b"this is plain text, not a capture\n" * 10, b"", b"\xa1\xb2"],
    ids=["text", "empty", "two-bytes"],
)
def test_not_a_capture_is_one_error_line(
    tmp_path: Path, cli: Callable[..., Any], content: bytes
) -> None:
    path = tmp_path / "notes.pcap"
    path.write_bytes(content)
    code, out, err = cli(["--read-pcap", str(path)])
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert str(path) in err
    assert "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize("kind", ["missing", "directory", "unreadable-version"])
def test_unopenable_input_exits_1(
    tmp_path: Path, cli: Callable[..., Any], corpus: Callable[[str], Path], kind: str
) -> None:
    if kind == "missing":
        path = tmp_path / "does-not-exist.pcap"
    elif kind == "directory":
        path = tmp_path
    else:
        path = corpus("libpcap-pcap-invalid-version-1.pcap")
    code, out, err = cli(["--read-pcap", str(path)])
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert out == ""


def test_unsupported_link_type_reported_once(
    corpus: Callable[[str], Path], cli: Callable[..., Any]
) -> None:
    """zeek-radiotap.pcap (802.11 radiotap, 127): counted, never decoded, reported once, not
    a parse error and not a failure."""
    code, out, err = cli(["--read-pcap", str(corpus("zeek-radiotap.pcap"))])
    assert code == 0, err
    assert err.count("Unsupported(127)") == 1, err
    assert len(packet_lines(out)) == 3
    assert summary_value(out, "Packets captured") == "3"
    assert summary_value(out, "Parse errors") == "0"
    assert "Unsupported(127)" in summary_value(out, "Unsupported link types")


def test_unsupported_link_type_once_across_batches(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "lt147.pcap"
    write_pcap(path, ((i, b"\x00" * 20) for i in range(70_000)), linktype=147)
    code, out, err = cli(["--read-pcap", str(path), "--quiet"])
    assert code == 0, err
    assert err.count("Unsupported(147)") == 1, err
    assert summary_value(out, "Packets captured") == "70000"
    assert summary_value(out, "Parse errors") == "0"


def test_parse_errors_are_counted_not_fatal(
    corpus: Callable[[str], Path], cli: Callable[..., Any]
) -> None:
    """suricata-decode-too-small.pcap holds frames too short for their headers."""
    code, out, err = cli(["--read-pcap", str(corpus("suricata-decode-too-small.pcap"))])
    assert code == 0, err
    assert len(packet_lines(out)) == 8
    assert int(summary_value(out, "Parse errors")) > 0

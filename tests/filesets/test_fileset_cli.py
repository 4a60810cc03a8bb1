"""A set of capture files read as one capture equals the single-file run exactly.

The sets are made the way users make them: ``editcap -c N`` / ``-i SECONDS`` and
``tcpdump -C`` split a capture into consecutive files; ``tcpdump`` filters split it into
files whose time ranges overlap; ``editcap -F pcapng`` mixes formats. Every flow field
(the JSON and CSV exports, the expired-flows JSONL), the stats lines with top-N, the
alerts and the written pcap must be byte-identical to the run over the original file.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from tests.tests_support import run_netscope

pytestmark = pytest.mark.skipif(
    shutil.which("editcap") is None or shutil.which("tcpdump") is None,
    reason="needs editcap and tcpdump",
)

# Every output that sees the whole capture: flows, ticks with top-N, expiry, alerts, pcap.
FLAGS = [
    "--quiet",
    "--stats",
    "--stats-interval-ms",
    "200",
    "--top-flows",
    "3",
    "--flow-timeout-s",
    "2",
    "--anomalies",
]


def split(path: Path, into: Path, packets: int) -> None:
    subprocess.run(["editcap", "-c", str(packets), str(path), str(into / "p.pcap")], check=True)


def generate(path: Path, *args: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "netscope.gen", *args, str(path)],
        check=True,
        capture_output=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )
    return path


def outputs(tmp: Path, name: str, inputs: list[str], extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Run netscope over ``inputs``; return every output that must match, by name."""
    out = tmp / name
    out.mkdir()
    res = run_netscope(
        [
            *FLAGS,
            *extra,
            "--export-json",
            str(out / "flows.json"),
            "--export-csv",
            str(out / "flows.csv"),
            "--expired-flows-jsonl",
            str(out / "expired.jsonl"),
            "--alerts-jsonl",
            str(out / "alerts.jsonl"),
            "--write-pcap",
            str(out / "written.pcap"),
            *inputs,
        ]
    )
    assert res.code == 0, res.stderr
    lines = res.stdout.splitlines()
    result = {
        "stats": "\n".join(
            ln
            for ln in lines
            if ln.startswith(("[stats]", "  ")) and "Mbps" in ln or ln.startswith("[stats]")
        ),
        "summary": "\n".join(
            ln for ln in lines if ln.strip().startswith(("Packets", "Parse", "Flows:", "Success"))
        ),
        "written": (out / "written.pcap").read_bytes().hex(),
    }
    for f in ("flows.json", "flows.csv", "expired.jsonl", "alerts.jsonl"):
        result[f] = (out / f).read_text()
    return result


def assert_same(whole: dict[str, str], parts: dict[str, str], ties: bool = False) -> None:
    """Every output equal. ``ties``: files overlap in time, so packets of different files
    with the same timestamp may be written in another order (file order breaks ties; the
    original interleaving is not in the files): the written pcap is compared as a multiset
    of records, in timestamp order."""
    assert json.loads(parts["flows.json"]) == json.loads(whole["flows.json"])
    for key in whole:
        if ties and key == "written":
            continue
        assert parts[key] == whole[key], key
    if ties:
        a, b = records(whole["written"]), records(parts["written"])
        assert sorted(a) == sorted(b)
        assert [ts for ts, _ in b] == sorted(ts for ts, _ in b)


def records(hex_pcap: str) -> list[tuple[int, bytes]]:
    """(timestamp µs, record bytes) of a little-endian microsecond pcap image."""
    raw = bytes.fromhex(hex_pcap)
    out, pos = [], 24
    while pos < len(raw):
        sec, usec, incl = struct.unpack_from("<III", raw, pos)
        out.append((sec * 1_000_000 + usec, raw[pos + 8 : pos + 16 + incl]))
        pos += 16 + incl
    return out


@pytest.fixture(scope="module")
def long_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Few long conversations over many seconds: every flow crosses many file boundaries."""
    tmp = tmp_path_factory.mktemp("gen")
    return generate(tmp / "long.pcap", "--packets", "30000", "--flows", "40", "--seed", "7")


def test_editcap_count_split_equals_whole(long_flows: Path, tmp_path: Path) -> None:
    subprocess.run(["editcap", "-c", "997", str(long_flows), str(tmp_path / "p.pcap")], check=True)
    parts = sorted(str(p) for p in tmp_path.glob("p_*.pcap"))
    assert len(parts) > 20
    whole = outputs(tmp_path, "whole", [str(long_flows)])
    assert whole["stats"] and whole["flows.json"] != "[]"
    # given in reverse order: the files are ordered by their first packet, not by name
    assert_same(whole, outputs(tmp_path, "set", list(reversed(parts))))


def test_editcap_seconds_split_as_directory_and_glob(long_flows: Path, tmp_path: Path) -> None:
    split = tmp_path / "split"
    split.mkdir()
    subprocess.run(["editcap", "-i", "1", str(long_flows), str(split / "s.pcap")], check=True)
    whole = outputs(tmp_path, "whole", [str(long_flows)])
    assert_same(whole, outputs(tmp_path, "dir", ["-r", str(split)]))
    assert_same(whole, outputs(tmp_path, "glob", ["--read-pcap", str(split / "s_*.pcap")]))


def test_tcpdump_rotation_split(long_flows: Path, tmp_path: Path) -> None:
    subprocess.run(
        # -C drops root privileges to the tcpdump user unless told to keep them (-Z)
        ["tcpdump", "-r", str(long_flows), "-w", str(tmp_path / "rot.pcap"), "-C", "1"]
        + (["-Z", "root"] if os.geteuid() == 0 else []),
        check=True,
        capture_output=True,
    )
    parts = sorted(str(p) for p in tmp_path.glob("rot.pcap*"))
    assert len(parts) > 3
    whole = outputs(tmp_path, "whole", [str(long_flows)])
    assert_same(whole, outputs(tmp_path, "set", parts))


def test_overlapping_files_in_pcap_and_pcapng_merge_by_time(
    long_flows: Path, tmp_path: Path
) -> None:
    """Two filters split the capture into files that overlap in time for its whole
    length; one half is converted to pcapng and split again."""
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    for out, expr in ((a, "udp or ip6 or tcp port 443"), (b, "not (udp or ip6 or tcp port 443)")):
        subprocess.run(
            ["tcpdump", "-r", str(long_flows), "-w", str(out), expr],
            check=True,
            capture_output=True,
        )
    subprocess.run(["editcap", "-F", "pcapng", str(b), str(tmp_path / "b.pcapng")], check=True)
    subprocess.run(
        ["editcap", "-c", "5000", str(tmp_path / "b.pcapng"), str(tmp_path / "bb.pcapng")],
        check=True,
    )
    parts = [str(a), *sorted(str(p) for p in tmp_path.glob("bb_*.pcapng"))]
    # pcapng input written as pcap: the set and the whole run write the same records
    whole = outputs(tmp_path, "whole", [str(long_flows)])
    merged = outputs(tmp_path, "set", parts)
    assert_same(whole, merged, ties=True)


def test_corpus_capture_split_equals_whole(corpus: object, tmp_path: Path) -> None:
    path = corpus("zeek-206_example_b.pcap")  # type: ignore[operator]
    subprocess.run(["editcap", "-c", "300", str(path), str(tmp_path / "z.pcap")], check=True)
    parts = sorted(str(p) for p in tmp_path.glob("z_*.pcap"))
    assert len(parts) > 3
    assert_same(outputs(tmp_path, "whole", [str(path)]), outputs(tmp_path, "set", parts))


def test_unreadable_file_in_the_middle(long_flows: Path, tmp_path: Path) -> None:
    """The bad file is named, the others are processed, and the exit code is 1."""
    subprocess.run(
        ["editcap", "-c", "10000", str(long_flows), str(tmp_path / "p.pcap")], check=True
    )
    parts = sorted(str(p) for p in tmp_path.glob("p_*.pcap"))
    bad = tmp_path / "p_00001_zz.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    missing = tmp_path / "gone.pcap"
    res = run_netscope(["--quiet", parts[0], str(bad), str(missing), *parts[1:]])
    assert res.code == 1
    assert f"{bad}: not a capture file" in res.stderr
    assert f"{missing}: no such file" in res.stderr
    assert "error: 2 of 5 capture files could not be read" in res.stderr.splitlines()[-1]
    assert "Packets captured:" in res.stdout and "30000" in res.stdout
    assert "3 read, 2 unreadable (30000 packets)" in res.stdout
    for part in parts:
        assert f"{part} (10000 packets)" in res.stdout


def test_glob_matching_nothing_is_reported(tmp_path: Path, long_flows: Path) -> None:
    res = run_netscope(["--quiet", str(long_flows), str(tmp_path / "none*.pcap")])
    assert res.code == 1
    assert "none*.pcap: no file matches this pattern" in res.stderr


def test_stdin_cannot_join_a_set(long_flows: Path) -> None:
    res = run_netscope(["--quiet", "-r", "-", str(long_flows)])
    assert res.code == 2
    assert "standard input cannot be part of a file set" in res.stderr


def test_config_list_and_plain_string(long_flows: Path, tmp_path: Path) -> None:
    subprocess.run(
        ["editcap", "-c", "10000", str(long_flows), str(tmp_path / "p.pcap")], check=True
    )
    parts = sorted(str(p) for p in tmp_path.glob("p_*.pcap"))
    listed = tmp_path / "list.toml"
    listed.write_text("[capture]\nread_pcap = " + json.dumps(parts) + "\n")
    plain = tmp_path / "plain.toml"
    plain.write_text(f"[capture]\nread_pcap = {json.dumps(str(long_flows))}\n")
    a = run_netscope(["--quiet", "--config", str(listed)])
    b = run_netscope(["--quiet", "--config", str(plain)])
    assert a.code == 0 and b.code == 0, a.stderr + b.stderr
    assert "3 read, 0 unreadable (30000 packets)" in a.stdout
    assert "Packets captured:  30000" in b.stdout


@pytest.mark.parametrize("scenario", ["syn-flood", "port-scan"])
def test_alerts_across_boundaries(scenario: str, tmp_path: Path) -> None:
    """Attack traffic cut into many files raises the same alerts at the same times."""
    whole = generate(tmp_path / "attack.pcap", "--scenario", scenario)
    split(whole, tmp_path, 100)
    parts = sorted(str(p) for p in tmp_path.glob("p_*.pcap"))
    assert len(parts) > 5
    a = outputs(tmp_path, "whole", [str(whole)])
    assert a["alerts.jsonl"].strip(), "the scenario must raise an alert"
    assert_same(a, outputs(tmp_path, "set", parts))

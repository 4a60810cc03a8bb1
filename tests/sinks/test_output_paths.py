"""Outputs that would destroy an input or each other are usage errors (issue 12, item 2).

``--read-pcap s.pcap --write-pcap s.pcap`` used to leave a quarter of the capture and exit
0; ``--export-json s.pcap`` replaced it. Each case here must exit 2 with one error line,
before anything is opened for writing, and leave every file as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliResult, need_root

Cli = Callable[..., CliResult]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def capture(corpus: Callable[[str], Path], tmp_path: Path) -> Path:
    """A writable copy of a corpus capture, as in the issue's repro."""
    path = tmp_path / "s.pcap"
    shutil.copyfile(corpus("pcpp-example2.pcap"), path)
    return path


def refused(result: CliResult, *needles: str) -> None:
    assert result.code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Capture complete" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "flag",
    ["--write-pcap", "--export-json", "--export-csv", "--expired-flows-jsonl", "--alerts-jsonl"],
)
def test_output_over_the_input_is_refused(
    cli_in: Cli, capture: Path, tmp_path: Path, flag: str
) -> None:
    before = digest(capture)
    result = cli_in(tmp_path, ["--read-pcap", "s.pcap", "--quiet", "--anomalies", flag, "s.pcap"])
    refused(result, f"{flag} s.pcap is the same file as --read-pcap s.pcap")
    assert digest(capture) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pcap"]


@pytest.mark.parametrize("how", ["symlink", "hardlink", "other-spelling"])
def test_same_file_under_another_name(cli_in: Cli, capture: Path, tmp_path: Path, how: str) -> None:
    before = digest(capture)
    if how == "symlink":
        (tmp_path / "alias.pcap").symlink_to("s.pcap")
        name = "alias.pcap"
    elif how == "hardlink":
        os.link(capture, tmp_path / "alias.pcap")
        name = "alias.pcap"
    else:
        (tmp_path / "d").mkdir()
        name = "d/../s.pcap"
    result = cli_in(tmp_path, ["--read-pcap", "s.pcap", "--quiet", "--write-pcap", name])
    refused(result, "is the same file as --read-pcap")
    assert digest(capture) == before


def test_export_over_the_config_file_is_refused(cli_in: Cli, capture: Path, tmp_path: Path) -> None:
    config = tmp_path / "n.toml"
    config.write_text("[output]\nquiet = true\n")
    result = cli_in(
        tmp_path, ["--config", "n.toml", "--read-pcap", "s.pcap", "--export-csv", "n.toml"]
    )
    refused(result, "--export-csv n.toml is the same file as --config n.toml")
    assert config.read_text() == "[output]\nquiet = true\n"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (["--export-json", "f.out"], ["--export-csv", "f.out"]),  # neither exists yet
        (["--export-json", "f.out"], ["--export-csv", "./sub/../f.out"]),
        (["--export-json", "f.out"], ["--expired-flows-jsonl", "f.out"]),
        (["--write-pcap", "f.out"], ["--alerts-jsonl", "f.out"]),
    ],
)
def test_two_outputs_naming_one_file(
    cli_in: Cli, capture: Path, tmp_path: Path, first: list[str], second: list[str]
) -> None:
    (tmp_path / "sub").mkdir()
    args = ["--read-pcap", "s.pcap", "--quiet", "--anomalies", *first, *second]
    result = cli_in(tmp_path, args)
    refused(result, f"{first[0]} f.out and {second[0]}", "name the same file")
    # checked before anything was opened: the streaming outputs did not create it
    assert not (tmp_path / "f.out").exists()


def test_two_outputs_through_a_symlink_to_an_existing_file(
    cli_in: Cli, capture: Path, tmp_path: Path
) -> None:
    (tmp_path / "f.json").write_text("keep\n")
    (tmp_path / "link").symlink_to("f.json")
    result = cli_in(
        tmp_path,
        ["--read-pcap", "s.pcap", "--quiet", "--export-json", "f.json", "--export-csv", "link"],
    )
    refused(result, "name the same file")
    assert (tmp_path / "f.json").read_text() == "keep\n"


def test_two_outputs_on_standard_output(cli_in: Cli, capture: Path, tmp_path: Path) -> None:
    # a private alias of /dev/stdout: a test must never name the system's device files
    # (the code this guards against replaced /dev/stdout itself with a regular file)
    (tmp_path / "out").symlink_to("/proc/self/fd/1")
    result = cli_in(
        tmp_path,
        ["--read-pcap", "s.pcap", "--quiet", "--export-json", "-", "--export-csv", "out"],
    )
    refused(result, "both write to standard output")
    assert (tmp_path / "out").is_symlink()


def test_devices_may_be_shared(cli_in: Cli, capture: Path, tmp_path: Path) -> None:
    need_root()
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
    result = cli_in(
        tmp_path,
        ["--read-pcap", "s.pcap", "--quiet", "--export-json", "null",
         "--export-csv", "null", "--write-pcap", "null"],
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert stat.S_ISCHR(os.lstat(tmp_path / "null").st_mode)


def test_input_in_the_rotation_series_is_refused(
    cli_in: Cli, capture: Path, tmp_path: Path
) -> None:
    """Rotation deletes the oldest segments of its series: never an input among them."""
    os.rename(capture, tmp_path / "r.000004.pcap")
    before = digest(tmp_path / "r.000004.pcap")
    result = cli_in(
        tmp_path,
        ["--read-pcap", "r.000004.pcap", "--quiet", "--write-pcap", "r.pcap",
         "--write-pcap-rotate-mb", "1", "--write-pcap-max-files", "1"],
    )  # fmt: skip
    refused(result, "--read-pcap r.000004.pcap is a segment of the --write-pcap r.pcap")
    assert digest(tmp_path / "r.000004.pcap") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.000004.pcap"]


def test_rotation_to_standard_output_is_refused(cli_in: Cli, capture: Path, tmp_path: Path) -> None:
    result = cli_in(
        tmp_path,
        ["--read-pcap", "s.pcap", "--write-pcap", "-",
         "--write-pcap-rotate-mb", "1", "--write-pcap-max-files", "2"],
    )  # fmt: skip
    refused(result, "needs a file path")


def test_rotating_pcap_may_share_its_base_name_with_the_input(
    cli_in: Cli, capture: Path, tmp_path: Path
) -> None:
    """With rotation the unsuffixed path is never written, so it may be the input."""
    before = digest(capture)
    result = cli_in(
        tmp_path,
        ["--read-pcap", "s.pcap", "--quiet", "--write-pcap", "s.pcap",
         "--write-pcap-rotate-mb", "1", "--write-pcap-max-files", "5"],
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert digest(capture) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "s.000001.pcap", "s.000002.pcap", "s.000003.pcap", "s.pcap",
    ]  # fmt: skip

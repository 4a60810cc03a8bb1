"""Config input that Python cannot open as given: non-UTF-8 TOML files and NUL bytes in paths.

Both used to escape as tracebacks (UnicodeDecodeError from tomllib, ValueError "embedded null
byte" from open()). SPEC §4: a usage/config problem is one ``error: ...`` line and exit 2.
Command-line arguments cannot carry a NUL byte through exec, so the flag cases run
``cli.main`` in-process; TOML strings can (``"\\u0000"``), so those also run as a real process.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from netscope.cli import main
from netscope.config import Config, load_config, load_toml
from netscope.errors import ConfigError, UsageError
from tests_support import Result as CliResult

# Every path option: (flag, dotted TOML key). The password file's contents are another
# module's business; its path is a path like the others.
PATH_OPTIONS = [
    ("--read-pcap", "capture.read_pcap"),
    ("--write-pcap", "output.write_pcap"),
    ("--export-json", "output.export_json"),
    ("--export-csv", "output.export_csv"),
    ("--expired-flows-jsonl", "output.expired_flows_jsonl"),
    ("--alerts-jsonl", "analysis.alerts_jsonl"),
    ("--web-tls-cert", "web.tls.cert_path"),
    ("--web-tls-key", "web.tls.key_path"),
    ("--web-auth-pass-file", "web.auth.password_file"),
]


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    """Replace the runner: a Config that gets this far is recorded, never executed."""
    seen: list[Config] = []
    module = types.ModuleType("netscope.runner")

    def run(cfg: Config) -> int:
        seen.append(cfg)
        return 0

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netscope.runner", module)
    return seen


def _toml_for(key: str, value: str) -> str:
    """``[section]\\nleaf = "value"`` for a dotted key (``value`` is TOML-escaped already)."""
    section, leaf = key.rsplit(".", 1)
    return f'[{section}]\n{leaf} = "{value}"\n'


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------- non-UTF-8 config files


def test_latin1_config_is_one_line_naming_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[run]\ncount = 1\n# caf\xe9 au lait\n")
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    text = str(info.value)
    assert str(path) in text and "UTF-8" in text
    assert "0xe9" in text and "line 3" in text
    assert "\n" not in info.value.one_line()


def test_utf16_config_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "utf16.toml"
    path.write_bytes("[run]\ncount = 1\n".encode("utf-16"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_toml(path)


def test_utf8_config_with_non_ascii_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('# café\n[output]\nexport_json = "flöws.json"\n', encoding="utf-8")
    cfg = load_config(path)
    assert cfg.output.export_json == Path("flöws.json")


def test_non_utf8_config_through_the_cli(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# r\xe9seau\n[run]\ncount = 1\n")
    res = cli(["--config", str(path), "--read-pcap", str(tmp_path / "x.pcap")])
    assert res.code == 2, res.stderr
    line = _one_error_line(res.stderr)
    assert "not UTF-8" in line and "line 1" in line


# ---------------------------------------------------------------- NUL bytes in paths


@pytest.mark.parametrize(("flag", "key"), PATH_OPTIONS, ids=[f for f, _ in PATH_OPTIONS])
def test_nul_in_path_flag_exit_2(
    capsys: pytest.CaptureFixture[str], no_run: list[Config], flag: str, key: str
) -> None:
    code = main([flag, "out\x00put"])
    _, err = capsys.readouterr()
    assert code == 2, err
    line = _one_error_line(err)
    assert flag in line and "NUL" in line
    assert no_run == []


@pytest.mark.parametrize(("flag", "key"), PATH_OPTIONS, ids=[k for _, k in PATH_OPTIONS])
def test_nul_in_path_toml_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_run: list[Config],
    flag: str,
    key: str,
) -> None:
    path = tmp_path / "nul.toml"
    path.write_text(_toml_for(key, "a\\u0000b"), encoding="utf-8")
    code = main(["--config", str(path)])
    _, err = capsys.readouterr()
    assert code == 2, err
    line = _one_error_line(err)
    assert str(path) in line and key in line and "NUL" in line
    assert no_run == []


def test_nul_in_config_path_exit_2(
    capsys: pytest.CaptureFixture[str], no_run: list[Config]
) -> None:
    code = main(["--config", "net\x00scope.toml"])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert "--config" in _one_error_line(err)
    with pytest.raises(UsageError, match="NUL"):
        load_toml("net\x00scope.toml")


def test_nul_in_toml_path_through_the_cli(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    """The user's view: a real process, a real file, exit 2 and no traceback."""
    path = tmp_path / "nul.toml"
    path.write_text(_toml_for("capture.read_pcap", "cap\\u0000.pcap"), encoding="utf-8")
    res = cli(["--config", str(path), "--quiet"])
    assert res.code == 2, res.stderr
    assert "capture.read_pcap must not contain a NUL byte" in _one_error_line(res.stderr)


def test_paths_without_nul_are_untouched() -> None:
    cfg = Config.from_sources(cli_overrides={"output.export_json": "a b/ü.json"})
    assert cfg.output.export_json == Path("a b/ü.json")

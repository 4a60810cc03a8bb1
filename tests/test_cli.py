"""The ``netscope`` command line: flags of SPEC §4, conflicts, exit codes, dispatch."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from netscope import __version__, logutil
from netscope.cli import main, parse_args
from netscope.config import Config
from netscope.errors import CaptureError

# Every --x/--no-x pair of SPEC §4 (short aliases in the second column).
SWITCHES = [
    ("promiscuous", "-p"),
    ("hex-dump", None),
    ("quiet", None),
    ("stats", None),
    ("anomalies", None),
    ("web", None),
    ("web-tls", None),
    ("web-auth", None),
    ("pipeline", None),
]

# Every flag named in SPEC §4's table.
SPEC_FLAGS = """
-i --interface --read-pcap -f --filter -c --count -p --promiscuous --no-promiscuous
-s --snaplen -t --timeout-ms -l --list-interfaces --hex-dump --no-hex-dump --quiet --no-quiet
-v --write-pcap --write-pcap-rotate-mb --write-pcap-max-files --export-json --export-csv
--expired-flows-jsonl --stats --no-stats --stats-interval-ms --top-flows --flow-timeout-s
--max-flows --anomalies --no-anomalies --alerts-jsonl --web --no-web --web-bind --web-port
--web-tls --no-web-tls --web-tls-cert --web-tls-key --web-auth --no-web-auth --web-auth-user
--web-auth-pass-file --pipeline --no-pipeline --workers --config --synthetic-flows
-h --help -V --version
""".split()  # noqa: SIM905 (one readable block, as in the spec's table)


class FakeRunner:
    """Stands in for ``netscope.runner`` and records the Config main() dispatched."""

    def __init__(self) -> None:
        self.configs: list[Config] = []
        self.result = 0
        self.raises: Exception | None = None

    def run(self, cfg: Config) -> int:
        self.configs.append(cfg)
        if self.raises is not None:
            raise self.raises
        return self.result

    @property
    def cfg(self) -> Config:
        assert len(self.configs) == 1
        return self.configs[0]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    logutil.reset()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    """Replace the runner, so tests see the parser only."""
    fake = FakeRunner()
    module = types.ModuleType("netscope.runner")
    module.run = fake.run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netscope.runner", module)
    return fake


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- --version / --help -----------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("-V", "--version"):
        assert run_main(capsys, flag) == (0, f"netscope {__version__}\n", "")


def test_help_lists_every_spec_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    assert out.startswith("usage: netscope [OPTIONS]")
    words = set(out.replace(",", " ").split())
    missing = [flag for flag in SPEC_FLAGS if flag not in words]
    assert not missing


HEAVY_CHECK = """
import sys
from netscope.cli import main
code = main([{flag!r}])
heavy = sorted(m for m in ("numba", "numpy") if m in sys.modules)
print("HEAVY", heavy, "CODE", code)
"""


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_do_not_import_numba(flag: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", HEAVY_CHECK.format(flag=flag)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "HEAVY [] CODE 0" in proc.stdout


# --- flag conflicts -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "short"), SWITCHES)
def test_switch_pairs_conflict(
    capsys: pytest.CaptureFixture[str], runner: FakeRunner, name: str, short: str | None
) -> None:
    for on in filter(None, (f"--{name}", short)):
        for argv in ([on, f"--no-{name}"], [f"--no-{name}", on]):
            code, out, err = run_main(capsys, *argv)
            assert code == 2
            assert err.startswith("error: ") and err.count("\n") == 1
            assert f"--no-{name}" in err and on in err
    assert not runner.configs


@pytest.mark.parametrize(("name", "short"), SWITCHES)
def test_switch_pairs_set_values(name: str, short: str | None) -> None:
    on = parse_args([f"--{name}"]).overrides
    off = parse_args([f"--no-{name}"]).overrides
    assert list(on.values()) == [True] and list(off.values()) == [False]
    assert on.keys() == off.keys()
    if short:
        assert parse_args([short]).overrides == on


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--read-pcap", "x.pcap", "-i", "eth0"], "--read-pcap conflicts with -i/--interface"),
        (["-i", "eth0", "--read-pcap", "x.pcap"], "--read-pcap conflicts with -i/--interface"),
        (["--read-pcap", "x.pcap", "-p"], "--read-pcap conflicts with -p/--promiscuous"),
        (["--read-pcap", "x.pcap", "--promiscuous"], "conflicts with -p/--promiscuous"),
        (["--read-pcap", "x.pcap", "--no-promiscuous"], "conflicts with --no-promiscuous"),
        (["--workers", "2", "--no-pipeline"], "conflicts with --no-pipeline"),
        (["--stat"], "unrecognized arguments: --stat"),  # no abbreviations
        (["-c", "many"], "argument -c/--count: invalid int value"),
        # a positional argument is a capture path (file sets), so it conflicts with -i
        (["extra", "-i", "eth0"], "--read-pcap conflicts with -i/--interface"),
        (["--snaplen", "0"], "--snaplen must be >= 1 (got 0)"),
        (["--web-port", "70000"], "--web-port must be <= 65535"),
        (["--flow-timeout-s", "-1"], "--flow-timeout-s must be >= 0"),
        (["--synthetic-flows", "0"], "--synthetic-flows must be >= 1"),
        (["--write-pcap-rotate-mb", "10"], "both or neither"),
        (["--web-tls"], "--web-tls needs both web.tls.cert_path"),
        (["--web-auth", "--web-auth-pass-file", "pw"], "--web-auth needs a non-empty"),
        (["--web-auth", "--web-auth-user", "admin"], "neither is set"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], runner: FakeRunner, argv: list[str], needle: str
) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and needle in err
    assert not runner.configs


def test_workers_implies_pipeline(capsys: pytest.CaptureFixture[str], runner: FakeRunner) -> None:
    assert run_main(capsys, "--read-pcap", "x.pcap", "--workers", "3")[0] == 0
    assert runner.cfg.pipeline.enabled and runner.cfg.pipeline.workers == 3
    assert parse_args(["--workers", "0"]).overrides == {"pipeline.workers": 0}
    assert parse_args(["--workers", "2", "--pipeline"]).overrides["pipeline.enabled"] is True


# --- precedence through main ----------------------------------------------------------


def test_only_typed_flags_override(capsys: pytest.CaptureFixture[str], runner: FakeRunner) -> None:
    assert parse_args([]).overrides == {}
    assert parse_args(["-s", "96", "-vv"]).overrides == {"capture.snaplen": 96, "verbosity": 2}


def test_precedence_through_main(
    capsys: pytest.CaptureFixture[str], runner: FakeRunner, tmp_path: Path
) -> None:
    conf = tmp_path / "n.toml"
    conf.write_text(
        "[capture]\nsnaplen = 1500\ntimeout_ms = 250\n"
        "[stats]\nenabled = true\ntop_flows = 5\n"
        "[web]\ntick_ms = 33\nport = 9000\n"
        "[web.auth]\nenabled = true\nusername = 'admin'\npassword = 'pw'\n"
    )
    code, _, err = run_main(
        capsys,
        *("--config", str(conf), "--read-pcap", "t.pcap", "-s", "96"),
        *("--no-stats", "--web-port", "9100", "--web-auth-pass-file", "pw.txt", "-vvv"),
    )
    assert code == 0, err
    cfg = runner.cfg
    assert cfg.config_path == conf
    assert cfg.capture.read_pcap == Path("t.pcap")
    assert (cfg.capture.snaplen, cfg.capture.timeout_ms, cfg.capture.promiscuous) == (96, 250, True)
    assert (cfg.stats.enabled, cfg.stats.top_flows) == (False, 5)
    assert (cfg.web.tick_ms, cfg.web.port, cfg.web.top_n) == (33, 9100, 10)
    assert cfg.web.auth.password is None and cfg.web.auth.password_file == Path("pw.txt")
    assert cfg.verbosity == 3


def test_runtime_modes(capsys: pytest.CaptureFixture[str], runner: FakeRunner) -> None:
    assert run_main(capsys, "-l")[0] == 0
    assert runner.configs[-1].list_interfaces
    assert run_main(capsys, "--synthetic-flows", "1000")[0] == 0
    assert runner.configs[-1].synthetic_flows == 1000


# --- config file errors through main -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[capture\n", "invalid TOML"),
        ("[capture]\nsnaplenn = 1\n", "unknown key 'capture.snaplenn'"),
        ("[web]\ntick_ms = 'fast'\n", "web.tick_ms must be an integer"),
        ("[web]\ntick_ms = -1\n", "web.tick_ms must be >= 0"),
        ("[capture]\nsnaplen = false\n", "capture.snaplen must be an integer, got boolean false"),
    ],
)
def test_config_errors_exit_2(
    capsys: pytest.CaptureFixture[str],
    runner: FakeRunner,
    tmp_path: Path,
    text: str,
    needle: str,
) -> None:
    conf = tmp_path / "n.toml"
    conf.write_text(text)
    code, out, err = run_main(capsys, "--config", str(conf), "--read-pcap", "x.pcap")
    assert code == 2 and out == ""
    assert err.startswith(f"error: {conf}: ") and needle in err
    assert err.count("\n") == 1


def test_missing_config_exit_2(capsys: pytest.CaptureFixture[str], runner: FakeRunner) -> None:
    code, _, err = run_main(capsys, "--config", "/nonexistent/n.toml")
    assert code == 2 and "error: /nonexistent/n.toml: cannot read config file" in err


# --- dispatch, runtime errors -----------------------------------------


def test_runtime_error_exit_1(capsys: pytest.CaptureFixture[str], runner: FakeRunner) -> None:
    runner.raises = CaptureError("x.pcap: not a capture file", hint="expected pcap or pcapng")
    code, _, err = run_main(capsys, "--read-pcap", "x.pcap")
    assert (code, err) == (1, "error: x.pcap: not a capture file (expected pcap or pcapng)\n")


def test_runner_exit_code_passed_through(
    capsys: pytest.CaptureFixture[str], runner: FakeRunner
) -> None:
    runner.result = 3
    assert run_main(capsys, "--read-pcap", "x.pcap")[0] == 3


# --- logging ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "level"),
    [([], logging.WARNING), (["-v"], logging.INFO), (["-vv"], logging.DEBUG), (["-v"] * 4, 5)],
)
def test_verbosity_sets_level(
    capsys: pytest.CaptureFixture[str], runner: FakeRunner, flags: list[str], level: int
) -> None:
    assert run_main(capsys, "--read-pcap", "x.pcap", *flags)[0] == 0
    assert logging.getLogger("netscope").level == level
    assert logging.getLevelName(5) == "TRACE"


def test_log_format(capsys: pytest.CaptureFixture[str], runner: FakeRunner) -> None:
    def run(cfg: Config) -> int:
        logging.getLogger("netscope.sources.pcap").info("opened %s", cfg.capture.read_pcap)
        return 0

    runner.run = run  # type: ignore[method-assign]
    sys.modules["netscope.runner"].run = run  # type: ignore[attr-defined]
    _, _, err = run_main(capsys, "--read-pcap", "x.pcap", "-v")
    assert "INFO netscope.sources.pcap: opened x.pcap\n" in err
    _, _, err = run_main(capsys, "--read-pcap", "x.pcap")
    assert err == ""


# --- python -m netscope ----------------------------------------------------------------


def test_python_m_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netscope", "--version"], capture_output=True, text=True
    )
    assert (proc.returncode, proc.stdout) == (0, f"netscope {__version__}\n")


def test_python_m_conflict_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netscope", "--quiet", "--no-quiet"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: argument --no-quiet: not allowed with argument --quiet")
    assert proc.stdout == ""

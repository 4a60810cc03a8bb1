"""Every numeric setting has a documented range (netscope.limits), checked for flags and TOML
alike: a value past either end is exit 2 with one ``error:`` line naming the flag the user
typed (or the key and the file), never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netscope.cli import build_parser
from netscope.config import Config, _schema, file_keys
from netscope.errors import ConfigError, UsageError
from netscope.limits import ANOMALY_MAX_ENTRIES, RANGES, Range

Cli = Callable[..., Any]
REPO = Path(__file__).resolve().parents[1]
NUMERIC = {k for k, spec in _schema(Config).items() if spec.kind in ("int", "optint", "float")}
FLAGS: dict[str, str] = build_parser()[1] | {"synthetic_flows": "--synthetic-flows"}


def _over(key: str) -> Any:
    """A value just past the upper end (ints stay ints)."""
    rng = RANGES[key]
    assert rng.hi is not None
    kind = _schema(Config)[key].kind
    return rng.hi * 2 if kind == "float" else int(rng.hi) + 1


def _under(key: str) -> Any:
    rng = RANGES[key]
    kind = _schema(Config)[key].kind
    if kind == "float":
        return rng.lo if rng.lo_open else rng.lo - 0.5
    return int(rng.lo) - 1


def _toml(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _file_for(key: str, value: Any, tmp_path: Path) -> Path:
    section, _, name = key.rpartition(".")
    path = tmp_path / "bounds.toml"
    path.write_text(f"[{section}]\n{name} = {_toml(value)}\n", encoding="utf-8")
    return path


ROTATION = ("output.write_pcap_rotate_mb", "output.write_pcap_max_files")
CAPPED = sorted(k for k in RANGES if RANGES[k].hi is not None)
CAPPED_FLAGS = sorted(k for k in CAPPED if k in FLAGS)
CAPPED_FILE = sorted(k for k in CAPPED if k in file_keys())


def test_every_numeric_setting_has_a_range() -> None:
    assert set(RANGES) == NUMERIC
    # only the -v count has no upper end
    assert [k for k in RANGES if RANGES[k].hi is None] == ["verbosity"]


def test_defaults_lie_inside_their_ranges() -> None:
    defaults = {k: s.default for k, s in _schema(Config).items()}
    for key, rng in RANGES.items():
        if defaults[key] is not None:
            assert rng.contains(defaults[key]), key


def test_anomaly_cap_mirrors_the_detector() -> None:
    from netscope.anomaly.detector import DEFAULT_MAX_ENTRIES

    assert ANOMALY_MAX_ENTRIES == DEFAULT_MAX_ENTRIES


@pytest.mark.parametrize("key", sorted(RANGES))
def test_both_ends_accepted_and_just_past_them_refused_in_process(key: str) -> None:
    rng = RANGES[key]
    kind = _schema(Config)[key].kind
    labels = {key: FLAGS.get(key, key)}
    ok = [rng.hi] if rng.hi is not None else []
    ok += [] if rng.lo_open else [rng.lo]
    # rotation size and file count go together (a separate rule): give the partner too
    for value in ok:
        value = float(value) if kind == "float" else int(value)
        partner: dict[str, Any] = {}
        if key in ROTATION:  # rotation needs --write-pcap, and size and count go together
            partner = {k: min(value, 1) for k in ROTATION if k != key}
            partner["output.write_pcap"] = "x.pcap"
        if key == "run.replay_speed":  # pacing needs offline input
            partner = {"capture.read_pcap": "x.pcap"}
        Config.from_sources({}, {key: value, **partner}, cli_labels=labels)
    bad = [_under(key)] + ([_over(key)] if rng.hi is not None else [])
    for value in bad:
        with pytest.raises(UsageError) as info:
            Config.from_sources({}, {key: value}, cli_labels=labels)
        assert str(info.value).startswith(f"{labels[key]} must be "), info.value
        assert info.value.hint is not None and rng.why in info.value.hint


@pytest.mark.parametrize("key", CAPPED_FLAGS)
def test_flag_past_its_upper_end_is_exit_2_naming_the_flag(key: str, cli: Cli) -> None:
    flag = FLAGS[key]
    res = cli(["--read-pcap", "none.pcap", flag, str(_over(key))])
    assert res.code == 2, res
    assert "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert line.startswith(f"error: {flag} must be <= ") and "\n" not in line, line


@pytest.mark.parametrize("key", CAPPED_FILE)
def test_file_key_past_its_upper_end_is_exit_2_naming_key_and_file(
    key: str, tmp_path: Path, cli: Cli
) -> None:
    path = _file_for(key, _over(key), tmp_path)
    res = cli(["--config", str(path), "--read-pcap", "none.pcap"])
    assert res.code == 2, res
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith(f"error: {path}: {key} must be <= "), res.stderr


# The values the issue reported as tracebacks, exactly as a user typed them.
HUGE = "9223372036854775807"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-flows", HUGE], "--max-flows must be <= 1000000000"),
        (["--top-flows", HUGE], "--top-flows must be <= 1000"),
        (["--synthetic-flows", HUGE], "--synthetic-flows must be <= 100000000"),
        (["--flow-timeout-s", "1e11"], "--flow-timeout-s must be <= 31536000"),
        (["--flow-timeout-s", "inf"], "--flow-timeout-s must be a finite number"),
        (["--flow-timeout-s", "nan"], "--flow-timeout-s must be a finite number"),
        (["--workers", "100000"], "--workers must be <= 64"),
        (["--count", HUGE + "0"], "--count must be <= 1000000000000000"),
    ],
)
def test_reported_cli_values(args: list[str], message: str, cli: Cli) -> None:
    res = cli(["--read-pcap", "none.pcap", *args])
    assert res.code == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"error: {message}"), res.stderr


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("web", f"packet_buffer = {HUGE}", "web.packet_buffer must be <= 1000000"),
        ("web", f"payload_bytes = {HUGE}", "web.payload_bytes must be <= 262144"),
        ("web", f"top_n = {HUGE}", "web.top_n must be <= 1000"),
        (
            "analysis.anomalies.syn_flood",
            "window_secs = 1e308",
            "analysis.anomalies.syn_flood.window_secs must be <= 86400",
        ),
        (
            "analysis.anomalies.port_scan",
            "window_secs = nan",
            "analysis.anomalies.port_scan.window_secs must be a finite number",
        ),
        ("pipeline", "workers = 100000", "pipeline.workers must be <= 64"),
        ("flow", "timeout_secs = inf", "flow.timeout_secs must be a finite number"),
    ],
)
def test_reported_file_values(
    section: str, line: str, message: str, tmp_path: Path, cli: Cli
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[{section}]\n{line}\n", encoding="utf-8")
    res = cli(["--config", str(path), "--read-pcap", "none.pcap"])
    assert res.code == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"error: {path}: {message}"), res.stderr


def test_zero_stays_valid_where_it_means_unlimited_or_never() -> None:
    cfg = Config.from_sources(
        {"flow": {"max_flows": 0, "timeout_secs": 0}, "run": {"count": 0}}, {}
    )
    assert cfg.flow.max_flows == 0 and cfg.flow.timeout_secs == 0 and cfg.run.count == 0


def test_file_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Config.from_sources({"web": {"top_n": 10**6}}, {}, config_path=Path("x.toml"))


@pytest.mark.parametrize("doc", ["docs/configuration.md", "docs/cli-reference.md"])
def test_ranges_are_documented(doc: str) -> None:
    """Each key's upper end appears on the key's line of the docs' range table."""
    text = (REPO / doc).read_text(encoding="utf-8")
    lines = text.splitlines()
    for key, rng in RANGES.items():
        in_doc = key in FLAGS if doc.endswith("cli-reference.md") else key in file_keys()
        if key == "verbosity" or not in_doc:
            continue
        name = FLAGS[key] if doc.endswith("cli-reference.md") else key
        rows = [ln for ln in lines if f"`{name}`" in ln and ln.startswith("|")]
        assert rows, f"{name} has no row in {doc}"
        want = _fmt(rng)
        assert any(want in r for r in rows), f"{name}: {want!r} not in {rows}"


def _fmt(rng: Range) -> str:
    hi = rng.hi
    assert hi is not None and not math.isnan(hi)
    return f"{int(hi):,}"

"""Config layer: SPEC §5 defaults, precedence, validation messages."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from netscope.config import (
    Config,
    PipelineConfig,
    defaults_flat,
    file_keys,
    load_config,
    load_toml,
    resolve_attr,
)
from netscope.errors import ConfigError, UsageError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "netscope.example.toml"

# SPEC §5, transcribed independently of config.py so a drift in either is caught.
# Empty-string / "none" defaults are None.
SPEC_DEFAULTS: dict[str, Any] = {
    "capture.interface": None,
    "capture.read_pcap": None,
    "capture.promiscuous": True,
    "capture.snaplen": 65535,
    "capture.timeout_ms": 100,
    "capture.buffer_size_mb": 0,
    "capture.immediate_mode": False,
    "capture.filter": None,
    "run.count": 0,
    "run.replay_speed": 0.0,  # issue 14: --replay-speed (0 = max, no pacing)
    "output.write_pcap": None,
    "output.write_pcap_rotate_mb": 0,
    "output.write_pcap_max_files": 0,
    "output.write_pcap_nanos": False,
    "output.export_json": None,
    "output.export_csv": None,
    "output.expired_flows_jsonl": None,
    "output.export_zeek_conn": None,
    "output.export_zeek_conn_json": None,
    "output.export_parquet": None,
    "output.community_id_seed": 0,
    "output.parquet_row_group_flows": 65536,
    "output.hex_dump": False,
    "output.quiet": False,
    "output.ipfix.collector": None,
    "output.ipfix.observation_domain_id": 0,
    "output.ipfix.template_refresh_s": 60.0,
    "output.ipfix.active_timeout_s": 1800.0,
    "output.ipfix.mtu": 1400,
    "output.ipfix.options_template": True,
    "output.ipfix.queue_messages": 4096,
    "flow.timeout_secs": 60.0,
    "flow.max_flows": 100000,
    "stats.enabled": False,
    "stats.interval_ms": 1000,
    "stats.top_flows": 0,
    "analysis.rtt": True,
    "analysis.retrans": True,
    "analysis.out_of_order": True,
    "analysis.alerts_jsonl": None,
    "analysis.anomalies.enabled": False,
    "analysis.anomalies.syn_flood.enabled": True,
    "analysis.anomalies.syn_flood.window_secs": 5.0,
    "analysis.anomalies.syn_flood.syn_threshold": 200,
    "analysis.anomalies.syn_flood.unique_src_threshold": 50,
    "analysis.anomalies.syn_flood.cooldown_secs": 10.0,
    "analysis.anomalies.port_scan.enabled": True,
    "analysis.anomalies.port_scan.window_secs": 10.0,
    "analysis.anomalies.port_scan.unique_ports_threshold": 25,
    "analysis.anomalies.port_scan.unique_hosts_threshold": 10,
    "analysis.anomalies.port_scan.cooldown_secs": 30.0,
    "web.enabled": False,
    "web.bind": "127.0.0.1",
    "web.port": 8080,
    "web.tick_ms": 1000,
    "web.top_n": 10,
    "web.packet_buffer": 2000,
    "web.sample_rate": 1,
    "web.payload_bytes": 256,
    "web.tls.enabled": False,
    "web.tls.cert_path": None,
    "web.tls.key_path": None,
    "web.auth.enabled": False,
    "web.auth.username": "",
    "web.auth.password": None,
    "web.auth.password_file": None,
    "pipeline.enabled": False,
    "pipeline.workers": 0,
    "pipeline.channel_capacity": 4096,
}


def write(tmp_path: Path, text: str, name: str = "n.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def from_file(tmp_path: Path, text: str, **cli: Any) -> Config:
    """Load ``text`` as a config file with dotted-key CLI overrides given as k__j=v."""
    overrides = {k.replace("__", "."): v for k, v in cli.items()}
    return load_config(write(tmp_path, text), overrides)


def leaf_keys(cls: type, prefix: str = "") -> set[str]:
    """Walk the dataclasses directly (not through config.py's own schema helpers)."""
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        value = getattr(cls(), f.name)
        if dataclasses.is_dataclass(value):
            out |= leaf_keys(type(value), f"{prefix}{f.name}.")
        else:
            out.add(f"{prefix}{f.name}")
    return out


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


# --- defaults and the example file --------------------------------------------------


def test_defaults_match_spec() -> None:
    cfg = Config()
    assert {k: resolve_attr(cfg, k) for k in SPEC_DEFAULTS} == SPEC_DEFAULTS
    assert set(file_keys()) == set(SPEC_DEFAULTS)
    assert defaults_flat()["verbosity"] == 0


def test_example_covers_every_key() -> None:
    section_keys = {k for k in leaf_keys(Config) if "." in k}
    example = flatten(tomllib.loads(EXAMPLE.read_text()))
    assert set(example) == section_keys


def test_example_equals_defaults() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg == Config(config_path=EXAMPLE)
    # And textually: "" in the example stands for an unset (None) default.
    example = flatten(load_toml(EXAMPLE))
    assert {
        k: (None if v == "" and SPEC_DEFAULTS[k] is None else v) for k, v in example.items()
    } == SPEC_DEFAULTS


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().capture.snaplen = 1  # type: ignore[misc]


# --- precedence ---------------------------------------------------------------------


def test_precedence_default_file_cli(tmp_path: Path) -> None:
    text = """
[capture]
snaplen = 1500
timeout_ms = 250
[web]
tick_ms = 33
[web.tls]
enabled = true
cert_path = "c.pem"
key_path = "k.pem"
[analysis.anomalies.syn_flood]
syn_threshold = 10
window_secs = 2
"""
    cfg = from_file(
        tmp_path,
        text,
        capture__snaplen=96,
        web__tls__enabled=False,
        analysis__anomalies__syn_flood__window_secs=1.5,
    )
    assert cfg.capture.snaplen == 96  # CLI beats file
    assert cfg.capture.timeout_ms == 250  # file beats default
    assert cfg.capture.promiscuous is True  # default
    assert cfg.web.tick_ms == 33
    assert cfg.web.tls.enabled is False  # nested, CLI beats file
    assert cfg.web.tls.cert_path == Path("c.pem")
    assert cfg.analysis.anomalies.syn_flood.syn_threshold == 10
    assert cfg.analysis.anomalies.syn_flood.window_secs == 1.5
    assert cfg.analysis.anomalies.port_scan == Config().analysis.anomalies.port_scan


def test_no_file_no_flags_is_defaults() -> None:
    assert Config.from_sources({}, {}) == Config()
    assert load_config(None, {}) == Config()


def test_empty_strings_mean_unset(tmp_path: Path) -> None:
    cfg = from_file(
        tmp_path, '[capture]\nfilter = ""\ninterface = ""\n[output]\nexport_json = ""\n'
    )
    assert cfg.capture.filter is None and cfg.capture.interface is None
    assert cfg.output.export_json is None
    cfg = from_file(tmp_path, '[output]\nexport_json = ""\n', output__export_json="out.json")
    assert cfg.output.export_json == Path("out.json")


def test_int_accepted_for_float_keys(tmp_path: Path) -> None:
    cfg = from_file(tmp_path, "[flow]\ntimeout_secs = 0\n")
    assert cfg.flow.timeout_secs == 0.0 and isinstance(cfg.flow.timeout_secs, float)


def test_flag_choosing_input_displaces_file_choice(tmp_path: Path) -> None:
    text = '[capture]\ninterface = "eth0"\n'
    cfg = from_file(tmp_path, text, capture__read_pcap="x.pcap")
    assert cfg.capture.interface is None and cfg.capture.read_pcap == Path("x.pcap")
    cfg = from_file(tmp_path, '[capture]\nread_pcap = "x.pcap"\n', capture__interface="lo")
    assert cfg.capture.read_pcap is None and cfg.capture.interface == "lo"


# --- errors name the key and the file ------------------------------------------------


def expect_error(tmp_path: Path, text: str, *needles: str, **cli: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        from_file(tmp_path, text, **cli)
    message = info.value.one_line()
    assert str(tmp_path / "n.toml") in message
    for needle in needles:
        assert needle in message
    assert info.value.exit_code == 2
    return info.value


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[capture]\nsnaplenn = 5\n", "'capture.snaplenn'"),
        ("[web.tls]\ncert = 'x'\n", "'web.tls.cert'"),
        (
            "[analysis.anomalies.syn_flood]\nthreshold = 1\n",
            "'analysis.anomalies.syn_flood.threshold'",
        ),
        ("[captur]\nsnaplen = 5\n", "'captur'"),
        ("verbosity = 3\n", "'verbosity'"),
    ],
)
def test_unknown_key(tmp_path: Path, text: str, key: str) -> None:
    expect_error(tmp_path, text, f"unknown key {key}")


def test_unknown_key_suggests(tmp_path: Path) -> None:
    err = expect_error(tmp_path, "[capture]\nsnaplenn = 5\n")
    assert err.hint == "did you mean 'capture.snaplen'?"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[capture]\nsnaplen = true\n", "capture.snaplen"),  # bool is not an int
        ("[capture]\nsnaplen = '1500'\n", "capture.snaplen"),
        ("[capture]\npromiscuous = 1\n", "capture.promiscuous"),
        ("[flow]\ntimeout_secs = false\n", "flow.timeout_secs"),
        ("[flow]\ntimeout_secs = '60'\n", "flow.timeout_secs"),
        ("[web]\nport = 80.0\n", "web.port"),
        ("[web]\nbind = 127\n", "web.bind"),
        ("[capture]\nread_pcap = 3\n", "capture.read_pcap"),
        ("[capture.snaplen]\nx = 1\n", "capture.snaplen"),
        ("[web]\ntls = 1\n", "web.tls"),
        ("capture = 1\n", "capture"),
    ],
)
def test_wrong_type(tmp_path: Path, text: str, key: str) -> None:
    expect_error(tmp_path, text, f"{key} must be")


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("capture", "snaplen", "0"),
        ("capture", "snaplen", "262145"),
        ("capture", "timeout_ms", "0"),
        ("capture", "buffer_size_mb", "-1"),
        ("run", "count", "-1"),
        ("output", "write_pcap_max_files", "-3"),
        ("flow", "timeout_secs", "-0.5"),
        ("flow", "timeout_secs", "nan"),
        ("flow", "timeout_secs", "inf"),
        ("flow", "max_flows", "-1"),
        ("stats", "interval_ms", "0"),
        ("stats", "top_flows", "-1"),
        ("analysis.anomalies.syn_flood", "window_secs", "0"),
        ("analysis.anomalies.syn_flood", "syn_threshold", "0"),
        ("analysis.anomalies.port_scan", "cooldown_secs", "-1"),
        ("web", "tick_ms", "-1"),
        ("web", "port", "0"),
        ("web", "port", "65536"),
        ("web", "packet_buffer", "0"),
        ("web", "sample_rate", "-1"),
        ("web", "bind", '""'),
        ("pipeline", "workers", "-1"),
        ("pipeline", "channel_capacity", "0"),
    ],
)
def test_bad_values(tmp_path: Path, section: str, key: str, value: str) -> None:
    expect_error(tmp_path, f"[{section}]\n{key} = {value}\n", f"{section}.{key} must")


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("web", "tick_ms", "16"),
        ("web", "port", "65535"),
        ("web", "port", "1"),
        ("capture", "snaplen", "1"),
        ("web", "sample_rate", "0"),
        ("flow", "timeout_secs", "0"),
    ],
)
def test_boundary_values_accepted(tmp_path: Path, section: str, key: str, value: str) -> None:
    cfg = from_file(tmp_path, f"[{section}]\n{key} = {value}\n")
    assert resolve_attr(cfg, f"{section}.{key}") == tomllib.loads(f"v = {value}")["v"]


@pytest.mark.parametrize("value", [0, 1, 15])
def test_tick_ms_below_16_is_raised_to_16_with_a_warning(
    tmp_path: Path, value: int, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = from_file(tmp_path, f"[web]\ntick_ms = {value}\n")
    assert cfg.web.tick_ms == 16
    err = capsys.readouterr().err
    assert err == f"warning: web.tick_ms = {value} is below the minimum 16; using 16\n"


def test_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[capture]\nsnaplen = = 3\n")
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    assert str(path) in str(info.value) and "line 2" in str(info.value)


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file") as info:
        load_toml(tmp_path / "absent.toml")
    assert str(tmp_path / "absent.toml") in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(tmp_path)  # a directory


# --- rules across keys -------------------------------------------------------------


def test_interface_and_read_pcap_in_file(tmp_path: Path) -> None:
    text = '[capture]\ninterface = "eth0"\nread_pcap = "x.pcap"\n'
    expect_error(tmp_path, text, "capture.interface", "capture.read_pcap")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("", True),
        ('write_pcap = "x.pcap"\nwrite_pcap_rotate_mb = 10\nwrite_pcap_max_files = 5\n', True),
        ("write_pcap_rotate_mb = 10\n", False),
        ("write_pcap_max_files = 5\n", False),
        ("write_pcap_rotate_mb = 10\nwrite_pcap_max_files = 0\n", False),
    ],
)
def test_rotation_both_or_neither(tmp_path: Path, text: str, ok: bool) -> None:
    if ok:
        from_file(tmp_path, f"[output]\n{text}")
    else:
        expect_error(tmp_path, f"[output]\n{text}", "both or neither", "write_pcap_max_files")


def test_rotation_mixing_file_and_flags(tmp_path: Path) -> None:
    cfg = from_file(
        tmp_path,
        '[output]\nwrite_pcap = "x.pcap"\nwrite_pcap_rotate_mb = 10\n',
        output__write_pcap_max_files=3,
    )
    assert (cfg.output.write_pcap_rotate_mb, cfg.output.write_pcap_max_files) == (10, 3)
    with pytest.raises(UsageError, match="--write-pcap-rotate-mb and output.write_pcap_max_files"):
        Config.from_sources(
            {},
            {"output.write_pcap_rotate_mb": 5},
            cli_labels={"output.write_pcap_rotate_mb": "--write-pcap-rotate-mb"},
        )


@pytest.mark.parametrize("missing", ["cert_path", "key_path", "both"])
def test_tls_needs_cert_and_key(tmp_path: Path, missing: str) -> None:
    lines = ["enabled = true"]
    if missing != "cert_path" and missing != "both":
        lines.append('cert_path = "c.pem"')
    if missing != "key_path" and missing != "both":
        lines.append('key_path = "k.pem"')
    expect_error(tmp_path, "[web.tls]\n" + "\n".join(lines) + "\n", "web.tls.cert_path")


def test_tls_ok_and_files_not_checked_here(tmp_path: Path) -> None:
    text = '[web.tls]\nenabled = true\ncert_path = "/nonexistent/c.pem"\nkey_path = "k.pem"\n'
    cfg = from_file(tmp_path, text)  # readability is checked when the server starts
    assert cfg.web.tls.cert_path == Path("/nonexistent/c.pem")
    # Cert/key without enabled are just stored.
    assert not from_file(tmp_path, '[web.tls]\ncert_path = "c.pem"\n').web.tls.enabled


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('password = "pw"\n', "username"),
        ('username = ""\npassword = "pw"\n', "username"),
        ('username = "admin"\n', "neither is set"),
        ('username = "admin"\npassword = "pw"\npassword_file = "pw.txt"\n', "both are set"),
        ('username = "admin"\npassword = ""\npassword_file = ""\n', "neither is set"),
    ],
)
def test_auth_rules(tmp_path: Path, body: str, needle: str) -> None:
    expect_error(tmp_path, f"[web.auth]\nenabled = true\n{body}", needle)


def test_auth_valid_and_password_hidden(tmp_path: Path) -> None:
    cfg = from_file(
        tmp_path, '[web.auth]\nenabled = true\nusername = "admin"\npassword = "s3cret"\n'
    )
    assert cfg.web.auth.password == "s3cret"
    assert "s3cret" not in repr(cfg)
    # A flag giving a password file displaces the file's inline password.
    cfg = from_file(
        tmp_path,
        '[web.auth]\nenabled = true\nusername = "admin"\npassword = "s3cret"\n',
        web__auth__password_file="pw.txt",
    )
    assert cfg.web.auth.password is None and cfg.web.auth.password_file == Path("pw.txt")
    # Auth settings without enabled are not validated.
    assert not from_file(tmp_path, '[web.auth]\npassword = "x"\n').web.auth.enabled


# --- overrides from flags ------------------------------------------------------------


def test_flag_errors_are_usage_errors_naming_the_flag() -> None:
    labels = {"capture.snaplen": "--snaplen"}
    with pytest.raises(UsageError) as info:
        Config.from_sources({}, {"capture.snaplen": 0}, cli_labels=labels)
    assert not isinstance(info.value, ConfigError)
    assert str(info.value) == "--snaplen must be >= 1 (got 0)"


def test_unknown_override_key() -> None:
    with pytest.raises(UsageError, match="unknown setting 'capture.nope'"):
        Config.from_sources({}, {"capture.nope": 1})
    with pytest.raises(UsageError, match="unknown setting 'capture'"):
        Config.from_sources({}, {"capture": {}})


def test_runtime_keys_only_from_overrides() -> None:
    cfg = Config.from_sources({}, {"verbosity": 2, "list_interfaces": True, "synthetic_flows": 7})
    assert (cfg.verbosity, cfg.list_interfaces, cfg.synthetic_flows) == (2, True, 7)
    with pytest.raises(UsageError, match="synthetic_flows must be >= 1"):
        Config.from_sources({}, {"synthetic_flows": 0})


# --- derived properties ------------------------------------------------------------


def test_derived_properties() -> None:
    assert Config().live_capture
    assert not Config.from_sources({}, {"capture.read_pcap": "x.pcap"}).live_capture
    assert not Config(list_interfaces=True).live_capture
    assert Config(verbosity=2).detailed_view and not Config(verbosity=1).detailed_view
    off = {"analysis": {"rtt": False, "retrans": False, "out_of_order": False}}
    assert Config.from_sources(off).analysis.scale_mode
    assert not Config().analysis.scale_mode


@pytest.mark.parametrize(
    ("workers", "cpus", "expected"), [(3, 64, 3), (0, 1, 1), (0, 6, 3), (0, 64, 8)]
)
def test_worker_count(workers: int, cpus: int, expected: int) -> None:
    assert PipelineConfig(workers=workers).worker_count(cpus) == expected

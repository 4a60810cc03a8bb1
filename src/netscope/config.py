"""Typed configuration: TOML file + command-line overrides -> one frozen ``Config``.

SPEC §5 is the contract for section names, keys and defaults; SPEC §4 for the flags that
override them. The dataclasses below are the single source of truth: the schema used to
reject unknown keys and wrong types is derived from their fields; the range of every numeric
key is one row of ``netscope.limits.RANGES`` (flags and file alike). Adding a key is one line
here, one in ``netscope.example.toml`` and, if numeric, one range.

Precedence is explicit flags > config file > defaults. Every error names the offending key
(dotted, ``web.tick_ms``) and where it came from (the file path or the flag), because "bad
config" without a location is useless to someone editing a 60-line file.

This module must stay cheap to import (no numpy/numba): ``netscope --help`` imports it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import sys
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from netscope.errors import ConfigError, UsageError
from netscope.limits import MAX_SNAPLEN as MAX_SNAPLEN
from netscope.limits import RANGES

_T = TypeVar("_T")


def _nonempty(default: str) -> str:
    """A string field that may not be the empty string (e.g. a bind address)."""
    return field(default=default, metadata={"nonempty": True})


# --------------------------------------------------------------------------------------
# Sections (one frozen dataclass per TOML table)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureConfig:
    """``[capture]``: where packets come from and how the capture is set up."""

    interface: str | None = None
    read_pcap: Path | None = None
    promiscuous: bool = True
    snaplen: int = 65535
    timeout_ms: int = 100
    buffer_size_mb: int = 0  # 0 = the capture backend's default ring size
    immediate_mode: bool = False
    filter: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: when to stop."""

    count: int = 0  # 0 = until Ctrl-C / end of file
    # offline input paced by capture time: 1 = as captured, 10 = ten times faster; 0 = as fast
    # as possible ("max" on the command line), the default
    replay_speed: float = 0.0


@dataclass(frozen=True)
class IpfixConfig:
    """``[output.ipfix]``: flow export to an IPFIX collector (docs/ipfix.md)."""

    collector: str | None = None  # HOST:PORT (UDP), udp://HOST:PORT or tcp://HOST:PORT
    observation_domain_id: int = 0
    template_refresh_s: float = 60.0  # UDP: templates re-sent this often (export time)
    active_timeout_s: float = 1800.0  # long flows exported this often (deltas); 0 = never
    mtu: int = 1400  # largest message (bytes): one UDP datagram within the path MTU
    options_template: bool = True  # exporter statistics as an options template record
    queue_messages: int = 4096  # sender queue bound; beyond it messages are dropped, counted


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: files written and what is printed per packet."""

    write_pcap: Path | None = None
    write_pcap_rotate_mb: int = 0
    write_pcap_max_files: int = 0
    write_pcap_nanos: bool = False  # ns magic only when asked for and the input has ns
    export_json: Path | None = None
    export_csv: Path | None = None
    expired_flows_jsonl: Path | None = None
    export_zeek_conn: Path | None = None  # Zeek conn.log (TSV), docs/exports.md
    export_zeek_conn_json: Path | None = None  # Zeek conn.log as JSON lines
    export_parquet: Path | None = None  # a file, or an existing directory (Hive dataset)
    community_id_seed: int = 0  # Community ID v1 seed of every flow export
    parquet_row_group_flows: int = 65536  # expired flows buffered per Parquet row group
    hex_dump: bool = False
    quiet: bool = False
    ipfix: IpfixConfig = field(default_factory=IpfixConfig)


@dataclass(frozen=True)
class FlowConfig:
    """``[flow]``: flow-table expiry and size cap."""

    timeout_secs: float = 60.0  # 0 = never expire
    max_flows: int = 100000  # 0 = unlimited


@dataclass(frozen=True)
class StatsConfig:
    """``[stats]``: periodic stats lines on stdout."""

    enabled: bool = False
    interval_ms: int = 1000
    top_flows: int = 0


@dataclass(frozen=True)
class SynFloodConfig:
    """``[analysis.anomalies.syn_flood]``: SYN-without-ACK bursts towards one (ip, port)."""

    enabled: bool = True
    window_secs: float = 5.0
    syn_threshold: int = 200
    unique_src_threshold: int = 50
    cooldown_secs: float = 10.0


@dataclass(frozen=True)
class PortScanConfig:
    """``[analysis.anomalies.port_scan]``: one source touching many ports or hosts."""

    enabled: bool = True
    window_secs: float = 10.0
    unique_ports_threshold: int = 25
    unique_hosts_threshold: int = 10
    cooldown_secs: float = 30.0


@dataclass(frozen=True)
class AnomaliesConfig:
    """``[analysis.anomalies]``: the detectors' master switch and their settings."""

    enabled: bool = False
    syn_flood: SynFloodConfig = field(default_factory=SynFloodConfig)
    port_scan: PortScanConfig = field(default_factory=PortScanConfig)


@dataclass(frozen=True)
class AnalysisConfig:
    """``[analysis]``: per-flow TCP analysis switches and anomaly detection."""

    rtt: bool = True
    retrans: bool = True
    out_of_order: bool = True
    alerts_jsonl: Path | None = None
    anomalies: AnomaliesConfig = field(default_factory=AnomaliesConfig)

    @property
    def scale_mode(self) -> bool:
        """All three analyses off: compact flow storage, no sequence tracking (SPEC §5)."""
        return not (self.rtt or self.retrans or self.out_of_order)


@dataclass(frozen=True)
class WebTlsConfig:
    """``[web.tls]``: HTTPS for the dashboard (files are checked for readability at start)."""

    enabled: bool = False
    cert_path: Path | None = None
    key_path: Path | None = None


@dataclass(frozen=True)
class WebAuthConfig:
    """``[web.auth]``: HTTP Basic auth over every dashboard route."""

    enabled: bool = False
    username: str = ""
    # repr=False: a Config gets logged at DEBUG; the password must not be.
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None


@dataclass(frozen=True)
class WebConfig:
    """``[web]``: the live dashboard and Prometheus endpoint."""

    enabled: bool = False
    bind: str = _nonempty("127.0.0.1")
    port: int = 8080
    # below 16 ms (~60 frames/s) is raised to 16 with a warning, as the original did
    tick_ms: int = field(default=1000, metadata={"soft_ge": 16})
    top_n: int = 10
    packet_buffer: int = 2000
    sample_rate: int = 1  # 0 = no packet feed
    payload_bytes: int = 256
    tls: WebTlsConfig = field(default_factory=WebTlsConfig)
    auth: WebAuthConfig = field(default_factory=WebAuthConfig)


@dataclass(frozen=True)
class PipelineConfig:
    """``[pipeline]``: sharded multi-core mode."""

    enabled: bool = False
    workers: int = 0  # 0 = half the CPUs, clamped to 1..8
    channel_capacity: int = 4096

    def worker_count(self, cpu_count: int | None = None) -> int:
        """The number of shard workers to start: ``workers``, or half the CPUs clamped 1..8."""
        if self.workers > 0:
            return self.workers
        cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
        return min(8, max(1, cpus // 2))


@dataclass(frozen=True)
class Config:
    """Everything one ``netscope`` run needs.

    The section fields mirror the TOML tables. The remaining fields exist only on the command
    line (a config file cannot set them): ``verbosity`` (number of ``-v``), ``config_path``
    (the ``--config`` file, for messages), ``list_interfaces`` and ``synthetic_flows`` (modes
    that do something other than capture, then exit).
    """

    capture: CaptureConfig = field(default_factory=CaptureConfig)
    run: RunConfig = field(default_factory=RunConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    web: WebConfig = field(default_factory=WebConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    verbosity: int = 0
    config_path: Path | None = None
    list_interfaces: bool = False
    synthetic_flows: int | None = None
    # Every path ``capture.read_pcap`` named when it is a list (a file set: flags repeated,
    # positional paths, or a TOML array); ``capture.read_pcap`` then holds the first.
    read_pcap_files: tuple[Path, ...] = ()
    # ``--dask ADDRESS`` (``local:N`` or a scheduler address) and ``--dask-tasks N``
    # (0: one per worker thread): the file set is analysed on a Dask cluster.
    dask: str | None = None
    dask_tasks: int = 0
    dask_workers: int = 2  # worker processes of ``--dask local`` (``local:N`` says N itself)

    @property
    def capture_paths(self) -> tuple[Path, ...]:
        """The capture files, directories and globs to read (empty: live capture)."""
        if self.read_pcap_files:
            return self.read_pcap_files
        return (self.capture.read_pcap,) if self.capture.read_pcap is not None else ()

    @property
    def live_capture(self) -> bool:
        """True when packets come from an interface (``-i`` or the system default one)."""
        return (
            self.capture.read_pcap is None
            and not self.list_interfaces
            and self.synthetic_flows is None
        )

    @property
    def detailed_view(self) -> bool:
        """Per-packet output as one block per layer plus hex (``--hex-dump`` or ``-vv``)."""
        return self.output.hex_dump or self.verbosity >= 2

    @classmethod
    def from_sources(
        cls,
        file_values: Mapping[str, Any] | None = None,
        cli_overrides: Mapping[str, Any] | None = None,
        *,
        config_path: Path | None = None,
        cli_labels: Mapping[str, str] | None = None,
    ) -> Config:
        """Merge defaults < ``file_values`` < ``cli_overrides`` and validate the result.

        ``file_values`` is the nested dict from :func:`load_toml`. ``cli_overrides`` maps
        dotted keys (``"web.tick_ms"``) or top-level run-time keys (``"verbosity"``,
        ``"list_interfaces"``, ``"synthetic_flows"``) to values; only keys the user really
        gave belong in it. ``cli_labels`` maps dotted keys to the flag that set them, so
        errors say ``--snaplen`` rather than ``capture.snaplen``. Raises ConfigError for a
        problem located in the file and UsageError for one caused by flags alone.
        """
        src = _Sources(config_path, dict(cli_labels or {}))
        file_flat = _flatten_file(file_values or {}, src)
        for key in cli_overrides or {}:
            if key not in _schema(Config) or _is_section(key):
                raise UsageError(f"unknown setting {key!r}")
        merged: dict[str, Any] = {}
        for origin, values in (("file", file_flat), ("cli", dict(cli_overrides or {}))):
            _split_path_list(values)
            for key, raw in values.items():
                src.origin[key] = origin
                merged[key] = _coerce(_schema(Config)[key], raw, src)
            if origin == "cli":
                _drop_displaced_alternatives(merged, values, src)
        if "capture.read_pcap" not in merged or merged["capture.read_pcap"] is None:
            merged.pop("read_pcap_files", None)  # displaced by -i, or set to ""
        for key, value in merged.items():
            _check_limits(_schema(Config)[key], value, src)
        _raise_soft_minimums(merged, src)
        if config_path is not None:
            merged["config_path"] = Path(config_path)
        cfg = _build(cls, merged, "")
        _check_consistency(cfg, src)
        return cfg


def resolve_attr(cfg: Config, dotted: str) -> Any:
    """``cfg.a.b.c`` for ``"a.b.c"`` (attributes and properties alike)."""
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a TOML file; unreadable file, bad encoding or bad syntax -> ConfigError.

    The file is decoded here rather than by ``tomllib.load`` so that a file in another
    encoding (Latin-1 comments are the usual culprit) is one line naming the byte and its
    line, not a UnicodeDecodeError traceback.
    """
    name = os.fspath(path)
    if "\x00" in name:  # open() would raise ValueError (only the API can pass one)
        raise UsageError("--config: the path contains a NUL byte")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{name}: cannot read config file: {reason}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}); "
            "TOML files must be UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already carries "(at line L, column C)".
        raise ConfigError(f"{name}: invalid TOML: {exc}") from exc


def load_config(
    path: str | os.PathLike[str] | None = None,
    cli_overrides: Mapping[str, Any] | None = None,
    *,
    cli_labels: Mapping[str, str] | None = None,
) -> Config:
    """Read ``path`` (if any) and build a validated Config with ``cli_overrides`` on top."""
    file_values = load_toml(path) if path is not None else {}
    config_path = Path(path) if path is not None else None
    return Config.from_sources(
        file_values, cli_overrides, config_path=config_path, cli_labels=cli_labels
    )


# --------------------------------------------------------------------------------------
# Schema derived from the dataclasses
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One leaf setting: dotted key, value kind, default and limits (from field metadata)."""

    key: str
    kind: str  # bool | int | float | str | optstr | path | optint
    default: Any
    meta: Mapping[str, Any]


_KINDS: dict[Any, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    str | None: "optstr",
    Path | None: "path",
    int | None: "optint",
    tuple[Path, ...]: "paths",
}


def _split_path_list(values: dict[str, Any]) -> None:
    """``capture.read_pcap`` given as a list (a file set): the first path stays the key's
    value (what every single-file code path reads), the whole list goes to
    ``read_pcap_files``. A one-element list is a plain path."""
    raw = values.get("capture.read_pcap")
    if isinstance(raw, list | tuple):
        values["read_pcap_files"] = list(raw) if len(raw) > 1 else []
        values["capture.read_pcap"] = raw[0] if raw else None
    elif "capture.read_pcap" in values:
        values["read_pcap_files"] = []


@functools.cache
def _schema(cls: type) -> dict[str, FieldSpec]:
    """Every leaf setting reachable from ``cls``, by dotted key, in declaration order."""
    out: dict[str, FieldSpec] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            for key, spec in _schema(typing.cast(type, tp)).items():
                out[f"{f.name}.{key}"] = dataclasses.replace(spec, key=f"{f.name}.{key}")
            continue
        # Leaf settings always have a plain default; only sections use default_factory.
        out[f.name] = FieldSpec(f.name, _KINDS[tp], f.default, f.metadata)
    return out


@functools.cache
def _sections(cls: type = Config) -> frozenset[str]:
    """Dotted names of every table (``"analysis.anomalies.syn_flood"``...)."""
    out: set[str] = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.add(f.name)
            out.update(f"{f.name}.{s}" for s in _sections(typing.cast(type, tp)))
    return frozenset(out)


def _is_section(key: str) -> bool:
    return key in _sections()


def file_keys() -> list[str]:
    """Every dotted key a config file may set (what ``netscope.example.toml`` must cover)."""
    return [k for k in _schema(Config) if "." in k]


def defaults_flat() -> dict[str, Any]:
    """Dotted key -> default value, for docs and tests."""
    return {k: spec.default for k, spec in _schema(Config).items()}


def _build(cls: type[_T], merged: Mapping[str, Any], prefix: str) -> _T:
    """Instantiate ``cls`` from dotted values; keys not in ``merged`` keep their defaults."""
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(typing.cast(type, tp), merged, f"{key}.")
        elif key in merged:
            kwargs[f.name] = merged[key]
    return cls(**kwargs)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


@dataclass
class _Sources:
    """Where each value came from, so an error can point at the file or the flag."""

    config_path: Path | None
    labels: dict[str, str]
    origin: dict[str, str] = field(default_factory=dict)

    def name(self, key: str) -> str:
        """``--snaplen`` if the flag set it, else the dotted key."""
        if self.origin.get(key) == "cli":
            return self.labels.get(key, key)
        return key

    def fail(self, keys: tuple[str, ...], message: str, hint: str | None = None) -> UsageError:
        """The error to raise: ConfigError prefixed with the file if the file is involved."""
        if self.config_path is not None and any(self.origin.get(k) == "file" for k in keys):
            return ConfigError(f"{self.config_path}: {message}", hint)
        return UsageError(message, hint)


def _flatten_file(values: Mapping[str, Any], src: _Sources) -> dict[str, Any]:
    """Nested TOML tables -> ``{dotted key: value}``; unknown keys and misplaced tables fail."""
    out: dict[str, Any] = {}
    schema = _schema(Config)
    file_ok = set(file_keys())

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for name, value in table.items():
            key = f"{prefix}{name}"
            if _is_section(key):
                if not isinstance(value, dict):
                    src.origin[key] = "file"
                    raise src.fail((key,), f"{key} must be a table, got {_toml_type(value)}")
                walk(value, f"{key}.")
            elif key in file_ok:
                out[key] = value
            else:
                src.origin[key] = "file"
                raise src.fail((key,), f"unknown key {key!r}", _suggest(key, schema))

    walk(values, "")
    return out


def _suggest(key: str, schema: Mapping[str, FieldSpec]) -> str | None:
    """A "did you mean" hint for a misspelt key (the commonest config mistake)."""
    close = difflib.get_close_matches(key, list(schema) + sorted(_sections()), n=1)
    return f"did you mean {close[0]!r}?" if close else None


_TYPE_WORDS = {
    "bool": "a boolean (true/false)",
    "int": "an integer",
    "optint": "an integer",
    "float": "a number",
    "str": "a string",
    "optstr": "a string",
    "path": "a path string",
    "paths": "a path string or a list of them",
}


def _toml_type(value: object) -> str:
    """The TOML name of a value's type, for "must be X, got Y" messages."""
    names = [
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (list, "array"),
        (dict, "table"),
    ]
    for tp, word in names:
        if isinstance(value, tp):
            return word
    return type(value).__name__


def _coerce(spec: FieldSpec, raw: Any, src: _Sources) -> Any:
    """Check the type of one value and normalise it ("" -> None for optional strings/paths).

    ``bool`` is a subclass of ``int`` in Python, so it is excluded explicitly: ``snaplen =
    true`` is a mistake, not 1. Integers are accepted where a float is expected.
    """
    kind = spec.kind
    ok = {
        "bool": isinstance(raw, bool),
        "int": isinstance(raw, int) and not isinstance(raw, bool),
        "optint": raw is None or (isinstance(raw, int) and not isinstance(raw, bool)),
        "float": isinstance(raw, int | float) and not isinstance(raw, bool),
        "str": isinstance(raw, str),
        "optstr": raw is None or isinstance(raw, str),
        "path": raw is None or isinstance(raw, str | os.PathLike),
        "paths": isinstance(raw, list | tuple)
        and all(isinstance(p, str | os.PathLike) and os.fspath(p) != "" for p in raw),
    }[kind]
    if not ok:
        got = _toml_type(raw)
        if isinstance(raw, bool):
            got += " true" if raw else " false"
        elif not isinstance(raw, dict | list):
            got += f" {raw!r}"
        raise src.fail((spec.key,), f"{src.name(spec.key)} must be {_TYPE_WORDS[kind]}, got {got}")
    if kind == "float":
        return float(raw)
    if kind in ("optstr", "path") and (raw is None or os.fspath(raw) == ""):
        return None
    if kind == "paths":
        if any("\x00" in os.fspath(p) for p in raw):
            raise src.fail((spec.key,), "capture.read_pcap must not contain a NUL byte")
        return tuple(Path(p) for p in raw)
    if kind == "path":
        if "\x00" in os.fspath(raw):
            raise src.fail((spec.key,), f"{src.name(spec.key)} must not contain a NUL byte")
        return Path(raw)
    return raw


def _check_limits(spec: FieldSpec, value: Any, src: _Sources) -> None:
    """Apply the documented range (``netscope.limits.RANGES``) and ``nonempty`` of one field."""
    if value is None:
        return
    name = src.name(spec.key)
    if isinstance(value, float) and not math.isfinite(value):
        raise src.fail((spec.key,), f"{name} must be a finite number (got {value})")
    rng = RANGES.get(spec.key)
    bad = rng.violation(value) if rng is not None and not isinstance(value, str) else None
    if rng is not None and bad is not None:
        hint = f"range {rng.describe()}: {rng.why}"
        raise src.fail((spec.key,), f"{name} must be {bad} (got {value})", hint)
    if spec.meta.get("nonempty") and value == "":
        raise src.fail((spec.key,), f"{name} must not be empty")


def _raise_soft_minimums(merged: dict[str, Any], src: _Sources) -> None:
    """Raise values below a field's ``soft_ge`` to it, with a ``warning:`` line on stderr.

    For settings where a too-small value has an obvious meaning ("as fast as allowed"), a
    run that the original NetScope accepted keeps working instead of failing on exit 2.
    """
    for key, value in merged.items():
        floor = _schema(Config)[key].meta.get("soft_ge")
        if floor is not None and value is not None and value < floor:
            merged[key] = floor
            print(
                f"warning: {src.name(key)} = {value} is below the minimum {floor}; using {floor}",
                file=sys.stderr,
            )


# Settings that are alternatives to each other. A flag choosing one alternative displaces
# the others coming from the file: `--read-pcap x.pcap` with `interface = "eth0"` in the file
# means "read x.pcap", not "conflict".
_ALTERNATIVES: tuple[tuple[str, ...], ...] = (
    ("capture.interface", "capture.read_pcap"),
    ("web.auth.password", "web.auth.password_file"),
)


def _drop_displaced_alternatives(
    merged: dict[str, Any], cli: Mapping[str, Any], src: _Sources
) -> None:
    """Remove file values whose alternative was just set by a flag."""
    for group in _ALTERNATIVES:
        chosen = [k for k in group if k in cli and merged.get(k) is not None]
        if not chosen:
            continue
        for other in group:
            if other not in chosen and src.origin.get(other) == "file":
                merged.pop(other, None)
                src.origin.pop(other)


def _check_consistency(cfg: Config, src: _Sources) -> None:
    """Rules that involve more than one key (SPEC §4/§5)."""
    cap, out, tls, auth = cfg.capture, cfg.output, cfg.web.tls, cfg.web.auth
    keys: tuple[str, ...]
    if cap.interface is not None and cap.read_pcap is not None:
        keys = ("capture.interface", "capture.read_pcap")
        raise src.fail(keys, f"{_names(keys, src)} are both set; choose live or offline input")
    if cfg.run.replay_speed > 0 and cap.read_pcap is None and not cfg.list_interfaces:
        keys = ("run.replay_speed",)
        raise src.fail(keys, f"{src.name(keys[0])} paces offline input; it needs --read-pcap")
    if (out.write_pcap_rotate_mb > 0) != (out.write_pcap_max_files > 0):
        keys = ("output.write_pcap_rotate_mb", "output.write_pcap_max_files")
        raise src.fail(
            keys,
            f"{_names(keys, src)} go together: set both or neither "
            f"(got {out.write_pcap_rotate_mb} and {out.write_pcap_max_files})",
        )
    if out.write_pcap_rotate_mb > 0 and out.write_pcap is None:
        keys = ("output.write_pcap_rotate_mb", "output.write_pcap")
        raise src.fail(
            keys,
            f"{_names(keys[:1], src)} needs a pcap output: nothing to rotate",
            "add --write-pcap PATH, or output.write_pcap in the config file",
        )
    if out.ipfix.collector is not None:
        from netscope.sinks.ipfix.sender import parse_target

        try:
            parse_target(out.ipfix.collector)
        except ValueError as exc:
            keys = ("output.ipfix.collector",)
            raise src.fail(keys, f"{src.name(keys[0])}: {exc}") from None
    if tls.enabled and (tls.cert_path is None or tls.key_path is None):
        keys = ("web.tls.enabled", "web.tls.cert_path", "web.tls.key_path")
        raise src.fail(
            keys,
            f"{src.name(keys[0])} needs both web.tls.cert_path and web.tls.key_path",
            "cert_path and key_path in [web.tls], or --web-tls-cert and --web-tls-key",
        )
    if auth.enabled:
        _check_auth(auth, src)


# The refusal of an empty (or whitespace-only) Basic-auth password, inline or read from
# web.auth.password_file (netscope.web.password raises it for the file, at start).
EMPTY_PASSWORD = "web.auth needs a non-empty password"


def _check_auth(auth: WebAuthConfig, src: _Sources) -> None:
    """Enabled Basic auth: a non-empty user and exactly one password source.

    An inline ``password = ""`` arrives here as None (empty optional strings are unset), so
    "given but empty" is told apart from "not given" by where the key came from.
    """
    keys: tuple[str, ...]
    if not auth.username:
        keys = ("web.auth.enabled", "web.auth.username")
        raise src.fail(
            keys,
            f"{src.name(keys[0])} needs a non-empty web.auth.username",
            "--web-auth-user USER",
        )
    given_empty = (
        auth.password is None
        and "web.auth.password" in src.origin
        and "web.auth.password_file" not in src.origin
    )
    if given_empty or (auth.password is not None and not auth.password.strip()):
        keys = ("web.auth.password",)
        raise src.fail(keys, EMPTY_PASSWORD, f"{src.name(keys[0])} is empty or only whitespace")
    if (auth.password is None) == (auth.password_file is None):
        keys = ("web.auth.enabled", "web.auth.password", "web.auth.password_file")
        which = "both are set" if auth.password is not None else "neither is set"
        raise src.fail(
            keys,
            f"{src.name(keys[0])} needs exactly one of web.auth.password and "
            f"web.auth.password_file ({which})",
            "password or password_file in [web.auth], or --web-auth-pass-file",
        )


def _names(keys: tuple[str, ...], src: _Sources) -> str:
    return " and ".join(src.name(k) for k in keys)

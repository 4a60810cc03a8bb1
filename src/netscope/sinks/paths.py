"""Refuse, before anything is opened for writing, a run whose outputs would destroy files.

``netscope --read-pcap s.pcap --write-pcap s.pcap`` truncates its own input before reading
it; ``--export-json s.pcap`` replaces it at exit; ``--export-json f --export-csv f`` keeps
only one of the two. :func:`check_outputs` makes each of these a usage error (exit 2):

* an output that is the same file as an input (the capture file, the config file, the
  dashboard's TLS certificate/key or password file): same device and inode when the file
  exists (so hard links and symlinks are caught), the same absolute path otherwise;
* two outputs naming the same file (same rule; a path that does not exist yet compares by
  its symlink-resolved absolute path);
* two outputs on standard output (``-``, ``/dev/stdout``…): their bytes would interleave;
* with pcap rotation, an input or another output that is a segment of the rotated series
  (rotation may delete it), and a rotation target that is not a file (``-``, a device).

Devices and FIFOs other than standard output may be named by several outputs
(``/dev/null`` twice is fine): writing through them destroys nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from netscope.config import Config
from netscope.errors import UsageError
from netscope.sinks import segments, targets

Identity = tuple[object, ...]
INPUT_FLAGS = frozenset(
    {"--read-pcap", "--config", "--web-tls-cert", "--web-tls-key", "--web-auth-pass-file"}
)


def outputs(cfg: Config) -> list[tuple[str, Path]]:
    """``(flag, path)`` of every file the run will write."""
    out = cfg.output
    found = [
        ("--write-pcap", out.write_pcap),
        ("--export-json", out.export_json),
        ("--export-csv", out.export_csv),
        ("--expired-flows-jsonl", out.expired_flows_jsonl),
        ("--export-zeek-conn", out.export_zeek_conn),
        ("--export-zeek-conn-json", out.export_zeek_conn_json),
        ("--export-parquet", out.export_parquet),
    ]
    if cfg.analysis.anomalies.enabled:  # otherwise the alerts file is never opened
        found.append(("--alerts-jsonl", cfg.analysis.alerts_jsonl))
    return [(flag, path) for flag, path in found if path is not None]


def inputs(cfg: Config) -> list[tuple[str, Path]]:
    """``(flag, path)`` of every file the run reads."""
    web = cfg.web
    found: list[tuple[str, Path | None]] = [("--read-pcap", p) for p in cfg.capture_paths]
    found.append(("--config", cfg.config_path))
    if web.enabled and web.tls.enabled:
        found += [("--web-tls-cert", web.tls.cert_path), ("--web-tls-key", web.tls.key_path)]
    if web.enabled and web.auth.enabled:
        found.append(("--web-auth-pass-file", web.auth.password_file))
    return [(flag, path) for flag, path in found if path is not None]


def identity(path: Path) -> Identity | None:
    """What makes two names the same file; None for a device/FIFO (safe to share)."""
    kind = targets.classify(path)
    if kind is targets.Kind.STDOUT:
        return ("stdout",)
    if kind is targets.Kind.STDERR:
        return None  # shared with our own messages anyway; nothing there to destroy
    if kind is targets.Kind.STREAM:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.fspath(targets.resolve_file(path)))
    return ("inode", st.st_dev, st.st_ino)


def _rotating(cfg: Config) -> bool:
    return cfg.output.write_pcap is not None and cfg.output.write_pcap_rotate_mb > 0


def check_outputs(cfg: Config) -> None:
    """Raise UsageError if an output would overwrite an input or another output."""
    rotating = _rotating(cfg)
    seen: dict[Identity, tuple[str, Path]] = {}
    for flag, path in inputs(cfg):
        ident = identity(path)
        if ident is not None and ident[0] == "inode":
            seen.setdefault(ident, (flag, path))
    for flag, path in outputs(cfg):
        if rotating and flag == "--write-pcap":
            _check_rotation_target(path)
            continue  # the unsuffixed path itself is never written
        ident = identity(path)
        if ident is None:
            continue
        if ident in seen:
            raise _clash(flag, path, *seen[ident])
        seen[ident] = (flag, path)
    if rotating:
        _check_series(cfg)


def writes_to_stdout(cfg: Config) -> bool:
    """True when an output goes to standard output: the run's own text (packet lines,
    summary) then goes to standard error, as tcpdump does with ``-w -``."""
    return any(targets.classify(path) is targets.Kind.STDOUT for _, path in outputs(cfg))


def _clash(flag: str, path: Path, other_flag: str, other: Path) -> UsageError:
    if other_flag in INPUT_FLAGS:
        return UsageError(
            f"{flag} {path} is the same file as {other_flag} {other}: writing it would "
            "destroy the input",
            "choose another output path",
        )
    if identity(path) == ("stdout",):
        return UsageError(
            f"{other_flag} {other} and {flag} {path} both write to standard output",
            "send one of them to a file",
        )
    return UsageError(
        f"{other_flag} {other} and {flag} {path} name the same file: one would replace the other",
        "choose different output paths",
    )


def _check_rotation_target(path: Path) -> None:
    if targets.classify(path) is not targets.Kind.FILE:
        raise UsageError(
            f"--write-pcap-rotate-mb needs a file path to number segments after, "
            f"not {path} (standard output or a device)",
            "drop the rotation flags or name a file",
        )


def _check_series(cfg: Config) -> None:
    """No input and no other output may be a segment of the rotated series."""
    base = cfg.output.write_pcap
    assert base is not None
    for flag, path in [*inputs(cfg), *outputs(cfg)]:
        if flag == "--write-pcap":
            continue
        real = targets.resolve_file(path)
        if segments.segment_index(segments_path(base), real) is not None:
            raise UsageError(
                f"{flag} {path} is a segment of the --write-pcap {base} rotation series, "
                "which rotation numbers and deletes",
                "choose another output path",
            )


def segments_path(base: Path) -> Path:
    """The rotation base with its directory resolved (symlinked directories compare equal)."""
    parent = os.path.realpath(os.path.dirname(os.path.abspath(base)))
    return Path(parent) / base.name

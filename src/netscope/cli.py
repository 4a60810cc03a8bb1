"""The ``netscope`` command: flags (SPEC §4) -> Config -> runner.

Only flags the user actually typed override the config file. Every option is declared with
``argparse.SUPPRESS`` as its default, so the parsed namespace holds exactly the flags that
were given, keyed by the dotted config key they set (``dest="capture.snaplen"``); that dict
is handed to :meth:`netscope.config.Config.from_sources` as the override layer.

``netscope --help`` and ``--version`` must be fast and must not import numpy or numba
(SPEC §2): this module imports only the standard library and the cheap config/errors
modules; the engine is imported inside :func:`main`, after parsing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from netscope import logutil, signals
from netscope._version import __version__
from netscope.config import Config, defaults_flat, load_config
from netscope.errors import NetScopeError, UsageError

PROG = "netscope"

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and calling ``sys.exit``.

    That keeps one error format for every usage problem (``error: ...`` and exit 2) whether
    argparse or our own checks found it.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see '{PROG} --help'")


@dataclass(frozen=True)
class CliArgs:
    """What the command line said: overrides by dotted key, their flag names, the config file."""

    overrides: dict[str, Any]
    labels: dict[str, str]
    config_path: str | None

    @property
    def verbosity(self) -> int:
        return int(self.overrides.get("verbosity", 0))


# --------------------------------------------------------------------------------------
# Parser construction
# --------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A default as shown in ``--help``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else str(value)


class _Options:
    """Adds options to a parser and remembers which flag sets which config key."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.labels: dict[str, str] = {}
        self.defaults = defaults_flat()

    def value(
        self,
        group: argparse._ArgumentGroup,
        flags: Sequence[str],
        key: str,
        kind: Callable[[str], Any],
        metavar: str,
        text: str,
        *,
        show_default: bool = True,
    ) -> None:
        """An option taking one argument, stored under ``key``."""
        if show_default:
            text = f"{text} (default: {_show(self.defaults[key])})"
        group.add_argument(*flags, dest=key, type=kind, metavar=metavar, help=text)
        self.labels[key] = flags[-1]

    def switch(
        self, group: argparse._ArgumentGroup, name: str, key: str, text: str, short: str = ""
    ) -> None:
        """A ``--name`` / ``--no-name`` pair; argparse rejects giving both."""
        pair = group.add_mutually_exclusive_group()
        flags = [short, f"--{name}"] if short else [f"--{name}"]
        default = _show(self.defaults[key])
        pair.add_argument(
            *flags,
            dest=key,
            action="store_const",
            const=True,
            help=f"{text} (default: {default})",
        )
        pair.add_argument(f"--no-{name}", dest=key, action="store_const", const=False, help="")
        self.labels[key] = f"--{name}"


def replay_speed(text: str) -> float:
    """``--replay-speed``: a positive factor, or ``max`` (stored as 0: no pacing)."""
    if text.strip().lower() == "max":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'max', got {text!r}") from None
    if not value > 0:  # also NaN
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'max', got {text!r}")
    return value


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The argument parser and the map dotted key -> flag used in error messages."""
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s [OPTIONS] [PATH ...]",
        description="Packet capture and network analysis at native speed.",
        epilog="Exit codes: 0 success (Ctrl-C included), 1 runtime failure, 2 usage or config "
        "error, 130/143 Ctrl-C/SIGTERM during start-up.",
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,  # --stat must not silently mean --stats: flags are a contract
        add_help=False,
    )
    opts = _Options(parser)
    _add_input(parser, opts)
    _add_output(parser, opts)
    _add_flows(parser, opts)
    _add_web(parser, opts)
    _add_general(parser, opts)
    return parser, opts.labels


def _add_input(parser: argparse.ArgumentParser, o: _Options) -> None:
    g = parser.add_argument_group("input")
    o.value(
        g,
        ["-i", "--interface"],
        "capture.interface",
        str,
        "IFACE",
        "live capture interface (default: the system default interface)",
        show_default=False,
    )
    g.add_argument(
        "-r",
        "--read-pcap",
        dest="capture.read_pcap",
        action="append",
        metavar="PATH",
        help="read pcap/pcapng files: a file, a directory or a glob; repeat it (or give the "
        "paths as arguments) to read a set as one capture; conflicts with -i and the "
        "promiscuous flags",
    )
    o.labels["capture.read_pcap"] = "--read-pcap"
    parser.add_argument("paths", nargs="*", metavar="PATH", help=argparse.SUPPRESS)
    g.add_argument(
        "--dask",
        dest="dask",
        metavar="ADDRESS",
        help="analyse the --read-pcap set on a Dask cluster: local:N (N local worker "
        "processes) or a scheduler address such as tcp://host:8786 (needs netscope[dask])",
    )
    g.add_argument(
        "--dask-tasks",
        dest="dask_tasks",
        type=int,
        metavar="N",
        help="tasks (flow shards) for --dask (default: one per worker thread)",
    )
    g.add_argument(
        "--dask-workers",
        dest="dask_workers",
        type=int,
        metavar="N",
        help="worker processes for --dask local (default: 2; local:N also sets it)",
    )
    o.value(g, ["-f", "--filter"], "capture.filter", str, "EXPR", "BPF filter expression")
    o.value(
        g,
        ["-c", "--count"],
        "run.count",
        int,
        "N",
        "stop after N packets; 0 = until Ctrl-C / end of file",
    )
    o.value(
        g,
        ["--replay-speed"],
        "run.replay_speed",
        replay_speed,
        "X",
        "pace offline input by its capture timestamps: 1 = as captured, 10 = ten times "
        "faster, max = as fast as possible (default: max)",
        show_default=False,
    )
    o.switch(g, "promiscuous", "capture.promiscuous", "promiscuous mode", short="-p")
    o.value(g, ["-s", "--snaplen"], "capture.snaplen", int, "N", "bytes captured per packet")
    o.value(g, ["-t", "--timeout-ms"], "capture.timeout_ms", int, "MS", "read timeout")
    g.add_argument(
        "-l",
        "--list-interfaces",
        dest="list_interfaces",
        action="store_const",
        const=True,
        help="print name, description and addresses of each interface, then exit",
    )


def _add_output(parser: argparse.ArgumentParser, o: _Options) -> None:
    g = parser.add_argument_group("output")
    o.switch(g, "hex-dump", "output.hex_dump", "detailed per-packet view with hex preview")
    o.switch(g, "quiet", "output.quiet", "no per-packet lines")
    g.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="count",
        help="more log output: -v INFO, -vv DEBUG and detailed packet view, "
        "-vvv TRACE (default: warnings only); --verbose is -v and counts the same way",
    )
    o.value(g, ["--write-pcap"], "output.write_pcap", str, "PATH", "write packets to a pcap")
    o.value(
        g,
        ["--write-pcap-rotate-mb"],
        "output.write_pcap_rotate_mb",
        int,
        "MB",
        "rotate the pcap every MB megabytes (with --write-pcap-max-files)",
    )
    o.value(
        g,
        ["--write-pcap-max-files"],
        "output.write_pcap_max_files",
        int,
        "N",
        "keep at most N rotated segments (with --write-pcap-rotate-mb)",
    )
    o.switch(
        g,
        "write-pcap-nanos",
        "output.write_pcap_nanos",
        "nanosecond pcap timestamps when the input has them (default: microseconds)",
    )
    o.value(g, ["--export-json"], "output.export_json", str, "PATH", "flow table as JSON at exit")
    o.value(g, ["--export-csv"], "output.export_csv", str, "PATH", "flow table as CSV at exit")
    o.value(
        g,
        ["--expired-flows-jsonl"],
        "output.expired_flows_jsonl",
        str,
        "PATH",
        "append expired/evicted flows as JSON lines",
    )
    o.value(
        g,
        ["--export-ipfix"],
        "output.ipfix.collector",
        str,
        "HOST:PORT",
        "export flows as IPFIX to a collector (UDP; tcp://HOST:PORT for TCP)",
    )
    o.value(
        g,
        ["--active-timeout-s"],
        "output.ipfix.active_timeout_s",
        float,
        "SECS",
        "IPFIX: export long flows this often (delta counts); 0 = only when they end",
    )
    o.value(
        g,
        ["--export-zeek-conn"],
        "output.export_zeek_conn",
        str,
        "PATH",
        "Zeek-compatible conn.log (Zeek's TSV log format)",
    )
    o.value(
        g,
        ["--export-zeek-conn-json"],
        "output.export_zeek_conn_json",
        str,
        "PATH",
        "Zeek-compatible conn.log as JSON lines",
    )
    o.value(
        g,
        ["--export-parquet"],
        "output.export_parquet",
        str,
        "PATH",
        "flows as Parquet, expired ones streamed during the run (a directory: Hive dataset)",
    )
    o.value(
        g,
        ["--community-id-seed"],
        "output.community_id_seed",
        int,
        "N",
        "Community ID seed in flow exports (default 0)",
    )


def _add_flows(parser: argparse.ArgumentParser, o: _Options) -> None:
    g = parser.add_argument_group("flows, stats and anomalies")
    o.switch(g, "stats", "stats.enabled", "periodic stats lines")
    o.value(g, ["--stats-interval-ms"], "stats.interval_ms", int, "MS", "stats interval")
    o.value(g, ["--top-flows"], "stats.top_flows", int, "N", "top flows per stats line")
    o.value(
        g,
        ["--flow-timeout-s"],
        "flow.timeout_secs",
        float,
        "SECS",
        "flow inactivity timeout; 0 = never",
    )
    o.value(
        g,
        ["--max-flows"],
        "flow.max_flows",
        int,
        "N",
        "flow table cap, oldest evicted; 0 = unlimited",
    )
    o.switch(g, "anomalies", "analysis.anomalies.enabled", "SYN flood / port scan detection")
    o.value(
        g, ["--alerts-jsonl"], "analysis.alerts_jsonl", str, "PATH", "append alerts as JSON lines"
    )


def _add_web(parser: argparse.ArgumentParser, o: _Options) -> None:
    g = parser.add_argument_group("web dashboard")
    o.switch(g, "web", "web.enabled", "serve the live dashboard and /metrics")
    o.value(g, ["--web-bind"], "web.bind", str, "ADDR", "dashboard bind address")
    o.value(g, ["--web-port"], "web.port", int, "PORT", "dashboard port")
    o.switch(g, "web-tls", "web.tls.enabled", "HTTPS for the dashboard")
    o.value(g, ["--web-tls-cert"], "web.tls.cert_path", str, "PATH", "TLS certificate (PEM)")
    o.value(g, ["--web-tls-key"], "web.tls.key_path", str, "PATH", "TLS private key (PEM)")
    o.switch(g, "web-auth", "web.auth.enabled", "HTTP Basic auth on every route")
    o.value(
        g,
        ["--web-auth-user"],
        "web.auth.username",
        str,
        "USER",
        "Basic auth user name",
        show_default=False,
    )
    o.value(
        g,
        ["--web-auth-pass-file"],
        "web.auth.password_file",
        str,
        "PATH",
        "file holding the Basic auth password",
    )


def _add_general(parser: argparse.ArgumentParser, o: _Options) -> None:
    g = parser.add_argument_group("pipeline")
    o.switch(g, "pipeline", "pipeline.enabled", "sharded multi-core pipeline")
    o.value(
        g,
        ["--workers"],
        "pipeline.workers",
        int,
        "N",
        "shard workers; > 0 implies --pipeline; 0 = half the CPUs, 1..8",
    )
    g = parser.add_argument_group("general")
    g.add_argument("--config", dest="config", metavar="PATH", help="TOML config file")
    g.add_argument(
        "--synthetic-flows",
        dest="synthetic_flows",
        type=int,
        metavar="N",
        help="insert N scale-mode flows, report time and memory against the budget, exit",
    )
    g.add_argument("-h", "--help", action="help", help="show this help and exit")
    g.add_argument(
        "-V",
        "--version",
        action="version",
        version=f"{PROG} {__version__}",
        help="show the version and exit",
    )


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> CliArgs:
    """Parse flags, apply flag-level conflicts and implications.

    Raises UsageError for bad flags; ``--help``/``--version`` raise SystemExit(0) as argparse
    does.
    """
    parser, labels = build_parser()
    given = dict(vars(parser.parse_args(argv)))
    _join_capture_paths(given)
    config_path = given.pop("config", None)
    labels = {
        **labels,
        "synthetic_flows": "--synthetic-flows",
        "verbosity": "-v",
        "dask": "--dask",
        "dask_tasks": "--dask-tasks",
        "dask_workers": "--dask-workers",
    }
    _check_flag_conflicts(given)
    _apply_implications(given)
    return CliArgs(overrides=given, labels=labels, config_path=config_path)


def _join_capture_paths(given: dict[str, Any]) -> None:
    """``-r``/``--read-pcap`` (repeatable) and positional paths: one value, a plain path
    when there is one (as before file sets existed), else the list (config.py splits it)."""
    paths = list(given.pop("capture.read_pcap", None) or []) + list(given.pop("paths", None) or [])
    if len(paths) == 1:
        given["capture.read_pcap"] = paths[0]
    elif paths:
        given["capture.read_pcap"] = paths


def _check_flag_conflicts(given: dict[str, Any]) -> None:
    """Conflicts between flags that argparse's exclusive groups cannot express."""
    if "capture.read_pcap" in given and "capture.interface" in given:
        raise UsageError(
            "--read-pcap conflicts with -i/--interface",
            hint="read a file or capture from an interface, not both",
        )
    if "capture.read_pcap" in given and "capture.promiscuous" in given:
        flag = "-p/--promiscuous" if given["capture.promiscuous"] else "--no-promiscuous"
        raise UsageError(
            f"--read-pcap conflicts with {flag}",
            hint="promiscuous mode applies to live capture only",
        )
    if given.get("pipeline.workers", 0) > 0 and given.get("pipeline.enabled") is False:
        raise UsageError("--workers N (N > 0) conflicts with --no-pipeline")


def _apply_implications(given: dict[str, Any]) -> None:
    """``--workers N`` with N > 0 turns the pipeline on (SPEC §4)."""
    if given.get("pipeline.workers", 0) > 0:
        given["pipeline.enabled"] = True


def build_config(args: CliArgs) -> Config:
    """Load ``--config`` (if any) and apply the flags on top: a validated Config."""
    cfg = load_config(args.config_path, args.overrides, cli_labels=args.labels)
    log.debug("configuration: %s", cfg)
    return cfg


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def _report(exc: NetScopeError) -> int:
    print(f"error: {exc.one_line()}", file=sys.stderr)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run ``netscope`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Errors print one ``error: ...`` line on stderr: exit 2 for usage/config errors, 1 for
    runtime failures. SIGINT/SIGTERM go to :mod:`netscope.signals`, installed before the
    heavy imports: during start-up they end the run here with 130/143; once the capture
    runs they only ask it to stop (the runner still prints the summary and writes the
    exports, exit 0).
    """
    with signals.handling():
        try:
            return _main(argv)
        except signals.Interrupted as exc:
            return exc.exit_code


def _main(argv: list[str] | None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # --help / --version: argparse already printed
        return exc.code if isinstance(exc.code, int) else 0
    except NetScopeError as exc:
        return _report(exc)
    logutil.configure(args.verbosity)
    try:
        cfg = build_config(args)
        from netscope.runner import run  # heavy (numpy/numba): only after parsing

        return run(cfg)
    except NetScopeError as exc:
        return _report(exc)
    except KeyboardInterrupt:  # Ctrl-C during set-up (e.g. compiling a long -f filter)
        return 130

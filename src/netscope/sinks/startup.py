"""The start-up lines on stdout, in the original NetScope's words, and start-up warnings.

The original printed, with ``println!`` (stdout) and whether or not ``--quiet`` was given::

    NetScope v0.1.0
    Reading packets from pcap: trace.pcap     (or: Capturing on interface: eth0)
    Filter: tcp port 443                      (only with a filter)
    Datalink: Ethernet
    Pipeline: 4 worker shards                 (only in pipeline mode)
    <blank line>

Scripts written against it look for these lines, so they are printed the same way. The
``Datalink:`` line needs the capture's link type, which a pcapng file only declares in its
interface blocks: :class:`StartupBanner` prints the first lines at once and the rest when the
link types are known (at the first batch, or at the end of an empty capture).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TextIO

from netscope.config import Config

# The original's Display of its LinkType, extended with the link types only we decode.
DATALINK_NAMES = {
    0: "Loopback (NULL)",
    1: "Ethernet",
    12: "Raw IP",
    101: "Raw IP",
    108: "Loopback (LOOP)",
    113: "Linux SLL",
    228: "Raw IPv4",
    229: "Raw IPv6",
    276: "Linux SLL2",
}


def datalink_name(linktype: int) -> str:
    """``Ethernet``, ``Linux SLL``, … or ``Unsupported(N)`` as the original wrote it."""
    return DATALINK_NAMES.get(linktype, f"Unsupported({linktype})")


def header_lines(cfg: Config, version: str, interface: str | None = None) -> list[str]:
    """``NetScope vX``, the input line and (if any) the ``Filter:`` line."""
    lines = [f"NetScope v{version}"]
    if cfg.capture.read_pcap is not None:
        paths = [str(p) for p in cfg.capture_paths]
        shown = ", ".join(paths) if len(paths) <= 3 else f"{paths[0]}, … ({len(paths)} paths)"
        lines.append(f"Reading packets from pcap: {shown}")
    else:
        lines.append(f"Capturing on interface: {interface or cfg.capture.interface or '(default)'}")
    if cfg.capture.filter:
        lines.append(f"Filter: {cfg.capture.filter}")
    return lines


def trailer_lines(cfg: Config, linktypes: Iterable[int]) -> list[str]:
    """``Datalink:`` (each link type, in order of appearance), ``Pipeline:``, a blank line."""
    names = list(dict.fromkeys(datalink_name(lt) for lt in linktypes))
    lines = [f"Datalink: {', '.join(names)}"] if names else []
    if cfg.pipeline.enabled:
        lines.append(f"Pipeline: {cfg.pipeline.worker_count()} worker shards")
    lines.append("")
    return lines


class StartupBanner:
    """Prints the header now and the trailer once, when the link types are known."""

    def __init__(self, out: TextIO, cfg: Config, interface: str | None = None) -> None:
        from netscope import __version__

        self._out = out
        self._cfg = cfg
        self._done = False
        self._write(header_lines(cfg, __version__, interface))

    def finish(self, linktypes: Iterable[int]) -> None:
        """Print ``Datalink:``/``Pipeline:`` (first call only)."""
        if self._done:
            return
        self._done = True
        self._write(trailer_lines(self._cfg, linktypes))

    def _write(self, lines: list[str]) -> None:
        # stdout closed early (piped into `head`): the run's own output handling notices at
        # its next write and stops quietly; the banner must not turn it into a traceback
        try:
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()
        except BrokenPipeError:
            pass


def is_loopback_bind(bind: str) -> bool:
    """True when ``bind`` only listens on the local machine (127.0.0.0/8, ::1, localhost)."""
    if bind.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a routable address


def insecure_auth_warning(cfg: Config) -> str | None:
    """The warning for Basic auth served over plain HTTP on a non-loopback address.

    Basic auth sends the password base64-encoded, i.e. readable by anyone on the path;
    without TLS that is only acceptable when the server cannot be reached from elsewhere.
    """
    web = cfg.web
    if not (web.enabled and web.auth.enabled) or web.tls.enabled:
        return None
    if is_loopback_bind(web.bind):
        return None
    return (
        f"warning: web dashboard serves Basic auth without TLS on {web.bind}: passwords cross "
        "the network readable by anyone on the path (enable [web.tls] or --web-tls)"
    )

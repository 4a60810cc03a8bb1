"""Live capture: backend choice, the default interface, and ``--list-interfaces``.

Two backends produce the same batches:

- ``afpacket`` (:mod:`netscope.sources.afpacket`): Linux TPACKET_V3 ring, zero copy. The
  default on Linux.
- ``libpcap`` (:mod:`netscope.sources.libpcap_backend`): the libpcap bundled in the cypcap
  wheel. The default elsewhere, and selectable for comparison.

The backend is chosen with the environment variable ``NETSCOPE_CAPTURE_BACKEND``
(``afpacket``, ``libpcap`` or ``auto``, the default). It is an environment variable rather
than a config key because SPEC §5 fixes the config schema (unknown keys are errors) and the
choice is an operator's or a benchmark's, not part of a capture's definition.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TextIO

from netscope.batch import PacketBatch
from netscope.config import CaptureConfig
from netscope.errors import CaptureError, UsageError
from netscope.sources.base import SourceReport

BACKEND_ENV = "NETSCOPE_CAPTURE_BACKEND"
BACKENDS = ("auto", "afpacket", "libpcap")


class LiveSource(Protocol):
    """What :class:`netscope.live_run.LiveRun` needs from a capture backend."""

    backend: str
    interface: str
    linktype: int
    snaplen: int
    report: SourceReport
    # set when the filter must run in user space on the delivered frames
    user_space_filter: object | None

    def batches(self, stop: Callable[[], bool] = ...) -> Iterator[PacketBatch]: ...

    def stats(self) -> tuple[int, int, int]: ...

    def close(self) -> None: ...


def chosen_backend() -> str:
    """``afpacket`` or ``libpcap``, from ``NETSCOPE_CAPTURE_BACKEND`` and the platform."""
    value = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise UsageError(
            f"{BACKEND_ENV}={value!r} is not a capture backend",
            hint="use afpacket, libpcap or auto",
        )
    if value == "auto":
        return "afpacket" if sys.platform.startswith("linux") else "libpcap"
    if value == "afpacket" and not sys.platform.startswith("linux"):
        raise UsageError("the afpacket backend needs Linux", hint=f"{BACKEND_ENV}=libpcap")
    return value


def default_interface() -> str:
    """The interface used without ``-i``: libpcap's choice (first up, non-loopback)."""
    for dev in _findalldevs():
        flags = int(dev.flags)
        if dev.name in ("any",) or flags & 0x1:  # PCAP_IF_LOOPBACK
            continue
        if flags & 0x2 and dev.addresses:  # PCAP_IF_UP
            return str(dev.name)
    raise CaptureError("no capture interface found", hint="name one with -i, see 'netscope -l'")


def open_live(capture: CaptureConfig) -> LiveSource:
    """Open ``capture.interface`` (or the default one) with the chosen backend."""
    interface = capture.interface or default_interface()
    backend = chosen_backend()
    if backend == "afpacket":
        from netscope.sources.afpacket import AfPacketSource

        return AfPacketSource(capture, interface)
    from netscope.sources.libpcap_backend import LibpcapSource

    return LibpcapSource(capture, interface)


# --------------------------------------------------------------------------------------
# --list-interfaces
# --------------------------------------------------------------------------------------


def _findalldevs() -> list[Any]:
    try:
        import cypcap
    except ImportError:  # pragma: no cover - declared dependency
        raise CaptureError("listing interfaces needs the cypcap package") from None
    try:
        return list(cypcap.findalldevs())
    except cypcap.Error as exc:
        raise CaptureError(f"cannot list interfaces: {exc.args[-1]}") from None


def _format_address(addr: Any, netmask: Any) -> str | None:
    """``192.0.2.2/24`` or ``fe80::1/64`` (None for link-layer and unknown families)."""
    if addr is None:
        return None
    family, sockaddr = addr
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    text = str(sockaddr[0])
    if netmask is not None and netmask[0] == family:
        try:
            mask = ipaddress.ip_address(netmask[1][0])
            bits = bin(int(mask)).count("1")
            return f"{text}/{bits}"
        except ValueError:
            pass
    return text


def interface_rows() -> list[tuple[str, str, str]]:
    """``(name, description, addresses)`` for every interface libpcap can open."""
    rows = []
    for dev in _findalldevs():
        flags = int(dev.flags)
        words = [w for bit, w in ((0x2, "up"), (0x4, "running"), (0x1, "loopback")) if flags & bit]
        desc = dev.description or ""
        if words:
            desc = f"{desc} ({', '.join(words)})" if desc else ", ".join(words)
        addrs = [_format_address(a.addr, a.netmask) for a in dev.addresses]
        rows.append((str(dev.name), desc or "-", ", ".join(a for a in addrs if a) or "-"))
    return rows


def print_interfaces(out: TextIO) -> int:
    """The ``-l`` table: name, description, addresses. Returns the exit code."""
    rows = [("NAME", "DESCRIPTION", "ADDRESSES"), *interface_rows()]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for name, desc, addrs in rows:
        out.write(f"{name.ljust(w0)}  {desc.ljust(w1)}  {addrs}\n")
    out.flush()
    return 0

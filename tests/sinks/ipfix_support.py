"""Test helpers for IPFIX: an independent message parser, a UDP catcher, nfcapd, tshark.

The parser here is written from RFC 7011 alone (it shares no code with
``netscope.sinks.ipfix``): it keys fields by (enterprise, element id), so forward and RFC 5103
reverse elements stay apart.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = Path(
    os.environ.get("NETSCOPE_CORPUS_DIR", str(REPO_ROOT.parent / "shared" / "corpus"))
).resolve()


def corpus_file(name: str) -> Path:
    """A named corpus capture (as tests/conftest.py finds them); skips if it is absent.
    Defined here because ``from conftest import`` is ambiguous inside test packages."""
    import pytest

    path = CORPUS_DIR / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not available at {CORPUS_DIR}")
    return path


def expected(capture: Path) -> dict[str, Any]:
    """The corpus file's tshark oracle (``FILE.expected.json``)."""
    from skip_policy import LEDGER

    with open(f"{capture}.expected.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    LEDGER.note("corpus expected.json")
    return data


REV = 29305
# (enterprise, IE) -> our short name
NAMES = {
    (0, 8): "src",
    (0, 12): "dst",
    (0, 27): "src",
    (0, 28): "dst",
    (0, 7): "sport",
    (0, 11): "dport",
    (0, 4): "proto",
    (0, 136): "reason",
    (0, 6): "flags",
    (REV, 6): "rflags",
    (0, 1): "octets",
    (0, 2): "packets",
    (REV, 1): "roctets",
    (REV, 2): "rpackets",
    (0, 152): "start_ms",
    (0, 153): "end_ms",
}


@dataclass
class Parsed:
    """Everything a stream of messages held."""

    headers: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # ver..domain
    templates: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    options_templates: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    option_records: list[dict[tuple[int, int], int]] = field(default_factory=list)
    records_per_message: list[int] = field(default_factory=list)


def _specs(data: bytes, off: int, count: int) -> tuple[list[tuple[int, int, int]], int]:
    out = []
    for _ in range(count):
        ie, length = struct.unpack_from("!HH", data, off)
        off += 4
        pen = 0
        if ie & 0x8000:
            (pen,) = struct.unpack_from("!I", data, off)
            off += 4
            ie &= 0x7FFF
        out.append((pen, ie, length))
    return out, off


def parse_messages(messages: list[bytes]) -> Parsed:
    p = Parsed()
    for msg in messages:
        ver, length, export_s, seq, domain = struct.unpack_from("!HHIII", msg, 0)
        assert ver == 10 and length == len(msg)
        p.headers.append((ver, length, export_s, seq, domain))
        off = 16
        n_records = 0
        while off < length:
            set_id, set_len = struct.unpack_from("!HH", msg, off)
            end = off + set_len
            off += 4
            if set_id == 2:
                while off + 4 <= end:
                    tid, count = struct.unpack_from("!HH", msg, off)
                    p.templates[tid], off = _specs(msg, off + 4, count)
            elif set_id == 3:
                while off + 6 <= end:
                    tid, count, _scope = struct.unpack_from("!HHH", msg, off)
                    p.options_templates[tid], off = _specs(msg, off + 6, count)
            elif set_id in p.templates:
                specs = p.templates[set_id]
                size = sum(s[2] for s in specs)
                while off + size <= end:
                    rec: dict[str, Any] = {}
                    for pen, ie, ln in specs:
                        raw = msg[off : off + ln]
                        off += ln
                        name = NAMES[(pen, ie)]
                        if name in ("src", "dst"):
                            rec[name] = str(ipaddress.ip_address(raw))
                        else:
                            rec[name] = int.from_bytes(raw, "big")
                    p.records.append(rec)
                    n_records += 1
            elif set_id in p.options_templates:
                specs = p.options_templates[set_id]
                orec: dict[tuple[int, int], int] = {}
                for pen, ie, ln in specs:
                    orec[(pen, ie)] = int.from_bytes(msg[off : off + ln], "big")
                    off += ln
                p.option_records.append(orec)
                n_records += 1
            else:
                raise AssertionError(f"data set {set_id} before its template")
            off = end
        p.records_per_message.append(n_records)
    return p


class UdpCatcher:
    """Collects every datagram sent to a loopback port (a stand-in collector)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.messages: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(65535))
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self, settle_s: float = 0.5) -> list[bytes]:
        time.sleep(settle_s)  # datagrams on loopback are queued already; let recv drain
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        return self.messages


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Nfcapd:
    proc: subprocess.Popen[bytes]
    port: int
    directory: Path

    def stop(self) -> list[dict[str, Any]]:
        """Terminate nfcapd (it writes its file on exit) and read the flows back."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return nfdump_json(self.directory)


def nfdump_available() -> bool:
    return shutil.which("nfcapd") is not None and shutil.which("nfdump") is not None


def start_nfcapd(directory: Path, repeat_to: int | None = None) -> Nfcapd:
    """nfcapd on a free loopback port writing into ``directory``; ``repeat_to`` makes it
    repeat every datagram to that loopback port (so a test sees the same messages)."""
    port = free_udp_port()
    args = ["nfcapd", "-w", str(directory), "-p", str(port), "-b", "127.0.0.1"]
    if repeat_to is not None:
        args += ["-R", f"127.0.0.1/{repeat_to}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # bound once the port no longer binds for us
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                break
        if proc.poll() is not None:
            raise AssertionError("nfcapd exited at start")
        time.sleep(0.05)
    return Nfcapd(proc, port, directory)


def nfdump_json(directory: Path) -> list[dict[str, Any]]:
    env = dict(os.environ, TZ="UTC")
    out = subprocess.run(
        ["nfdump", "-R", str(directory), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    ).stdout
    return list(json.loads(out)) if out.strip() else []


def nfdump_ms(text: str) -> int:
    """nfdump's ``2004-05-13T10:17:07.311`` (UTC under TZ=UTC) -> epoch milliseconds."""
    from datetime import datetime

    dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


FLAG_LETTERS = "FSRPAUEC"  # nfdump prints C E U A P R S F from bit 7 to bit 0


def nfdump_flags(text: str) -> int:
    """nfdump's ``...AP.SF`` -> the flag byte."""
    value = 0
    for i, ch in enumerate(reversed(text)):
        if ch != ".":
            value |= 1 << i
    return value


def tshark_frames(path: Path) -> Iterator[dict[str, Any]]:
    """Per frame from tshark: addresses, ports, IP length, flags, time (first header only)."""
    fields = [
        "frame.time_epoch",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "ip.len",
        "ipv6.plen",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
        "tcp.flags",
    ]
    args = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    for line in out.splitlines():
        vals = dict(zip(fields, line.split("\t"), strict=True))
        yield vals

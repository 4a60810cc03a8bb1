"""Offline BPF filtering keeps exactly the packets tcpdump keeps (SPEC §3: libpcap semantics).

For every corpus capture and every expression below, ``tcpdump -r FILE -w - EXPR`` is the
oracle: we compare the kept packets' bytes and nanosecond timestamps, in order. tcpdump runs
once per (file, expression), in a small thread pool, so the whole matrix costs a few seconds.

Both execution paths are checked: the general interpreter on the whole matrix, and the
specialised (generated) kernel on the Ethernet captures (each new expression costs a one-off
JIT compile, cached afterwards, so that part is marked slow).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corpus_support import corpus_files
from netscope.bpf import OfflineFilter
from netscope.errors import UsageError
from netscope.gen.pcapfile import iter_pcap, pcap_linktype

TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"

# host, net, port, portrange, proto, tcp flags, vlan, ip6, icmp, len, and/or/not ...
EXPRESSIONS = [
    "tcp",
    "udp",
    "icmp",
    "ip6",
    "icmp6",
    "arp",
    "host 192.168.1.1",
    "net 10.0.0.0/8 or net 192.168.0.0/16",
    "src net 172.16.0.0/12 or dst host 127.0.0.1",
    "port 53",
    "tcp port 80",
    "tcp port 443",
    "udp portrange 1024-65535",
    "portrange 1-1023",
    "ip proto 47",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "vlan",
    "vlan and tcp",
    "len > 100",
    "greater 1000 or less 64",
    "ip[6:2] & 0x1fff != 0",
    "ip6 and tcp port 443 or udp port 443",
    "not tcp and not udp",
    "(tcp port 80 or udp port 53) and not host 10.0.0.1",
]

Packet = tuple[int, bytes]
Oracle = dict[tuple[Path, str], list[Packet] | str]


def tcpdump_keeps(path: Path, expression: str) -> list[Packet] | str:
    """Packets tcpdump writes for ``expression``, or the reason it could not run."""
    proc = subprocess.run(
        [TCPDUMP, "--time-stamp-precision=nano", "-r", str(path), "-w", "-", expression],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        return proc.stderr.decode(errors="replace").strip().splitlines()[-1]
    return _parse_pcap_bytes(proc.stdout)


def _parse_pcap_bytes(data: bytes) -> list[Packet]:
    """iter_pcap reads a path: spill tcpdump's output to a temporary file."""
    fd, name = tempfile.mkstemp(suffix=".pcap")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return [(ts, pkt) for ts, pkt, _wire in iter_pcap(name)]
    finally:
        os.unlink(name)


def our_keeps(path: Path, expression: str, specialise: bool) -> list[Packet]:
    from netscope.sources import open_capture_file

    reader = open_capture_file(path)
    flt = OfflineFilter.for_source(expression, reader, specialise=specialise)
    kept: list[Packet] = []
    try:
        for batch in reader.batches():
            out = flt.apply(batch)
            kept += [(int(out.ts_ns[i]), bytes(out.packet_bytes(i))) for i in range(out.count)]
    finally:
        reader.close()
    return kept


@pytest.fixture(scope="module")
def oracle_cache() -> dict[tuple[Path, str], list[Packet] | str]:
    return {}


def oracle_for(
    path: Path, cache: dict[tuple[Path, str], list[Packet] | str]
) -> dict[str, list[Packet] | str]:
    """tcpdump's answer for every expression on ``path`` (four tcpdumps at a time)."""
    missing = [e for e in EXPRESSIONS if (path, e) not in cache]
    if missing:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for expr, result in zip(
                missing, pool.map(lambda e: tcpdump_keeps(path, e), missing), strict=True
            ):
                cache[(path, expr)] = result
    return {e: cache[(path, e)] for e in EXPRESSIONS}


def readable_by_tcpdump(path: Path) -> str | None:
    proc = subprocess.run(
        [TCPDUMP, "-r", str(path), "-w", "/dev/null"], capture_output=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        return proc.stderr.decode(errors="replace").strip().splitlines()[-1]
    return None


def check_file(
    path: Path, cache: dict[tuple[Path, str], list[Packet] | str], specialise: bool
) -> None:
    reason = readable_by_tcpdump(path)
    if reason is not None:
        pytest.skip(f"tcpdump cannot read {path.name}: {reason}")
    mismatches: list[str] = []
    for expr, expected in oracle_for(path, cache).items():
        if isinstance(expected, str):
            # tcpdump's compiler refused this expression for the file's link type: so must we.
            with pytest.raises(UsageError, match="invalid filter"):
                our_keeps(path, expr, specialise)
            continue
        got = our_keeps(path, expr, specialise)
        if got != expected:
            mismatches.append(f"{expr!r}: tcpdump kept {len(expected)}, we kept {len(got)}")
    assert not mismatches, f"{path.name}:\n" + "\n".join(mismatches)


@pytest.mark.skipif(not Path(TCPDUMP).exists(), reason="tcpdump not installed")
def test_interpreter_matches_tcpdump(
    corpus_capture: Path, oracle_cache: Oracle, warm_kernels: None
) -> None:
    check_file(corpus_capture, oracle_cache, specialise=False)


def _ethernet_pcaps() -> list[Path]:
    """Classic-pcap Ethernet corpus files: the specialised kernels' compile time (one per
    expression) is spent where the expressions matter; the interpreter covers every file."""
    return [p for p in corpus_files() if p.suffix == ".pcap" and _linktype(p) == 1]


def _linktype(path: Path) -> int | None:
    try:
        return pcap_linktype(path)
    except (OSError, ValueError):  # a damaged header: not one of ours to specialise for
        return None


@pytest.mark.slow
@pytest.mark.skipif(not Path(TCPDUMP).exists(), reason="tcpdump not installed")
@pytest.mark.parametrize("capture", _ethernet_pcaps(), ids=lambda p: p.name)
def test_specialised_kernel_matches_tcpdump(
    capture: Path, oracle_cache: Oracle, warm_kernels: None
) -> None:
    check_file(capture, oracle_cache, specialise=True)


def test_expression_count() -> None:
    assert len(EXPRESSIONS) >= 15

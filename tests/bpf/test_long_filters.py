"""Long filters (issue 12 item 5): split compile, interpreter path, start-up and Ctrl-C.

The oracle is tcpdump, twice: as users run it (libpcap's optimizer on, one program for the
whole expression) and with ``-O`` (optimizer off: libpcap's reference meaning of the
expression). Both must keep exactly the packets we keep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netscope.bpf import OfflineFilter, compile_filter
from netscope.bpf_split import SPLIT_ABOVE_TERMS, join_programs, split_disjunction
from netscope.errors import UsageError
from netscope.gen.pcapfile import iter_pcap

from .test_equivalence import TCPDUMP, readable_by_tcpdump

REPO_ROOT = Path(__file__).resolve().parents[2]

# 200 explicit clauses over ports the corpus uses (53, 80, 443, QUIC, high ports) and not.
PORTS = [53, 80, 443, 8080, 5353, 123, 1900, 6881] + list(range(1000, 1192))
EXPLICIT = " or ".join(f"port {p}" for p in PORTS)
# The same list with inherited qualifiers and mixed terms: 'tcp port 1 or 2 or …'.
MIXED = (
    "udp port 53 or "
    + " or ".join(str(p) for p in PORTS[1:])
    + " or len > 1400 or icmp or host 192.168.1.1 or not ip"
)

needs_tcpdump = pytest.mark.skipif(not Path(TCPDUMP).exists(), reason="tcpdump not installed")


def tcpdump_keeps(path: Path, expression: str, optimize: bool) -> list[int] | None:
    """Timestamps (ns) of the packets ``tcpdump [-O] -r F -w - EXPR`` keeps, in order; None
    if tcpdump refuses the expression for the file's link type."""
    flags = [] if optimize else ["-O"]
    proc = subprocess.run(
        [TCPDUMP, *flags, "--time-stamp-precision=nano", "-r", str(path), "-w", "-", expression],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        return None
    fd, name = tempfile.mkstemp(suffix=".pcap")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(proc.stdout)
        return [ts for ts, _pkt, _wire in iter_pcap(name)]
    finally:
        os.unlink(name)


def our_timestamps(path: Path, expression: str) -> tuple[list[int], OfflineFilter]:
    from netscope.sources import open_capture_file

    reader = open_capture_file(path)
    flt = OfflineFilter.for_source(expression, reader)
    kept: list[int] = []
    try:
        for batch in reader.batches():
            out = flt.apply(batch)
            kept += out.ts_ns[: out.count].tolist()
    finally:
        reader.close()
    return kept, flt


# ----------------------------------------------------------------------------- splitting


def test_split_keeps_terms_and_resolves_inherited_qualifiers() -> None:
    assert split_disjunction("port 1 or port 2") == ["port 1", "port 2"]
    assert split_disjunction("tcp dst port 1 or 2 or not 3") == [
        "tcp dst port 1",
        "tcp dst port 2",
        "not tcp dst port 3",
    ]
    assert split_disjunction("src or dst host 10.0.0.1 || 10.0.0.2") == [
        "src or dst host 10.0.0.1",
        "src or dst host 10.0.0.2",
    ]
    assert split_disjunction("(tcp and port 1) or len > 10 or tcp[13] & 2 != 0") == [
        "(tcp and port 1)",
        "len > 10",
        "tcp[13] & 2 != 0",
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "tcp port 80",  # one term
        "port 1 or port 2 and tcp",  # 'and' at top level: (port 1 or port 2) and tcp
        "(port 1 or port 2) or 3",  # 3 inherits from before the parenthesis
        "tcp or 80",  # nothing to inherit
        "foo or port 2",  # a bare name first
        "port 1 or (2 or 3)",  # inherited parenthesised list
        "port 1 or",  # malformed: libpcap's message, not ours
        "port (1 or",
    ],
)
def test_split_refuses_what_it_cannot_prove(expression: str) -> None:
    assert split_disjunction(expression) is None


def test_joined_program_chains_groups_through_their_reject_returns() -> None:
    a = np.array([[0x15, 0, 1, 7], [0x06, 0, 0, 99], [0x06, 0, 0, 0]], dtype=np.uint32)
    b = np.array([[0x15, 0, 1, 8], [0x06, 0, 0, 99], [0x06, 0, 0, 0]], dtype=np.uint32)
    joined = join_programs([a, b])
    assert joined is not None
    assert joined.tolist() == [
        [0x15, 0, 1, 7],
        [0x06, 0, 0, 99],
        [0x05, 0, 0, 0],  # ja +0: on to the next group
        [0x15, 0, 1, 8],
        [0x06, 0, 0, 99],
        [0x06, 0, 0, 0],
    ]
    ret_a = np.array([[0x16, 0, 0, 0]], dtype=np.uint32)
    assert join_programs([ret_a, b]) is None


def test_long_list_compiles_in_groups_and_runs_interpreted() -> None:
    expression = " or ".join(f"port {p}" for p in range(1, 3001))
    assert len(split_disjunction(expression) or []) == 3000 > SPLIT_ABOVE_TERMS
    program = compile_filter(expression, 1, 262144, False)
    assert program.insns[-1].tolist() == [0x06, 0, 0, 0]
    flt = OfflineFilter(expression)
    flt.prepare(1)
    assert not flt.specialised  # far beyond MAX_GENERATED_NODES: the interpreter runs it


def test_hundred_clause_list_is_interpreted_not_generated() -> None:
    """The issue's 99-clause filter: generating its kernel compiled for minutes."""
    flt = OfflineFilter(" or ".join(f"port {p}" for p in range(1, 100)))
    flt.prepare(1)
    assert not flt.specialised
    small = OfflineFilter("tcp port 443")
    small.prepare(1)
    assert small.specialised


def test_invalid_long_filter_reports_libpcap_message() -> None:
    expression = " or ".join(f"port {p}" for p in range(1, 100)) + " or port 1-"
    with pytest.raises(UsageError, match="^invalid filter 'port 1 or .*': .*syntax error"):
        compile_filter(expression, 1)


# ----------------------------------------------------------------------------- vs tcpdump


@needs_tcpdump
@pytest.mark.parametrize(
    "expression",
    [EXPLICIT, pytest.param(MIXED, marks=pytest.mark.slow)],
    ids=["explicit", "mixed"],
)
def test_long_filter_matches_tcpdump(
    corpus_capture: Path, expression: str, warm_kernels: None
) -> None:
    reason = readable_by_tcpdump(corpus_capture)
    if reason is not None:
        pytest.skip(f"tcpdump cannot read {corpus_capture.name}: {reason}")
    expected = tcpdump_keeps(corpus_capture, expression, optimize=True)
    assert expected == tcpdump_keeps(corpus_capture, expression, optimize=False)
    if expected is None:  # e.g. 'port' on NFLOG: libpcap refuses it, so must we
        with pytest.raises(UsageError, match="invalid filter"):
            our_timestamps(corpus_capture, expression)
        return
    got, flt = our_timestamps(corpus_capture, expression)
    assert not flt.specialised
    assert got == expected


# ----------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_two_thousand_clause_filter_end_to_end(
    corpus: Callable[[str], Path], cli: Callable[..., Any]
) -> None:
    capture = corpus("pcpp-example2.pcap")
    expression = " or ".join(f"port {p}" for p in [*PORTS, *range(2000, 3800)])
    result = cli(["--read-pcap", str(capture), "-f", expression, "--quiet"], timeout=600)
    assert result.code == 0, result.stderr
    assert "Packets captured:" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_sigint_during_long_filter_start_up_exits_130(corpus: Callable[[str], Path]) -> None:
    capture = corpus("pcpp-example2.pcap")
    # ~110 KB (one argument may be at most 128 KB): compiling it takes several seconds.
    expression = " or ".join(f"port {p}" for p in range(1, 9001))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", "--read-pcap", str(capture), "-f", expression],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        assert proc.stderr is not None
        seen = b""
        while b"compiling a long filter" not in seen:  # start-up reached the compile
            line = proc.stderr.readline()
            assert line, f"netscope exited before compiling: {seen!r}"
            seen += line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert b"Traceback" not in seen + err
    assert b"Packets captured" not in out  # stopped before reading

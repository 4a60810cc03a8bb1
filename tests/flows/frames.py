"""Per-frame TCP analysis from both sides: what our flow kernel decides, what tshark decides.

:func:`our_frames` feeds a capture to one :class:`FlowTable` a packet at a time and records,
for every frame, whether the kernel counted it as a retransmission or out-of-order segment and
whether it took an RTT sample (with its value). :func:`tshark_frames` runs tshark once per file
(the options the corpus oracle was made with, so its TCP analysis is the oracle's) and reads the
same per-frame facts plus the fields the other oracle comparisons need. Both are cached per
process; tshark's answers are also kept on disk under pytest's cache directory, keyed by the
capture's sha256 and the tshark version, so only the first run pays for the ~70 tshark starts
(they run a few at a time, see :func:`prefetch_tshark`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from netscope.analysis import Analyzer
from netscope.columns import DecodedColumns
from netscope.constants import TCP_FIN, TCP_SYN
from netscope.flows import layout as L
from netscope.flows.table import FlowTable
from netscope.sources import open_capture_file

from .conftest import KEEP_ALL
from .test_oracle import FlowKey, frame_flow

TSHARK = shutil.which("tshark")

# The oracle's own options (every *.expected.json's generated_by.tshark_options): single pass,
# sequence analysis and reassembly on, no name resolution.
TSHARK_OPTIONS = [
    "-n",
    "-o", "tcp.analyze_sequence_numbers:TRUE",
    "-o", "tcp.desegment_tcp_streams:TRUE",
    "-o", "ip.defragment:TRUE",
    "-o", "ipv6.defragment:TRUE",
    "-o", "tls.desegment_ssl_records:TRUE",
]  # fmt: skip

# Fields read per frame. A field that occurs several times in a frame (tunnels, headers quoted
# in ICMP errors) comes back as a comma-separated list, outermost first.
TSHARK_FIELDS = [
    "frame.number",
    "frame.time_epoch",
    "frame.protocols",
    "tcp.analysis.retransmission",
    "tcp.analysis.out_of_order",
    "tcp.analysis.keep_alive",
    "tcp.analysis.spurious_retransmission",
    "tcp.analysis.ack_rtt",
    "tcp.analysis.acks_frame",
    "tcp.stream",
    "tcp.flags",
    "dns.flags.response",
    "dns.qry.name",
    "_ws.malformed",
    "_ws.short",
    "ip.flags.mf",
    "ip.frag_offset",
    "ipv6.fragment",
]


def F(spec: str) -> frozenset[int]:
    """Frame numbers from a compact list: ``"3 7-9"`` is {3, 7, 8, 9}."""
    out: set[int] = set()
    for part in spec.split():
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


@dataclass(frozen=True)
class OurFrame:
    """The flow kernel's decisions for one frame (1-based ``number``)."""

    number: int
    flow: tuple[FlowKey, int] | None  # (flow key, direction) if the frame updates a flow
    retrans: bool
    ooo: bool
    rtt_ns: int | None  # the RTT sample this frame (an ACK) produced, if any
    extends: bool  # carries sequence space ending beyond the highest seq_end of its direction


@dataclass
class OurCapture:
    frames: list[OurFrame] = field(default_factory=list)

    def numbers(self, what: str) -> set[int]:
        if what == "rtt":
            return {f.number for f in self.frames if f.rtt_ns is not None}
        return {f.number for f in self.frames if getattr(f, what)}


@functools.cache
def our_frames(path: Path) -> OurCapture:
    """Every frame of ``path`` through decode + one KEEP_ALL table, one packet per observe.

    After each packet the run totals say whether it was counted as retransmission /
    out-of-order; its flow's row is the LRU tail (every tracked packet moves its flow there),
    whose RTT sample count and last RTT say whether it produced a sample and which.
    """
    table = FlowTable(KEEP_ALL)
    analyzer = Analyzer()
    out = OurCapture()
    samples: dict[int, int] = {}
    max_end: dict[tuple[FlowKey, int], int] = {}
    reader = open_capture_file(path)
    try:
        for batch in reader.batches():
            cols = analyzer.process(batch)
            for i in range(batch.count):
                r0, o0 = int(table.g[L.G_TOTAL_RETRANS]), int(table.g[L.G_TOTAL_OOO])
                table.observe(batch.ts_ns, batch.wirelens, cols, i + 1, start=i)
                flow = frame_flow(cols, i)
                rtt_ns = None
                if flow is not None:
                    row = int(table.g[L.G_LRU_TAIL])
                    n = int(table.i64[row, L.I_RTT_SAMPLES])
                    if n != samples.get(row, 0):
                        assert n == samples.get(row, 0) + 1
                        rtt_ns = round(float(table.f64[row, L.F_RTT_LAST]) * 1e6)
                    samples[row] = n
                extends = flow is not None and _extends(cols, i, flow, max_end)
                out.frames.append(
                    OurFrame(
                        batch.first_index + i,
                        flow,
                        int(table.g[L.G_TOTAL_RETRANS]) > r0,
                        int(table.g[L.G_TOTAL_OOO]) > o0,
                        rtt_ns,
                        extends,
                    )
                )
    finally:
        reader.close()
    return out


def _extends(
    cols: DecodedColumns,
    i: int,
    flow: tuple[FlowKey, int],
    max_end: dict[tuple[FlowKey, int], int],
) -> bool:
    """Does TCP packet ``i`` end beyond everything its direction sent before? (Updates
    ``max_end``.) A plain re-statement of SPEC §6's "new data" test, used to explain frames
    tshark flags and we do not; sequence numbers compared modulo 2**32."""
    if flow[0][0] != "tcp":
        return False
    flags = int(cols.tcp_flags[i])
    seglen = int(cols.payload_len[i]) + bool(flags & TCP_SYN) + bool(flags & TCP_FIN)
    if seglen == 0:
        return False
    end = (int(cols.seq[i]) + seglen) & 0xFFFFFFFF
    before = max_end.get(flow)
    if before is not None and not 0 < (end - before) & 0xFFFFFFFF < 2**31:
        return False
    max_end[flow] = end
    return True


# ---------------------------------------------------------------------------- tshark


@dataclass(frozen=True)
class TsharkFrame:
    """tshark's per-frame answers, one list entry per occurrence of a field."""

    number: int
    protocols: tuple[str, ...]
    fields: dict[str, list[str]]

    def flag(self, name: str) -> bool:
        return bool(self.fields.get(name))

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


@functools.cache
def _version() -> str:
    assert TSHARK
    out = subprocess.run([TSHARK, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def _cache_dir() -> Path:
    root = os.environ.get("NETSCOPE_TSHARK_CACHE") or str(
        Path(__file__).resolve().parents[2] / ".pytest_cache" / "tshark-frames"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_tshark(path: Path) -> list[list[str]]:
    assert TSHARK
    cmd = [TSHARK, "-r", str(path), *TSHARK_OPTIONS, "-T", "fields", "-E", "separator=/t"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    env = dict(os.environ, WIRESHARK_CONFIG_DIR="/nonexistent-netscope", TZ="UTC")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    # a cut-short file makes tshark exit 2 after printing the frames it read: keep those
    return [line.split("\t") for line in proc.stdout.splitlines()]


@functools.cache
def _rows(path: Path) -> list[list[str]]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    key = hashlib.sha256(
        "\0".join([digest, _version(), *TSHARK_OPTIONS, *TSHARK_FIELDS]).encode()
    ).hexdigest()
    cached = _cache_dir() / f"{path.name}.{key[:16]}.json"
    if cached.is_file():
        rows: list[list[str]] = json.loads(cached.read_text())
        return rows
    rows = _run_tshark(path)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(rows))
    tmp.replace(cached)
    return rows


def prefetch_tshark(paths: list[Path], workers: int = 3) -> None:
    """Run tshark over ``paths`` a few at a time (each run is mostly start-up, not CPU)."""
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(_rows, paths))


def tshark_frames(path: Path) -> dict[int, TsharkFrame]:
    """tshark's answers for every frame it read, by frame number."""
    out = {}
    for row in _rows(path):
        values = dict(zip(TSHARK_FIELDS, row, strict=False))
        fields = {k: v.split(",") for k, v in values.items() if v}
        number = int(values["frame.number"])
        out[number] = TsharkFrame(number, tuple(values["frame.protocols"].split(":")), fields)
    return out


def seconds_to_ns(text: str) -> int:
    return int(Decimal(text) * 1_000_000_000)


def tshark_set(frames: dict[int, TsharkFrame], name: str) -> set[int]:
    """Frames where tshark sets ``name`` (an expert flag) or gives it a value."""
    return {n for n, f in frames.items() if f.flag(name)}


def as_dict(frames: dict[int, TsharkFrame]) -> dict[int, dict[str, Any]]:
    """Debugging aid: plain dicts for printing."""
    return {n: {"protocols": f.protocols, **f.fields} for n, f in frames.items()}

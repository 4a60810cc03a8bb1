"""parse_packet: the compiled decode kernel on whole batches, as the engine runs it (SPEC §8/§9).

Batches are laid out the way the pcap reader hands them over: 32 768 records in one buffer,
each packet preceded by its 16-byte record header, so the kernel's memory access pattern
(strided header reads, not a dense array of packets) is the real one. Two workloads mirror the
seed's table: 54-byte TCP SYNs and 1454-byte TCP data segments (1400-byte payload). A third row
decodes the first batches of the reference trace, when it is present, for a realistic mix.

Target: <= 6 ns per packet. Run: ``python -m benchmarks.bench_parse``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import netscope.engine  # first: chooses the numba cache dir before numba loads
from benchmarks import traces
from benchmarks.common import Timing, fmt_row, header, time_reps
from benchmarks.figures import Figure, at_most
from netscope.batch import PacketBatch
from netscope.columns import DecodedColumns
from netscope.gen import packets as pk

BATCH = 32768
RECORD_HEADER = 16
TARGET_NS = 6.0
SYN_ROW = "54-byte TCP SYN"
DATA_ROW = "1454-byte TCP data"
REFERENCE_TRACE = Path(os.environ.get("NETSCOPE_BENCH_TRACE", str(traces.reference_path())))


@dataclass(frozen=True)
class ParseResult:
    name: str
    packets: int
    timing: Timing

    @property
    def best_ns(self) -> float:
        return self.timing.best / self.packets * 1e9

    @property
    def median_ns(self) -> float:
        return self.timing.median / self.packets * 1e9


def pcap_chunk_batch(template: bytes, count: int = BATCH) -> PacketBatch:
    """``count`` copies of an Ethernet/IPv4/TCP ``template`` laid out as pcap records.

    Source ports and sequence numbers vary per packet (as in real traffic) and each record
    header holds real lengths and timestamps. The IPv4 header is untouched, so its checksum
    stays valid and the kernel takes its common path.
    """
    size = len(template)
    stride = RECORD_HEADER + size
    buf = np.zeros(count * stride, dtype=np.uint8)
    records = buf.reshape(count, stride)
    records[:, RECORD_HEADER:] = np.frombuffer(template, dtype=np.uint8)
    idx = np.arange(count, dtype=np.int64)
    ts_us = 1_700_000_000_000_000 + idx * 10
    hdr = np.zeros((count, 4), dtype="<u4")
    hdr[:, 0] = ts_us // 1_000_000
    hdr[:, 1] = ts_us % 1_000_000
    hdr[:, 2] = size
    hdr[:, 3] = size
    records[:, :RECORD_HEADER] = hdr.view(np.uint8).reshape(count, RECORD_HEADER)
    tcp = RECORD_HEADER + 14 + 20
    sport = (1024 + idx % 60000).astype(">u2")
    records[:, tcp : tcp + 2] = sport.view(np.uint8).reshape(count, 2)
    seq = (idx * 1400).astype(">u4")
    records[:, tcp + 4 : tcp + 8] = seq.view(np.uint8).reshape(count, 4)
    return PacketBatch(
        buf=buf,
        offsets=idx * stride + RECORD_HEADER,
        caplens=np.full(count, size, dtype=np.int32),
        wirelens=np.full(count, size, dtype=np.int32),
        ts_ns=ts_us * 1000,
        linktypes=np.full(count, 1, dtype=np.int32),
        count=count,
    )


def syn_template() -> bytes:
    seg = pk.tcp("10.0.0.1", "10.0.0.2", 40000, 443, 1, 0, "S", window=64240)
    frame = pk.ether_ip("10.0.0.1", "10.0.0.2", 6, seg)
    assert len(frame) == 54
    return frame


def data_template() -> bytes:
    payload = bytes(range(256)) * 5 + bytes(120)
    seg = pk.tcp("10.0.0.2", "10.0.0.1", 443, 40000, 1, 1, "PA", payload=payload[:1400])
    frame = pk.ether_ip("10.0.0.2", "10.0.0.1", 6, seg)
    assert len(frame) == 1454
    return frame


def reference_batches(limit_batches: int = 4) -> list[PacketBatch]:
    """Copies of the first batches of the reference trace (the reader reuses its buffer)."""
    from netscope.sources import open_capture_file

    out: list[PacketBatch] = []
    reader = open_capture_file(REFERENCE_TRACE)
    try:
        for batch in reader.batches():
            n = batch.count
            out.append(
                PacketBatch(
                    buf=batch.buf.copy(),
                    offsets=batch.offsets[:n].copy(),
                    caplens=batch.caplens[:n].copy(),
                    wirelens=batch.wirelens[:n].copy(),
                    ts_ns=batch.ts_ns[:n].copy(),
                    linktypes=batch.linktypes[:n].copy(),
                    count=n,
                )
            )
            if len(out) >= limit_batches:
                break
    finally:
        reader.close()
    return out


def bench_kernel(name: str, batches: list[PacketBatch], reps: int) -> ParseResult:
    """Time ``decode_batch`` over ``batches`` (one rep = every batch once)."""
    from netscope.kernels.decode import decode_batch

    cap = max(b.count for b in batches)
    cols = DecodedColumns.allocate(cap)
    arrays = cols.arrays()
    calls = [(b.buf, b.offsets, b.caplens, b.linktypes, b.count) for b in batches]

    def run() -> None:
        for buf, offsets, caplens, linktypes, count in calls:
            decode_batch(buf, offsets, caplens, linktypes, count, *arrays)

    run()
    assert int(np.count_nonzero(cols.err[: batches[-1].count])) == 0 or name.startswith("ref")
    timing = time_reps(run, reps, warmup=5)
    return ParseResult(name, sum(b.count for b in batches), timing)


def bench_engine_decode(name: str, batch: PacketBatch, reps: int) -> ParseResult:
    """Same, through ``engine.decode`` (Python wrapper: checks, argument unboxing)."""
    cols = DecodedColumns.allocate(batch.count)
    timing = time_reps(lambda: netscope.engine.decode(batch, cols), reps, warmup=5)
    return ParseResult(name, batch.count, timing)


def main(argv: list[str] | None = None) -> list[ParseResult]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300, help="timed repetitions per row")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference-trace row")
    args = parser.parse_args(argv)

    header("parse_packet (decode kernel, 32768-packet pcap-layout batches)")
    netscope.engine.warm_up(announce=True)
    syn = pcap_chunk_batch(syn_template())
    data = pcap_chunk_batch(data_template())
    results = [
        bench_kernel(SYN_ROW, [syn], args.reps),
        bench_kernel(DATA_ROW, [data], max(args.reps // 3, min(args.reps, 20))),
        bench_engine_decode("54-byte TCP SYN via engine.decode", syn, args.reps),
    ]
    if REFERENCE_TRACE.is_file() and not args.no_reference:
        ref = reference_batches()
        results.append(bench_kernel(f"ref: {REFERENCE_TRACE.name} first batches", ref, 50))
    print(fmt_row("workload", "best ns/pkt", "median ns/pkt", "best Mpps", "target"))
    for r in results:
        verdict = "ok" if r.best_ns <= TARGET_NS else "MISSED"
        print(
            fmt_row(
                r.name,
                f"{r.best_ns:.2f}",
                f"{r.median_ns:.2f}",
                f"{1e3 / r.best_ns:.0f}",
                f"<= {TARGET_NS:g} {verdict}",
            )
        )
    return results


def figures(results: list[ParseResult]) -> list[Figure]:
    """The two SPEC rows (best ns/packet, as the section above prints its verdict)."""
    out = []
    for label, row in (
        ("parse_packet, 54-byte SYN", SYN_ROW),
        ("parse_packet, 1454-byte data", DATA_ROW),
    ):
        r = next(r for r in results if r.name == row)
        per = 1e9 / r.packets
        out.append(
            at_most(label, TARGET_NS, r.best_ns, "ns/pkt", [t * per for t in r.timing.samples])
        )
    return out


if __name__ == "__main__":
    main()

"""Fixtures for the flow-table tests: run packets or captures through decode + FlowTable.

The loop is the one every consumer of the engine runs (CLI, library, benchmarks)::

    cols = Analyzer().process(batch)
    table.observe(batch.ts_ns, batch.wirelens, cols, batch.count)

The helpers are plain functions that the test modules of this package import
(``from .conftest import ...``); the only fixture loads the kernels once per session.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from netscope.analysis import Analyzer
from netscope.batch import batch_from_packets
from netscope.flows.records import FlowRecord, records_from_rows
from netscope.flows.table import FlowOptions, FlowTable
from netscope.gen import packets as pk
from netscope.gen.pcapfile import write_pcap
from netscope.sources import open_capture_file

# Unlimited table, no expiry: every flow of a trace is still there at the end.
KEEP_ALL = FlowOptions(max_flows=0, timeout_secs=0)

# Hand-built traces use these two hosts; CLIENT sorts first, so it is endpoint A.
LOW_IP = "10.0.0.1"
HIGH_IP = "10.0.0.2"
LOW_IP6 = "2001:db8::1"
HIGH_IP6 = "2001:db8::2"

T0 = 1_700_000_000 * 1_000_000_000  # a plausible capture start (ns since the epoch)
MS = 1_000_000  # one millisecond in ns


Frame = bytes | tuple[int, bytes]


def feed(table: FlowTable, frames: Sequence[Frame], linktype: int = 1) -> FlowTable:
    """Decode ``frames`` (bytes, or (ts_ns, bytes)) as one batch and fold them into ``table``.

    Bare byte strings get timestamps T0, T0 + 1 ms, ... in order.
    """
    data: list[bytes] = []
    stamps: list[int] = []
    for n, frame in enumerate(frames):
        if isinstance(frame, tuple):
            stamps.append(frame[0])
            data.append(frame[1])
        else:
            stamps.append(T0 + n * MS)
            data.append(frame)
    batch = batch_from_packets(data, stamps, linktype=linktype)
    cols = Analyzer(batch_capacity=max(batch.count, 1)).process(batch)
    index, status = table.observe(batch.ts_ns, batch.wirelens, cols, batch.count)
    assert (index, status) == (batch.count, 0)
    return table


def track_frames(
    frames: Sequence[Frame], options: FlowOptions = KEEP_ALL, linktype: int = 1
) -> FlowTable:
    """A fresh table fed with ``frames`` (see :func:`feed`)."""
    return feed(FlowTable(options), frames, linktype)


def track_capture(path: str | os.PathLike[str], options: FlowOptions = KEEP_ALL) -> FlowTable:
    """Read a capture file batch by batch through the analyzer into a fresh table."""
    table = FlowTable(options)
    analyzer = Analyzer()
    reader = open_capture_file(path)
    try:
        for batch in reader.batches():
            cols = analyzer.process(batch)
            table.observe(batch.ts_ns, batch.wirelens, cols, batch.count)
    finally:
        reader.close()
    return table


def flow_records(table: FlowTable) -> list[FlowRecord]:
    """Records of every live flow (deep or scale mode, as the table was built)."""
    return records_from_rows(
        table.keys, table.i64, table.f64 if table.deep else None, table.u8, table.live_rows()
    )


def only_flow(table: FlowTable) -> FlowRecord:
    """The single flow of a table that must hold exactly one."""
    recs = flow_records(table)
    assert len(recs) == 1, [r.label() for r in recs]
    return recs[0]


@dataclass
class TcpPeer:
    """One side of a hand-built TCP conversation: builds Ethernet frames it sends."""

    ip: str
    port: int
    peer_ip: str
    peer_port: int

    def seg(self, flags: str, seq: int = 0, ack: int = 0, data: int | bytes = 0) -> bytes:
        """A segment with ``data`` bytes of payload (an int means that many ``x``)."""
        payload = b"x" * data if isinstance(data, int) else data
        return pk.ether_ip(
            self.ip,
            self.peer_ip,
            6,
            pk.tcp(
                self.ip, self.peer_ip, self.port, self.peer_port, seq, ack, flags, payload=payload
            ),
        )


def tcp_pair(
    client_ip: str = LOW_IP, server_ip: str = HIGH_IP, cport: int = 40000, sport: int = 80
) -> tuple[TcpPeer, TcpPeer]:
    """(client, server) peers of one TCP connection."""
    return (
        TcpPeer(client_ip, cport, server_ip, sport),
        TcpPeer(server_ip, sport, client_ip, cport),
    )


def udp_frame(src: str, dst: str, sport: int, dport: int, size: int = 10) -> bytes:
    """An Ethernet frame carrying a UDP datagram with ``size`` payload bytes."""
    return pk.ether_ip(src, dst, 17, pk.udp(src, dst, sport, dport, b"u" * size))


_ETH_V4 = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")


def fast_udp4(src: int, dst: int, sport: int, dport: int, size: int = 0) -> bytes:
    """Ethernet/IPv4/UDP frame from integer addresses, checksums left 0 (bulk tests).

    The decoder verifies no transport checksum and reports a wrong IPv4 header checksum
    in a column without failing the packet, so these frames track like real ones.
    """
    ip = _IPV4.pack(
        0x45, 0, 28 + size, 0, 0x4000, 64, 17, 0, src.to_bytes(4, "big"), dst.to_bytes(4, "big")
    )
    return _ETH_V4 + ip + _UDP.pack(sport, dport, 8 + size, 0) + bytes(size)


def fast_tcp4(
    src: int, dst: int, sport: int, dport: int, flags: int, seq: int, ack: int, size: int = 0
) -> bytes:
    """Ethernet/IPv4/TCP frame from integer addresses (flags as a byte), checksums 0."""
    ip = _IPV4.pack(
        0x45, 0, 40 + size, 0, 0x4000, 64, 6, 0, src.to_bytes(4, "big"), dst.to_bytes(4, "big")
    )
    tcp = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    return _ETH_V4 + ip + tcp + bytes(size)


def write_trace(path: Path, frames: Iterable[tuple[int, bytes]]) -> Path:
    """Write (ts_ns, frame) records as an Ethernet pcap (nanosecond resolution)."""
    write_pcap(path, frames, nanosecond=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def _engine_ready() -> None:
    """Load every kernel once, before the first test of this directory measures anything."""
    import netscope.engine

    netscope.engine.warm_up(announce=False)
    track_frames([udp_frame(LOW_IP, HIGH_IP, 1, 2)])

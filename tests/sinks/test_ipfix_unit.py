"""IPFIX encoder, exporter and sender without a collector process.

The messages are parsed twice: by the PyPI ``netflow`` package (an independent IPFIX
decoder; it folds RFC 5103 reverse elements onto the forward ids, so only unambiguous fields
are compared through it) and by the RFC 7011 parser in ipfix_support.py.
"""

from __future__ import annotations

import socket
import threading

import netflow
import numpy as np

from netscope.flows import layout as L
from netscope.flows.table import ExpiredBatch, FlowOptions, FlowTable
from netscope.sinks.ipfix.encoder import (
    TEMPLATE_V4,
    TEMPLATE_V6,
    V4_DTYPE,
    V6_DTYPE,
    Deltas,
    MessageEncoder,
    build_records,
)
from netscope.sinks.ipfix.exporter import IpfixExporter, IpfixSettings, export_col_for
from netscope.sinks.ipfix.sender import Sender, parse_target

from .ipfix_support import parse_messages

OPTS = FlowOptions(export_columns=True, keep_expired=True, max_flows=0)


def _rows(n4: int, n6: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hand-made table rows: n4 IPv4 then n6 IPv6 flows with distinct counts."""
    n = n4 + n6
    x = export_col_for(OPTS)
    keys = np.zeros((n, L.KEY_WIDTH), np.uint64)
    i64 = np.zeros((n, FlowTable.i64_width(OPTS)), np.int64)
    u8 = np.zeros((n, L.U8_WIDTH), np.uint8)
    k = np.arange(n, dtype=np.uint64)
    keys[:, L.K_A_LO] = np.uint64(0x0A000001) + k
    keys[:, L.K_B_LO] = np.uint64(0xC0A80001) + k
    keys[n4:, L.K_A_HI] = np.uint64(0x20010DB800000000)
    keys[n4:, L.K_B_HI] = np.uint64(0x20010DB800000001)
    ver = np.where(np.arange(n) < n4, 4, 6).astype(np.uint64)
    keys[:, L.K_META] = (
        (((np.uint64(1000) + k) << np.uint64(48)) | (np.uint64(80) << np.uint64(32)))
        | (np.uint64(6) << np.uint64(8))
        | ver
    )
    i64[:, L.I_FIRST_NS] = 1_700_000_000_000_000_000 + np.arange(n) * 1_000_000
    i64[:, L.I_LAST_NS] = i64[:, L.I_FIRST_NS] + 5_000_000_000
    i64[:, L.I_PKTS_AB] = 1 + np.arange(n)
    i64[:, L.I_PKTS_BA] = 2 + np.arange(n)
    i64[:, x + L.X_IPB_AB] = 100 + np.arange(n)
    i64[:, x + L.X_IPB_BA] = 200 + np.arange(n)
    u8[:, L.B_TCPF_AB] = 0x02 | 0x10
    u8[:, L.B_TCPF_BA] = 0x12 | 0x01
    u8[::2, L.B_CLIENT] = L.CLIENT_B  # every other flow was opened by B
    return keys, i64, u8


def _encode(n4: int, n6: int, mtu: int = 1400) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    keys, i64, u8 = _rows(n4, n6)
    x = export_col_for(OPTS)
    d = Deltas(i64[:, L.I_PKTS_AB], i64[:, L.I_PKTS_BA], i64[:, x], i64[:, x + 1])
    recs = build_records(keys, i64, u8, np.full(len(keys), 1, np.uint8), d)
    enc = MessageEncoder(42, mtu)
    msgs = [enc.templates(1000)] + enc.data(recs, 1000) + [enc.stats(1000, 0)]
    return msgs, keys, u8


def test_netflow_package_parses_every_message() -> None:
    msgs, keys, u8 = _encode(700, 300)
    templates: dict[str, dict[int, object]] = {"netflow": {}, "ipfix": {}}
    flows = []
    for m in msgs:
        pkt = netflow.parse_packet(m, templates)
        assert (
            pkt.header.version == 10 and pkt.header.to_dict()["obervation_domain_id"] == 42
        )  # sic
        flows += pkt.flows
    assert TEMPLATE_V4 in templates["ipfix"] and TEMPLATE_V6 in templates["ipfix"]
    data = [f.data for f in flows if "sourceTransportPort" in f.data]
    assert len(data) == 1000
    first = data[0]  # flow 0: opened by B, so B is the source
    assert first["sourceIPv4Address"] == 0xC0A80001
    assert first["destinationIPv4Address"] == 0x0A000001
    assert first["sourceTransportPort"] == 80 and first["destinationTransportPort"] == 1000
    assert first["protocolIdentifier"] == 6 and first["flowEndReason"] == 1
    assert first["flowEndMilliseconds"] - first["flowStartMilliseconds"] == 5000
    v6 = data[700]
    assert v6["sourceIPv6Address"] >> 64 == 0x20010DB800000001  # row 700 is even: B first
    stats = [f.data for f in flows if "exportedFlowRecordTotalCount" in f.data]
    assert stats[0]["exportedFlowRecordTotalCount"] == 1000


def test_records_round_trip_with_reverse_elements() -> None:
    msgs, keys, u8 = _encode(50, 50)
    parsed = parse_messages(msgs)
    assert len(parsed.records) == 100
    for i, r in enumerate(parsed.records):
        swap = i % 2 == 0
        fwd, rev = (2 + i, 1 + i) if swap else (1 + i, 2 + i)
        assert (r["packets"], r["rpackets"]) == (fwd, rev)
        fwd_b, rev_b = (200 + i, 100 + i) if swap else (100 + i, 200 + i)
        assert (r["octets"], r["roctets"]) == (fwd_b, rev_b)
        assert (r["flags"], r["rflags"]) == ((0x13, 0x12) if swap else (0x12, 0x13))
    assert parsed.option_records[0][(0, 42)] == 100  # exportedFlowRecordTotalCount


def test_messages_fit_the_mtu_and_sequence_counts_records() -> None:
    for mtu in (256, 576, 1400, 9000):
        msgs, _, _ = _encode(1234, 567, mtu)
        assert max(len(m) for m in msgs) <= mtu
        parsed = parse_messages(msgs)
        seen = 0
        for (_v, _l, _t, seq, dom), n in zip(
            parsed.headers, parsed.records_per_message, strict=True
        ):
            assert seq == seen and dom == 42
            seen += n
        assert len(parsed.records) == 1234 + 567
    per4 = (1400 - 20) // V4_DTYPE.itemsize
    per6 = (1400 - 20) // V6_DTYPE.itemsize
    msgs, _, _ = _encode(per4 * 3, per6 * 2)
    assert len(msgs) == 1 + 3 + 2 + 1  # templates, full v4 and v6 messages, stats


class FakeSender:
    """Collects offered messages (the exporter's unit tests need no socket)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.dropped = 0
        self.sent_messages = 0

    def offer(self, messages: list[bytes], wait_s: float = 0.0) -> int:
        self.messages += messages
        return len(messages)

    def close(self, timeout_s: float = 5.0) -> None:
        pass


def _exporter(active_s: float) -> tuple[IpfixExporter, FakeSender, FlowTable]:
    settings = IpfixSettings(parse_target("127.0.0.1:9"), active_timeout_s=active_s)
    fake = FakeSender()
    exp = IpfixExporter(settings, export_col_for(OPTS), sender=fake)  # type: ignore[arg-type]
    table = FlowTable(OPTS)
    exp.attach(table, live=False)
    return exp, fake, table


def test_active_timeout_sends_deltas_then_the_rest_on_expiry() -> None:
    exp, fake, table = _exporter(active_s=10)
    table.insert_synthetic(3)
    x = table.export_col
    rows = table.live_rows()
    t0 = 1_000_000_000_000
    table.i64[rows, L.I_FIRST_NS] = t0
    table.i64[rows, L.I_LAST_NS] = t0
    table.i64[rows, L.I_PKTS_AB] = 5
    table.i64[rows, x + L.X_IPB_AB] = 500
    exp.poll(t0 + 9_000_000_000)
    assert not parse_messages(fake.messages).records  # not due yet
    exp.poll(t0 + 10_000_000_000)
    first = parse_messages(fake.messages).records
    assert [(r["packets"], r["octets"], r["reason"]) for r in first] == [(5, 500, 2)] * 3
    table.i64[rows[0], L.I_PKTS_AB] = 8  # three more packets on one flow, then it expires
    table.i64[rows[0], x + L.X_IPB_AB] = 800
    batch = ExpiredBatch(
        table.keys[rows],
        table.i64[rows],
        None,
        table.u8[rows],
        np.full(3, L.REASON_TIMEOUT, np.uint8),
        3,
    )
    exp(batch)
    recs = parse_messages(fake.messages).records[3:]
    assert [(r["packets"], r["octets"], r["reason"]) for r in recs] == [(3, 300, 1)]


def test_sender_never_blocks_on_a_collector_that_does_not_read() -> None:
    """A TCP collector that accepts and never reads: offer() returns at once, the bounded
    queue overflows and the excess is counted, close() gives up after its guard."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    held: list[socket.socket] = []

    def accept() -> None:
        conn, _ = server.accept()
        held.append(conn)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    port = server.getsockname()[1]
    sender = Sender(parse_target(f"tcp://127.0.0.1:{port}"), queue_messages=64)
    msg = b"\x00" * 1400
    accepted = sum(sender.offer([msg] * 100) for _ in range(200))  # 28 MB offered
    assert accepted < 200 * 100
    assert sender.dropped_queue == 200 * 100 - accepted
    sender.close(timeout_s=1.0)
    assert sender.sent_messages + sender.dropped == accepted + sender.dropped_queue
    server.close()
    for c in held:
        c.close()


def test_reading_a_file_waits_for_a_healthy_collector() -> None:
    """wait_s > 0 (file input): a queue far smaller than the burst loses nothing while the
    collector keeps reading; wait_s = 0 (live) would have dropped most of the burst."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = bytearray()

    def read_all() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.extend(chunk)

    t = threading.Thread(target=read_all, daemon=True)
    t.start()
    sender = Sender(parse_target(f"tcp://127.0.0.1:{server.getsockname()[1]}"), queue_messages=4)
    msg = b"\x01" * 1000
    assert sender.offer([msg] * 3000, wait_s=0.25) == 3000
    sender.close(timeout_s=30.0)  # a hang guard
    t.join(timeout=30)
    server.close()
    assert sender.dropped == 0 and sender.sent_messages == 3000
    assert len(got) == 3000 * 1000


def test_udp_fast_path_keeps_order_and_counts_refusals() -> None:
    """UDP datagrams go out on the caller's thread while the sending thread is idle; a
    closed port's ICMP refusals are counted as dropped, never raised."""
    from .ipfix_support import UdpCatcher

    catcher = UdpCatcher()
    sender = Sender(parse_target(f"127.0.0.1:{catcher.port}"))
    msgs = [i.to_bytes(4, "big") * 10 for i in range(500)]
    assert sender.offer(msgs) == 500
    sender.close()
    assert catcher.close() == msgs and sender.dropped == 0
    closed = Sender(parse_target(f"127.0.0.1:{catcher.port}"))  # nothing listens now
    for _ in range(20):
        closed.offer([b"x" * 100])
    closed.close()
    assert closed.dropped > 0 and closed.dropped + closed.sent_messages == 20


def test_parse_target_forms() -> None:
    assert str(parse_target("collector:4739")) == "udp://collector:4739"
    assert str(parse_target("tcp://[::1]:4739")) == "tcp://[::1]:4739"
    for bad in ("nohost", "x:0", "x:70000", "http://x:1", ":5"):
        try:
            parse_target(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_a_run_without_flows_still_sends_templates_before_statistics() -> None:
    exp, fake, _table = _exporter(active_s=0)
    exp.finish(None)
    parsed = parse_messages(fake.messages)  # raises if a set came before its template
    assert parsed.option_records and parsed.option_records[-1][(0, 42)] == 0

"""Zeek connection model on hand-built packets: one behaviour per test (docs/exports.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netscope.analysis import Analyzer
from netscope.batch import batch_from_packets
from netscope.flows.zeek import ZeekConnTracker
from netscope.gen import packets as pk
from netscope.sinks.zeek_conn import conn_columns

from .conftest import HIGH_IP, LOW_IP, MS, T0, Frame, tcp_pair, udp_frame

SEC = 1000 * MS


def conns(frames: Sequence[Frame], timeout: float | None = None) -> list[dict[str, Any]]:
    """conn.log records (field name -> value) of ``frames`` fed as one batch."""
    tracker = ZeekConnTracker(timeout)
    out: list[dict[str, Any]] = []

    def collect(batch: Any) -> None:
        cols = conn_columns(batch)
        n = cols.pop("_n")
        out.extend({k: cols[k][i] for k in cols} for i in range(n))

    tracker.on_finished = collect
    data, stamps = [], []
    for n, frame in enumerate(frames):
        ts, raw = frame if isinstance(frame, tuple) else (T0 + n * MS, frame)
        stamps.append(ts)
        data.append(raw)
    batch = batch_from_packets(data, stamps, linktype=1)
    cols = Analyzer(batch_capacity=max(batch.count, 1)).process(batch)
    tracker(batch, cols)
    tracker.finish()
    return sorted(out, key=lambda r: r["ts"])


def handshake_and_close(client: Any, server: Any, data: int = 10) -> list[bytes]:
    return [
        client.seg("S", seq=100),
        server.seg("SA", seq=500, ack=101),
        client.seg("A", seq=101, ack=501),
        client.seg("PA", seq=101, ack=501, data=data),
        server.seg("A", seq=501, ack=101 + data),
        client.seg("FA", seq=101 + data, ack=501),
        server.seg("FA", seq=501, ack=102 + data),
        client.seg("A", seq=102 + data, ack=502),
    ]


def test_full_connection_is_sf_with_zeek_history() -> None:
    client, server = tcp_pair()
    (rec,) = conns(handshake_and_close(client, server, data=10))
    assert (rec["id.orig_h"], rec["id.orig_p"], rec["id.resp_p"]) == (LOW_IP, 40000, 80)
    assert rec["conn_state"] == "SF"
    assert rec["history"] == "ShADaFf"  # the server sent no data: no d
    assert (rec["orig_bytes"], rec["resp_bytes"]) == (10, 0)
    assert (rec["orig_pkts"], rec["resp_pkts"]) == (5, 3)
    assert rec["orig_ip_bytes"] == 4 * 40 + 50
    # last time stops at the second FIN: the final ACK counts, but not in the duration
    assert rec["duration"] == "0.006000"


def test_syn_ack_first_from_server_port_flips() -> None:
    client, server = tcp_pair()
    frames = [
        server.seg("SA", seq=500, ack=101),
        client.seg("A", seq=101, ack=501),
        client.seg("PA", seq=101, ack=501, data=5),
    ]
    (rec,) = conns(frames)
    assert rec["id.orig_h"] == LOW_IP and rec["id.resp_p"] == 80
    assert rec["history"].startswith("^h")


def test_rejected_attempts_are_separate_connections() -> None:
    client, server = tcp_pair()
    frames = [
        client.seg("S", seq=100),
        server.seg("RA", seq=0, ack=101),
        client.seg("S", seq=100),  # same ISN retried: still a new connection for Zeek
        server.seg("RA", seq=0, ack=101),
    ]
    recs = conns(frames)
    assert [(r["conn_state"], r["history"]) for r in recs] == [("REJ", "Sr"), ("REJ", "Sr")]


def test_unanswered_syn_splits_after_attempt_delay() -> None:
    client, _ = tcp_pair()
    frames = [
        (T0, client.seg("S", seq=100)),
        (T0 + 1 * SEC, client.seg("A", seq=101, ack=1)),
        (T0 + 6 * SEC, client.seg("PA", seq=101, ack=1, data=4)),
    ]
    recs = conns(frames)
    assert [(r["conn_state"], r["history"]) for r in recs] == [("S0", "SA"), ("OTH", "D")]


def test_retransmissions_scale_by_ten() -> None:
    client, server = tcp_pair()
    frames = [client.seg("S", seq=100), server.seg("SA", seq=500, ack=101)]
    frames += [client.seg("PA", seq=101, ack=501, data=10)] * 12  # 11 retransmissions
    (rec,) = conns(frames)
    assert rec["history"] == "ShDTT"  # 1st and 10th retransmission


def test_gap_acked_by_peer_is_missed() -> None:
    client, server = tcp_pair()
    frames = [
        client.seg("S", seq=100),
        server.seg("SA", seq=500, ack=101),
        client.seg("PA", seq=101, ack=501, data=10),
        client.seg("PA", seq=131, ack=501, data=10),  # 111..131 never seen
        server.seg("A", seq=501, ack=141),
    ]
    (rec,) = conns(frames)
    assert rec["missed_bytes"] == 20
    assert "G" in rec["history"]
    assert rec["orig_bytes"] == 40  # payload by sequence numbers, the gap included


def test_hole_filled_out_of_order_is_not_missed() -> None:
    client, server = tcp_pair()
    frames = [
        client.seg("S", seq=100),
        server.seg("SA", seq=500, ack=101),
        client.seg("PA", seq=111, ack=501, data=10),
        client.seg("PA", seq=101, ack=501, data=10),  # fills the hole (Zeek: a 'T')
        server.seg("A", seq=501, ack=121),
    ]
    (rec,) = conns(frames)
    assert rec["missed_bytes"] == 0
    assert "G" not in rec["history"]


def test_udp_states_and_icmp_keys() -> None:
    frames = [
        udp_frame(LOW_IP, HIGH_IP, 5000, 53, size=20),
        udp_frame(HIGH_IP, LOW_IP, 53, 5000, size=40),
        udp_frame(LOW_IP, HIGH_IP, 6000, 7000, size=8),
        pk.ether_ip(LOW_IP, HIGH_IP, 1, pk.icmp_echo(1, 1, b"p" * 56)),
        pk.ether_ip(HIGH_IP, LOW_IP, 1, pk.icmp_echo(1, 1, b"p" * 56, reply=True)),
    ]
    recs = {(r["proto"], r["id.orig_p"]): r for r in conns(frames)}
    dns = recs[("udp", 5000)]
    assert (dns["conn_state"], dns["history"], dns["orig_bytes"], dns["resp_bytes"]) == (
        "SF",
        "Dd",
        20,
        40,
    )
    one = recs[("udp", 6000)]
    assert (one["conn_state"], one["duration"], one["orig_bytes"]) == ("S0", None, None)
    ping = recs[("icmp", 8)]
    assert (ping["id.resp_p"], ping["orig_pkts"], ping["resp_pkts"]) == (0, 1, 1)
    assert ping["conn_state"] == "OTH" and ping["id.orig_h"] == LOW_IP


def test_inactivity_timeouts_zeek_defaults_or_user_value() -> None:
    a = [
        (T0, udp_frame(LOW_IP, HIGH_IP, 5000, 9999)),
        (T0 + 30 * SEC, udp_frame(LOW_IP, HIGH_IP, 5000, 9999)),
        (T0 + 100 * SEC, udp_frame(LOW_IP, HIGH_IP, 5000, 9999)),
    ]
    assert len(conns(a)) == 2  # UDP: 1 min inactivity
    assert len(conns(a, timeout=10.0)) == 3
    client, _ = tcp_pair()
    t = [
        (T0, client.seg("PA", seq=1, ack=1, data=1)),
        (T0 + 200 * SEC, client.seg("PA", seq=2, ack=1, data=1)),
    ]
    assert len(conns(t)) == 1  # TCP: 5 min inactivity


def test_reset_by_originator_after_data_is_rsto() -> None:
    client, server = tcp_pair()
    frames = [
        client.seg("S", seq=100),
        server.seg("SA", seq=500, ack=101),
        client.seg("A", seq=101, ack=501),
        client.seg("PA", seq=101, ack=501, data=3),
        client.seg("R", seq=104),
    ]
    (rec,) = conns(frames)
    assert (rec["conn_state"], rec["history"]) == ("RSTO", "ShADR")


def test_syn_ack_before_syn_reversal_flips_to_the_syn_sender() -> None:
    # ports no heuristic knows: the SYN-ACK's sender is the originator until the SYN comes
    client, server = tcp_pair(cport=40000, sport=50000)
    frames = [
        server.seg("SA", seq=500, ack=101),
        client.seg("S", seq=100),
        client.seg("A", seq=101, ack=501),
        client.seg("FA", seq=101, ack=501),
        server.seg("FA", seq=501, ack=102),
    ]
    (rec,) = conns(frames)
    assert (rec["id.orig_h"], rec["id.orig_p"], rec["id.resp_p"]) == (LOW_IP, 40000, 50000)
    assert rec["history"].startswith("Hs^")  # letters keep the case they were given
    assert rec["conn_state"] == "SF"

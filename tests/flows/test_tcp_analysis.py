"""TCP analysis on hand-built traces: state machine, client side, RTT, retransmissions, ooo.

Every trace is a handful of segments written out explicitly (sequence numbers, timestamps),
so each expected value can be checked by reading the test. The rules are SPEC §6 as
docs/flow-tracking.md spells them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netscope.flows.records import FlowRecord
from netscope.flows.table import FlowOptions, FlowTable

from .conftest import (
    HIGH_IP,
    HIGH_IP6,
    KEEP_ALL,
    LOW_IP,
    LOW_IP6,
    MS,
    T0,
    feed,
    flow_records,
    only_flow,
    tcp_pair,
    track_capture,
    track_frames,
    udp_frame,
    write_trace,
)


def states_along(frames: list[bytes], options: FlowOptions = KEEP_ALL) -> list[str | None]:
    """The flow's tcp_state after each frame, feeding them one at a time into one table."""
    table = FlowTable(options)
    out = []
    for frame in frames:
        feed(table, [frame])
        out.append(only_flow(table).tcp_state)
    return out


def at(script: list[tuple[float, bytes]]) -> list[tuple[int, bytes]]:
    """(milliseconds after T0, frame) → (ts_ns, frame)."""
    return [(T0 + round(t * MS), frame) for t, frame in script]


C, S = tcp_pair()  # client 10.0.0.1:40000 (endpoint A), server 10.0.0.2:80 (endpoint B)
HANDSHAKE = [C.seg("S", 100), S.seg("SA", 500, 101), C.seg("A", 101, 501)]


# ---------------------------------------------------------------------------- state machine


def test_three_way_handshake_states() -> None:
    assert states_along(HANDSHAKE) == ["syn_sent", "syn_ack", "established"]


def test_first_packet_mid_stream_ack_is_established() -> None:
    rec = only_flow(track_frames([S.seg("PA", 7000, 9000, data=50)]))
    assert rec.tcp_state == "established"
    assert rec.client is None  # no SYN seen: the client is unknown


@pytest.mark.parametrize(
    ("server_ip", "client"),
    [(HIGH_IP, "a_to_b"), (LOW_IP, "b_to_a")],
    ids=["server-is-b", "server-is-a"],
)
def test_syn_ack_without_syn_names_the_receiver_client(server_ip: str, client: str) -> None:
    client_ip = LOW_IP if server_ip == HIGH_IP else HIGH_IP
    _, server = tcp_pair(client_ip, server_ip)
    rec = only_flow(track_frames([server.seg("SA", 500, 101)]))
    assert rec.tcp_state == "syn_ack"
    assert rec.client == client


FIN_WAIT = [*HANDSHAKE, C.seg("FA", 101, 501)]
CLOSED = [*FIN_WAIT, S.seg("FA", 501, 102), C.seg("A", 102, 502)]
PREFIXES = {
    "unknown": [],
    "syn_sent": HANDSHAKE[:1],
    "syn_ack": HANDSHAKE[:2],
    "established": HANDSHAKE,
    "fin_wait": FIN_WAIT,
    "closed": CLOSED,
}


@pytest.mark.parametrize("side", ["client", "server"])
@pytest.mark.parametrize("state", list(PREFIXES))
def test_rst_from_any_state_resets(state: str, side: str) -> None:
    frames = PREFIXES[state]
    if frames:
        assert states_along(frames)[-1] == state
    rst = C.seg("R", 102, 0) if side == "client" else S.seg("RA", 502, 102)
    assert states_along([*frames, rst])[-1] == "reset"


def test_fin_then_fin_from_the_other_side_closes() -> None:
    assert states_along(CLOSED)[len(HANDSHAKE) :] == ["fin_wait", "closed", "closed"]


def test_fin_retransmitted_by_the_same_side_stays_fin_wait() -> None:
    frames = [*FIN_WAIT, C.seg("FA", 101, 501), S.seg("A", 501, 102)]
    assert states_along(frames)[len(HANDSHAKE) :] == ["fin_wait", "fin_wait", "fin_wait"]
    # and the other side's FIN still closes it afterwards
    assert states_along([*frames, S.seg("FA", 501, 102)])[-1] == "closed"


def test_server_fin_first_then_client_fin_closes() -> None:
    frames = [*HANDSHAKE, S.seg("FA", 501, 101), C.seg("FA", 101, 502)]
    assert states_along(frames)[len(HANDSHAKE) :] == ["fin_wait", "closed"]


@pytest.mark.parametrize("ended", ["closed", "reset"])
def test_new_syn_after_the_end_restarts_the_connection(ended: str) -> None:
    end = CLOSED if ended == "closed" else [*HANDSHAKE, S.seg("R", 501, 0)]
    # the same 4-tuple reused; this time the *server* side opens (client flips to "b_to_a"), with
    # sequence numbers below the old connection's: no false retransmission / out-of-order
    reopen = [
        S.seg("S", 10),
        C.seg("SA", 20, 11),
        S.seg("A", 11, 21),
        S.seg("PA", 11, 21, data=40),
        C.seg("A", 21, 51),
    ]
    states = states_along([*end, *reopen])
    assert states[len(end) - 1] == ended
    assert states[len(end) :] == [
        "syn_sent",
        "syn_ack",
        "established",
        "established",
        "established",
    ]
    rec = only_flow(track_frames([*end, *reopen]))
    assert rec.client == "b_to_a"
    assert (rec.retransmissions, rec.out_of_order) == (0, 0)
    # counters span both connections: one flow per 5-tuple
    assert rec.packets_total == len(end) + len(reopen)


def test_syn_during_a_live_connection_does_not_restart() -> None:
    assert states_along([*HANDSHAKE, C.seg("S", 100)])[-1] == "established"


# ---------------------------------------------------------------------------- client side


@pytest.mark.parametrize(
    ("client_ip", "server_ip", "expected"),
    [
        (LOW_IP, HIGH_IP, "a_to_b"),
        (HIGH_IP, LOW_IP, "b_to_a"),
        (LOW_IP6, HIGH_IP6, "a_to_b"),
        (HIGH_IP6, LOW_IP6, "b_to_a"),
    ],
    ids=["v4-client-low", "v4-client-high", "v6-client-low", "v6-client-high"],
)
def test_client_is_the_side_of_the_first_syn(client_ip: str, server_ip: str, expected: str) -> None:
    c, s = tcp_pair(client_ip, server_ip, cport=50000, sport=443)
    rec = only_flow(track_frames([c.seg("S", 1), s.seg("SA", 9, 2), c.seg("PA", 2, 10, data=7)]))
    assert rec.client == expected
    assert rec.tcp_state == "established"
    # A is the smaller endpoint whichever side talks first
    assert rec.a_ip == (LOW_IP if "." in client_ip else LOW_IP6)
    sent_by_client = (2, 2 * 54 + 7) if client_ip.count(".") else (2, 2 * 74 + 7)
    got = (
        (rec.packets_a_to_b, rec.bytes_a_to_b)
        if expected == "a_to_b"
        else (rec.packets_b_to_a, rec.bytes_b_to_a)
    )
    assert got == sent_by_client


def test_same_port_both_sides_orders_by_address() -> None:
    c, s = tcp_pair(HIGH_IP, LOW_IP, cport=5000, sport=5000)
    rec = only_flow(track_frames([c.seg("S", 1)]))
    assert (rec.a_ip, rec.b_ip, rec.client) == (LOW_IP, HIGH_IP, "b_to_a")


# ---------------------------------------------------------------------------- RTT

RTT_SCRIPT = [
    (0, C.seg("S", 100)),  # SYN: seq_end 101 remembered at t=0
    (10, S.seg("SA", 500, 101)),  # ACK 101 → sample 10 ms; SYN-ACK seq_end 501 at t=10
    (12, C.seg("A", 101, 501)),  # ACK 501 → sample 2 ms
    (20, C.seg("PA", 101, 501, data=100)),  # seq_end 201 at t=20
    (21, C.seg("PA", 201, 501, data=100)),  # seq_end 301 at t=21
    (50, S.seg("A", 501, 301)),  # covers both: ONE sample, newest covered (t=21) → 29 ms
    (60, C.seg("PA", 301, 501, data=100)),  # seq_end 401 at t=60
    (70, S.seg("A", 501, 351)),  # partial ACK: covers nothing remembered → no sample
    (80, S.seg("A", 501, 401)),  # → 20 ms
    (90, S.seg("A", 501, 401)),  # duplicate ACK: nothing outstanding → no sample
]


def expected_rtt(samples: list[float]) -> tuple[float, float, float, int]:
    """(last, min, ewma, n) per SPEC §6: EWMA alpha 0.125, seeded with the first sample."""
    ewma = samples[0]
    for s in samples[1:]:
        ewma = 0.875 * ewma + 0.125 * s
    return samples[-1], min(samples), ewma, len(samples)


def rtt_of(rec: FlowRecord) -> tuple[float | None, float | None, float | None, int | None]:
    return rec.rtt_last_ms, rec.rtt_min_ms, rec.rtt_ewma_ms, rec.rtt_samples


def test_rtt_scripted_exchange_exact_values(tmp_path: Path) -> None:
    # through a real (nanosecond) pcap file and the reader, not only an in-memory batch
    path = write_trace(tmp_path / "rtt.pcap", at(RTT_SCRIPT))
    rec = only_flow(track_capture(path))
    assert expected_rtt([10, 2, 29, 20]) == (20.0, 2.0, 12.5625, 4)
    assert rtt_of(rec) == (20.0, 2.0, 12.5625, 4)
    assert (rec.retransmissions, rec.out_of_order) == (0, 0)


def test_rtt_values_along_the_script() -> None:
    """After each packet: samples appear exactly where the script says."""
    table = FlowTable(KEEP_ALL)
    seen = []
    for ts, frame in at(RTT_SCRIPT):
        feed(table, [(ts, frame)])
        seen.append(rtt_of(only_flow(table)))
    assert seen[0] == (None, None, None, 0)
    assert seen[1] == (10.0, 10.0, 10.0, 1)  # the handshake gives the first sample
    assert seen[2] == (2.0, 2.0, 9.0, 2)
    assert seen[3] == seen[4] == seen[2]
    assert seen[5] == (29.0, 2.0, 11.5, 3)
    assert seen[6] == seen[7] == seen[5]
    assert seen[8] == seen[9] == (20.0, 2.0, 12.5625, 4)


def test_rtt_first_sample_from_the_handshake_only() -> None:
    rec = only_flow(track_frames(at(RTT_SCRIPT[:2])))
    assert rtt_of(rec) == (10.0, 10.0, 10.0, 1)


def test_karn_resent_data_gives_no_sample() -> None:
    script = [
        *RTT_SCRIPT[:3],  # samples 10, 2
        (20, C.seg("PA", 101, 501, data=100)),
        (220, C.seg("PA", 101, 501, data=100)),  # resent before any ACK for it
        (230, S.seg("A", 501, 201)),  # ambiguous: which copy? → no sample
        (240, C.seg("PA", 201, 501, data=100)),  # new data is timed again
        (250, S.seg("A", 501, 301)),  # → 10 ms
    ]
    table = FlowTable(KEEP_ALL)
    feed(table, at(script[:6]))
    assert rtt_of(only_flow(table)) == (2.0, 2.0, 9.0, 2)
    feed(table, at(script[6:]))
    rec = only_flow(table)
    assert rtt_of(rec) == expected_rtt([10, 2, 10])
    assert rec.out_of_order == 1  # resent before the peer's ACK (SPEC rule)


def test_karn_after_ack_retransmission_gives_no_sample() -> None:
    script = [
        *RTT_SCRIPT[:3],
        (20, C.seg("PA", 101, 501, data=100)),
        (30, S.seg("A", 501, 201)),  # → 10 ms
        (40, C.seg("PA", 101, 501, data=100)),  # spurious resend after the ACK
        (45, S.seg("A", 501, 201)),  # → nothing
    ]
    rec = only_flow(track_frames(at(script)))
    assert rtt_of(rec) == expected_rtt([10, 2, 10])
    assert (rec.retransmissions, rec.out_of_order) == (1, 0)


def test_rtt_ring_remembers_128_segments_per_direction() -> None:
    script = RTT_SCRIPT[:3]
    for k in range(130):  # 130 one-byte segments at t = 100, 101, ... 229 ms
        script.append((100 + k, C.seg("PA", 101 + k, 501, data=1)))
    script.append((300, S.seg("A", 501, 101 + 130)))  # covers all 130
    rec = only_flow(track_frames(at(script)))
    # segments 129 and 130 were not remembered: the newest remembered one is #128 (t = 227)
    assert rtt_of(rec) == expected_rtt([10, 2, 300 - 227])


def test_rtt_samples_both_directions_into_one_flow() -> None:
    script = [
        *RTT_SCRIPT[:3],
        (20, S.seg("PA", 501, 101, data=10)),  # server data
        (25, C.seg("A", 101, 511)),  # client ACKs → 5 ms
        (30, C.seg("PA", 101, 511, data=10)),
        (70, S.seg("A", 511, 111)),  # → 40 ms
    ]
    rec = only_flow(track_frames(at(script)))
    assert rtt_of(rec) == expected_rtt([10, 2, 5, 40])


# ---------------------------------------------------------------------------- wrap-around

ISN = 2**32 - 150  # the client's sequence numbers cross 2**32 → 0 during the transfer


def wrap_script() -> list[tuple[float, bytes]]:
    c, s = C, S
    return [
        (0, c.seg("S", ISN)),
        (10, s.seg("SA", 500, ISN + 1)),
        (12, c.seg("A", ISN + 1, 501)),
        (20, c.seg("PA", ISN + 1, 501, data=100)),  # ends at 2**32 - 49
        (21, c.seg("PA", ISN + 101, 501, data=100)),  # 2**32 - 49 .. 51: crosses zero
        (22, c.seg("PA", ISN + 201, 501, data=100)),  # 51 .. 151
        (30, s.seg("A", 501, ISN + 101)),  # → 10 ms
        (40, s.seg("A", 501, ISN + 301)),  # ack number 151 (wrapped) → 18 ms
    ]


def test_sequence_wrap_no_false_retrans_and_rtt_still_sampled() -> None:
    rec = only_flow(track_frames(at(wrap_script())))
    assert (rec.retransmissions, rec.out_of_order) == (0, 0)
    assert rtt_of(rec) == expected_rtt([10, 2, 10, 18])


def test_sequence_wrap_real_retrans_and_ooo_are_still_seen() -> None:
    script = wrap_script()
    script += [
        (50, C.seg("PA", ISN + 101, 501, data=100)),  # the zero-crossing segment again: ACKed
        (60, C.seg("PA", ISN + 401, 501, data=100)),  # 251 .. 351 sent before 151 .. 251
        (61, C.seg("PA", ISN + 301, 501, data=100)),  # gap filler, not ACKed yet → ooo
    ]
    rec = only_flow(track_frames(at(script)))
    assert (rec.retransmissions, rec.out_of_order) == (1, 1)


# ---------------------------------------------------------------------------- retrans vs ooo


def counters(frames: list[bytes], options: FlowOptions = KEEP_ALL) -> tuple[int, int]:
    rec = only_flow(track_frames(frames, options))
    return rec.retransmissions, rec.out_of_order


DATA1 = C.seg("PA", 101, 501, data=100)  # 101 .. 201
DATA2 = C.seg("PA", 201, 501, data=100)  # 201 .. 301


def test_resent_after_the_peer_acked_it_is_a_retransmission() -> None:
    assert counters([*HANDSHAKE, DATA1, S.seg("A", 501, 201), DATA1]) == (1, 0)


def test_resent_before_the_peer_acked_it_is_out_of_order() -> None:
    # the peer's last ACK (501 → 101, from the handshake) is below the segment's end
    assert counters([*HANDSHAKE, DATA1, DATA1]) == (0, 1)


def test_gap_filled_late_is_out_of_order() -> None:
    assert counters([*HANDSHAKE, DATA2, DATA1, S.seg("A", 501, 301)]) == (0, 1)


def test_no_ack_from_the_peer_yet_counts_as_retransmission() -> None:
    # a SYN sent twice: the server has sent nothing, so there is no peer ACK to compare with
    assert counters([C.seg("S", 100), C.seg("S", 100)]) == (1, 0)
    # mid-stream data seen twice before the peer says anything
    assert counters([DATA1, DATA1]) == (1, 0)


def test_partial_overlap_reaching_new_data_is_not_counted() -> None:
    longer = C.seg("PA", 151, 501, data=100)  # 151 .. 251: ends beyond the highest end (201)
    assert counters([*HANDSHAKE, DATA1, longer]) == (0, 0)


def test_pure_acks_and_keepalive_probes() -> None:
    dup_acks = [S.seg("A", 501, 201)] * 3
    assert counters([*HANDSHAKE, DATA1, *dup_acks]) == (0, 0)
    # a keep-alive carries the last byte already ACKed again: a retransmission by the rule
    keepalive = C.seg("A", 200, 501, data=1)
    assert counters([*HANDSHAKE, DATA1, S.seg("A", 501, 201), keepalive]) == (1, 0)


def test_fin_counts_one_sequence_number() -> None:
    fin = C.seg("FA", 201, 501)  # FIN occupies 201 .. 202
    assert counters([*HANDSHAKE, DATA1, fin, S.seg("A", 501, 202), fin]) == (1, 0)
    assert counters([*HANDSHAKE, DATA1, fin, fin]) == (0, 1)


def test_each_direction_is_judged_on_its_own() -> None:
    server_data = S.seg("PA", 501, 101, data=100)  # 501 .. 601, still ACKing only 101
    frames = [*HANDSHAKE, DATA1, server_data, C.seg("A", 201, 601), DATA1, server_data]
    # DATA1 again: server's ACK 201 was never sent (it ACKed 101) → client resend is ooo;
    # server_data again after the client's ACK 601 → retransmission
    assert counters(frames) == (1, 1)


# ---------------------------------------------------------------------------- switches

MIXED = [
    *HANDSHAKE,
    DATA1,
    S.seg("A", 501, 201),
    DATA1,  # retransmission
    C.seg("PA", 301, 501, data=100),
    DATA2,  # out-of-order
    S.seg("A", 501, 401),
]


@pytest.mark.parametrize(
    ("options", "want"),
    [
        (FlowOptions(max_flows=0, timeout_secs=0), (1, 1, True)),
        (FlowOptions(max_flows=0, timeout_secs=0, rtt=False), (1, 1, False)),
        (FlowOptions(max_flows=0, timeout_secs=0, retrans=False), (0, 1, True)),
        (FlowOptions(max_flows=0, timeout_secs=0, out_of_order=False), (1, 0, True)),
    ],
    ids=["all-on", "rtt-off", "retrans-off", "ooo-off"],
)
def test_analysis_switches_are_independent(
    options: FlowOptions, want: tuple[int, int, bool]
) -> None:
    rec = only_flow(track_frames(MIXED, options))
    retrans, ooo, rtt = want
    assert (rec.retransmissions, rec.out_of_order) == (retrans, ooo)
    if rtt:
        assert rec.rtt_samples == 3  # handshake (2) + the ACK of DATA1
        assert rec.rtt_last_ms is not None
    else:
        assert rec.rtt_samples == 0  # deep mode: a count, but no sample
        assert (rec.rtt_last_ms, rec.rtt_min_ms, rec.rtt_ewma_ms) == (None, None, None)
    assert (rec.tcp_state, rec.client) == ("established", "a_to_b")


def test_scale_mode_tracks_state_and_counts_only() -> None:
    scale = FlowOptions(max_flows=0, timeout_secs=0, rtt=False, retrans=False, out_of_order=False)
    assert scale.scale_mode
    frames = [*MIXED, C.seg("FA", 401, 501), S.seg("FA", 501, 402)]
    deep_table = track_frames(frames)
    scale_table = track_frames(frames, scale)
    assert not scale_table.deep and scale_table.f64.shape[0] == 1  # no RTT storage at all
    deep, small = only_flow(deep_table), only_flow(scale_table)
    assert rtt_of(small) == (None, None, None, 0)  # scale mode: no RTT, a count of 0
    assert (small.retransmissions, small.out_of_order) == (0, 0)
    assert (small.tcp_state, small.client) == ("closed", "a_to_b") == (deep.tcp_state, deep.client)
    for name in ("packets_a_to_b", "packets_b_to_a", "bytes_a_to_b", "bytes_b_to_a"):
        assert getattr(small, name) == getattr(deep, name)
    assert (small.first_seen_ns, small.last_seen_ns) == (deep.first_seen_ns, deep.last_seen_ns)
    assert (deep.retransmissions, deep.out_of_order) == (1, 1)


def test_scale_and_deep_agree_on_many_flows() -> None:
    frames = []
    for k in range(40):
        c, s = tcp_pair(f"10.1.0.{k + 1}", HIGH_IP, cport=30000 + k, sport=443)
        frames += [c.seg("S", k), s.seg("SA", 7, k + 1), c.seg("PA", k + 1, 8, data=k)]
        if k % 3 == 0:
            frames.append(s.seg("R", 8, 0))
    scale = FlowOptions(max_flows=0, timeout_secs=0, rtt=False, retrans=False, out_of_order=False)

    def summary(table: FlowTable) -> list[tuple[object, ...]]:
        return sorted(
            (
                r.label(),
                r.packets_a_to_b,
                r.packets_b_to_a,
                r.bytes_a_to_b,
                r.bytes_b_to_a,
                r.tcp_state,
                r.client,
            )
            for r in flow_records(table)
        )

    assert summary(track_frames(frames)) == summary(track_frames(frames, scale))


def test_udp_flows_carry_no_tcp_fields() -> None:
    frames = [udp_frame(LOW_IP, HIGH_IP, 5353, 53), udp_frame(HIGH_IP, LOW_IP, 53, 5353)]
    rec = only_flow(track_frames(frames))
    assert (rec.protocol, rec.tcp_state, rec.client) == ("udp", None, None)
    assert (rec.retransmissions, rec.out_of_order) == (0, 0)
    assert rtt_of(rec) == (None, None, None, 0)  # rtt_samples is a count: 0, not null


# ---------------------------------------------------------------------------- pre-1970 times


def test_rtt_sampled_before_1970() -> None:
    """A segment sent before 1970 (a pcapng if_tsoffset < 0 gives such times) yields an RTT
    sample like any other (the kernel once used a negative time as "nothing covered"):
    timestamps are signed nanoseconds and the RTT rule does not depend on their sign."""
    t0 = -86_400 * 1_000_000_000  # 1969-12-31
    script = [
        (t0, C.seg("S", 100)),
        (t0 + 10 * MS, S.seg("SA", 500, 101)),
        (t0 + 12 * MS, C.seg("A", 101, 501)),
    ]
    rec = only_flow(track_frames(script))
    assert rtt_of(rec) == expected_rtt([10, 2])

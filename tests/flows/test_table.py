"""FlowTable mechanics: keys, expiry, eviction, growth, RTT pool, top-N, and a model check.

Packet time drives everything here (no wall clock): expiry sweeps run at most once per
second of packet time, eviction takes the least recently seen flow. Bulk tests build frames
with the checksum-free builders of conftest.py, so 150k flows cost well under a second.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netscope.analysis import Analyzer
from netscope.batch import batch_from_packets
from netscope.flows import layout as L
from netscope.flows.records import FlowRecord, records_from_rows
from netscope.flows.table import (
    MAX_RING_SLOTS,
    UNLIMITED_INITIAL_ROWS,
    ExpiredBatch,
    FlowOptions,
    FlowTable,
)
from netscope.gen import packets as pk

from .conftest import (
    HIGH_IP,
    HIGH_IP6,
    KEEP_ALL,
    LOW_IP,
    LOW_IP6,
    MS,
    T0,
    fast_tcp4,
    fast_udp4,
    feed,
    flow_records,
    only_flow,
    tcp_pair,
    track_frames,
    udp_frame,
)

SEC = 1_000_000_000
TCP_SYN, TCP_ACK = 0x02, 0x10


class Expired:
    """``on_expired`` handler that keeps (record, reason) pairs (batches are only borrowed)."""

    def __init__(self) -> None:
        self.items: list[tuple[FlowRecord, str]] = []
        self.calls = 0

    def __call__(self, batch: ExpiredBatch) -> None:
        self.calls += 1
        recs = records_from_rows(batch.keys, batch.i64, batch.f64, batch.u8)
        reasons = [L.REASON_NAMES[int(r)] for r in batch.reason[: batch.count]]
        self.items.extend(zip(recs, reasons, strict=True))

    def ports(self) -> list[tuple[int, str]]:
        return [(rec.a_port, reason) for rec, reason in self.items]


def labels(table: FlowTable) -> set[str]:
    return {r.label() for r in flow_records(table)}


def udp_at(seconds: float, sport: int, size: int = 10) -> tuple[int, bytes]:
    """A UDP packet LOW_IP:sport -> HIGH_IP:9 at T0 + seconds (one flow per source port)."""
    return T0 + round(seconds * SEC), udp_frame(LOW_IP, HIGH_IP, sport, 9, size)


def label(sport: int) -> str:
    return f"udp {LOW_IP}:{sport} <-> {HIGH_IP}:9"


# ---------------------------------------------------------------------------- keys


def test_both_directions_share_one_entry_ipv4_and_ipv6() -> None:
    frames = [
        udp_frame(LOW_IP, HIGH_IP, 1000, 53, 10),
        udp_frame(HIGH_IP, LOW_IP, 53, 1000, 30),
        udp_frame(HIGH_IP, LOW_IP, 53, 1000, 30),
        udp_frame(HIGH_IP6, LOW_IP6, 53, 1000, 5),
        udp_frame(LOW_IP6, HIGH_IP6, 1000, 53, 7),
    ]
    recs = {r.a_ip: r for r in flow_records(track_frames(frames))}
    assert set(recs) == {LOW_IP, LOW_IP6}
    v4, v6 = recs[LOW_IP], recs[LOW_IP6]
    assert (v4.b_ip, v4.a_port, v4.b_port) == (HIGH_IP, 1000, 53)
    assert (v4.packets_a_to_b, v4.packets_b_to_a) == (1, 2)
    assert (v4.bytes_a_to_b, v4.bytes_b_to_a) == (42 + 10, 2 * (42 + 30))
    assert (v6.b_ip, v6.a_port, v6.b_port) == (HIGH_IP6, 1000, 53)
    assert (v6.packets_a_to_b, v6.packets_b_to_a) == (1, 1)
    assert (v6.bytes_a_to_b, v6.bytes_b_to_a) == (62 + 7, 62 + 5)
    # first_seen/last_seen follow the packets of the flow, whichever direction
    assert (v4.first_seen_ns, v4.last_seen_ns) == (T0, T0 + 2 * MS)
    assert (v6.first_seen_ns, v6.last_seen_ns) == (T0 + 3 * MS, T0 + 4 * MS)


def test_protocol_and_ports_are_part_of_the_key() -> None:
    c, _ = tcp_pair(LOW_IP, HIGH_IP, cport=1000, sport=53)
    frames = [
        udp_frame(LOW_IP, HIGH_IP, 1000, 53),
        c.seg("S", 1),  # same addresses and ports, TCP
        udp_frame(LOW_IP, HIGH_IP, 1001, 53),
        udp_frame(LOW_IP, HIGH_IP, 53, 1000),  # ports swapped: another flow
    ]
    assert len(flow_records(track_frames(frames))) == 4


def test_same_address_orders_by_port_and_self_flows() -> None:
    frames = [
        udp_frame("127.0.0.1", "127.0.0.1", 6000, 5000),
        udp_frame("127.0.0.1", "127.0.0.1", 5000, 6000),
        udp_frame("127.0.0.1", "127.0.0.1", 7000, 7000),  # both ends identical
        udp_frame("127.0.0.1", "127.0.0.1", 7000, 7000),
    ]
    recs = {r.a_port: r for r in flow_records(track_frames(frames))}
    assert recs[5000].b_port == 6000
    assert (recs[5000].packets_a_to_b, recs[5000].packets_b_to_a) == (1, 1)
    assert (recs[7000].packets_a_to_b, recs[7000].packets_b_to_a) == (2, 0)


def test_non_flow_packets_create_no_flows() -> None:
    mac1, mac2 = pk.DEFAULT_SRC_MAC, pk.DEFAULT_DST_MAC
    udp_payload = pk.udp(LOW_IP, HIGH_IP, 4000, 53, b"q" * 40)
    frames = [
        pk.ether_ip(LOW_IP, HIGH_IP, 1, pk.icmp_echo(1, 1, b"ping")),
        pk.ether_ip(LOW_IP6, HIGH_IP6, 58, pk.icmpv6_echo(LOW_IP6, HIGH_IP6, 1, 1)),
        pk.ethernet(mac1, mac2, 0x0806, bytes(28)),  # ARP
        pk.ethernet(mac1, mac2, 0x88CC, bytes(40)),  # LLDP
        pk.ether_ip(LOW_IP, HIGH_IP, 47, bytes(24)),  # GRE: IP, but no TCP/UDP header
        # non-initial fragments: no transport header, skipped for flow tracking (SPEC §3)
        pk.ethernet(
            mac1,
            mac2,
            0x0800,
            pk.ipv4(LOW_IP, HIGH_IP, 17, udp_payload[24:], flags_df=False, frag_offset=3),
        ),
        pk.ethernet(
            mac1,
            mac2,
            0x86DD,
            pk.ipv6(
                LOW_IP6,
                HIGH_IP6,
                17,
                bytes(64),
                ext_headers=[pk.fragment_header(offset=10, ident=7)],
            ),
        ),
        # a TCP header cut short by the IP length: a parse error, not a flow
        pk.ether_ip(LOW_IP, HIGH_IP, 6, bytes(12)),
    ]
    table = track_frames(frames)
    assert table.active == 0 and flow_records(table) == []
    assert table.g[L.G_TICK_PKTS] == len(frames)  # still counted as traffic
    assert table.g[L.G_TICK_BYTES] == sum(len(f) for f in frames)


def test_initial_fragment_creates_the_flow() -> None:
    mac1, mac2 = pk.DEFAULT_SRC_MAC, pk.DEFAULT_DST_MAC
    udp_payload = pk.udp(LOW_IP, HIGH_IP, 4000, 53, b"q" * 40)
    first = pk.ethernet(
        mac1,
        mac2,
        0x0800,
        pk.ipv4(
            LOW_IP, HIGH_IP, 17, udp_payload[:24], ident=9, flags_df=False, more_fragments=True
        ),
    )
    rest = pk.ethernet(
        mac1,
        mac2,
        0x0800,
        pk.ipv4(LOW_IP, HIGH_IP, 17, udp_payload[24:], ident=9, flags_df=False, frag_offset=3),
    )
    rec = only_flow(track_frames([first, rest]))
    assert (rec.a_port, rec.b_port, rec.packets_a_to_b, rec.bytes_a_to_b) == (
        4000,
        53,
        1,
        len(first),
    )


# ---------------------------------------------------------------------------- expiry


def test_expiry_on_packet_time_at_most_once_per_second() -> None:
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=2.0))
    feed(table, [udp_at(0.0, 1), udp_at(0.5, 2), udp_at(1.0, 3)])
    assert labels(table) == {label(1), label(2), label(3)}
    # t=2.2: a sweep is due (last one at 1.0): flow 1 idle 2.2 s goes, flow 2 idle 1.7 s stays
    feed(table, [udp_at(2.2, 3)])
    assert labels(table) == {label(2), label(3)}
    # t=2.9: flow 2 has been idle 2.4 s, but the next sweep is only due at 3.2
    feed(table, [udp_at(2.9, 3)])
    assert labels(table) == {label(2), label(3)}
    feed(table, [udp_at(3.2, 3)])
    assert labels(table) == {label(3)}
    assert table.totals["expired"] == 2 and table.active == 1


def test_idle_exactly_the_timeout_expires_and_traffic_keeps_a_flow_alive() -> None:
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=2.0))
    # sweeps run at 0.0 (the first packet), 1.0 and 2.0
    feed(table, [udp_at(0.0, 1), udp_at(0.0, 2), udp_at(1.0, 2), udp_at(2.0, 3)])
    assert labels(table) == {label(2), label(3)}  # flow 1 idle exactly 2.0 s at the sweep


def test_expired_flow_comes_back_as_a_new_flow() -> None:
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=1.0))
    feed(table, [udp_at(0.0, 1), udp_at(0.1, 1), udp_at(5.0, 1)])
    rec = only_flow(table)
    assert (rec.first_seen_ns, rec.packets_a_to_b) == (T0 + 5 * SEC, 1)
    assert table.totals["created"] == 2 and table.totals["expired"] == 1


def test_timeout_zero_never_expires() -> None:
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=0))
    feed(table, [udp_at(0.0, 1), udp_at(0.0, 2), udp_at(1_000_000.0, 3)])
    assert labels(table) == {label(1), label(2), label(3)}
    table.expire_idle(T0 + 10**7 * SEC)
    assert table.active == 3 and table.totals["expired"] == 0


def test_expire_idle_between_packets() -> None:
    """Live capture calls expire_idle on idle ticks; the same rule, no once-per-second gate."""
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=2.0))
    feed(table, [udp_at(0.0, 1), udp_at(1.0, 2)])
    table.expire_idle(T0 + 2 * SEC)
    assert labels(table) == {label(2)}
    table.expire_idle(T0 + 2 * SEC + 1)
    assert labels(table) == {label(2)}
    table.expire_idle(T0 + 3 * SEC)
    assert table.active == 0


def test_expired_records_keep_the_row_data() -> None:
    c, s = tcp_pair()
    frames = [
        (T0, c.seg("S", 100)),
        (T0 + 10 * MS, s.seg("SA", 500, 101)),
        (T0 + 12 * MS, c.seg("A", 101, 501)),
        (T0 + 20 * MS, c.seg("PA", 101, 501, data=100)),
        (T0 + 30 * MS, s.seg("A", 501, 201)),
        (T0 + 40 * MS, c.seg("PA", 101, 501, data=100)),  # a retransmission
        udp_at(0.05, 7, size=3),
    ]
    sink = Expired()
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=1.0, keep_expired=True))
    table.on_expired = sink
    feed(table, frames)
    before = {r.label(): r for r in flow_records(table)}
    feed(table, [udp_at(5.0, 8)])  # both flows idle > 1 s at this sweep
    assert labels(table) == {label(8)}
    assert sorted(reason for _, reason in sink.items) == ["timeout", "timeout"]
    after = {rec.label(): rec for rec, _ in sink.items}
    assert after == before  # every field, RTT included, exactly as the live row had it
    tcp = after[f"tcp {LOW_IP}:40000 <-> {HIGH_IP}:80"]
    assert (tcp.tcp_state, tcp.client, tcp.retransmissions, tcp.packets_total) == (
        "established",
        "a_to_b",
        1,
        6,
    )


def test_no_sink_no_buffering_but_totals_count() -> None:
    calls: list[int] = []
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=1.0))  # keep_expired False
    table.on_expired = lambda batch: calls.append(batch.count)
    feed(table, [udp_at(0.0, 1), udp_at(9.0, 2)])
    assert calls == [] and table.totals["expired"] == 1
    assert table.g[L.G_EXPIRED_DROPPED] == 1


def test_many_flows_expiring_at_once_drain_in_several_batches() -> None:
    n = 5000  # more than the 4096-entry expired buffer
    frames = [(T0, fast_udp4(0x0A000000 + k, 0x0A100000, 2000, 53)) for k in range(n)]
    sink = Expired()
    table = FlowTable(FlowOptions(max_flows=0, timeout_secs=1.0, keep_expired=True))
    table.on_expired = sink
    feed(table, frames)
    feed(table, [(T0 + 2 * SEC, fast_udp4(0x0B000000, 0x0A100000, 2000, 53))])
    assert sink.calls >= 2
    assert len(sink.items) == n and {reason for _, reason in sink.items} == {"timeout"}
    assert len({rec.a_ip for rec, _ in sink.items}) == n
    assert table.active == 1


# ---------------------------------------------------------------------------- eviction


def test_eviction_takes_the_least_recently_seen_flow() -> None:
    sink = Expired()
    table = FlowTable(FlowOptions(max_flows=3, timeout_secs=0, keep_expired=True))
    table.on_expired = sink
    feed(table, [udp_at(0.1, 1), udp_at(0.2, 2), udp_at(0.3, 3)])
    feed(table, [udp_at(0.4, 1)])  # flow 1 is now the most recent: LRU order 2, 3, 1
    feed(table, [udp_at(0.5, 4)])
    assert sink.ports() == [(2, "evicted")]
    feed(table, [udp_at(0.6, 5), udp_at(0.7, 6)])
    assert sink.ports() == [(2, "evicted"), (3, "evicted"), (1, "evicted")]
    assert labels(table) == {label(4), label(5), label(6)}
    assert table.active == 3 and table.capacity == 3
    assert table.totals["evicted"] == 3 and table.totals["expired"] == 0
    # the evicted record carries its data: flow 1 had two packets
    assert [rec.packets_a_to_b for rec, _ in sink.items] == [1, 1, 2]


def test_eviction_and_timeout_reasons_side_by_side() -> None:
    sink = Expired()
    table = FlowTable(FlowOptions(max_flows=2, timeout_secs=5.0, keep_expired=True))
    table.on_expired = sink
    feed(table, [udp_at(0.0, 1), udp_at(1.0, 2), udp_at(1.5, 3)])  # 3 evicts 1
    feed(table, [udp_at(6.2, 4)])  # sweep: 2 idle 5.2 s expires; 3 idle 4.7 s stays
    assert sink.ports() == [(1, "evicted"), (2, "timeout")]
    assert labels(table) == {label(3), label(4)}


# ---------------------------------------------------------------------------- growth


def test_unlimited_table_grows_past_its_initial_rows() -> None:
    n = 150_000
    assert n > 2 * UNLIMITED_INITIAL_ROWS  # two doublings of the initial 65,536 rows
    server = 0xC0A80001
    clients = [(0x0A000000 + k, 1024 + k % 50_000) for k in range(n)]
    table = FlowTable(KEEP_ALL)
    assert table.capacity == UNLIMITED_INITIAL_ROWS
    feed(table, [(T0, fast_udp4(ip, server, port, 53)) for ip, port in clients])
    assert table.active == n and table.capacity >= n
    # every flow is still found after the index was rebuilt: replies land on the same rows
    feed(table, [(T0 + SEC, fast_udp4(server, ip, 53, port, 20)) for ip, port in clients])
    assert table.active == n and table.totals["created"] == n
    rows = table.live_rows()
    assert len(rows) == n
    assert (table.i64[rows, L.I_PKTS_AB] == 1).all() and (table.i64[rows, L.I_PKTS_BA] == 1).all()
    assert (table.i64[rows, L.I_BYTES_AB] == 42).all() and (
        table.i64[rows, L.I_BYTES_BA] == 62
    ).all()
    got = {(int(k[L.K_A_LO]), int(k[L.K_META] >> 48)) for k in table.keys[rows]}
    assert got == set(clients)


# ---------------------------------------------------------------------------- RTT ring pool


def handshake_frames(n: int, step: int = 1) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """SYN, SYN-ACK and ACK frames of ``n`` connections 10.x -> 192.168.0.1:443."""
    server = 0xC0A80001
    syn, synack, ack = [], [], []
    for k in range(0, n, step):
        ip, port = 0x0A000000 + k, 1024 + k % 60_000
        syn.append(fast_tcp4(ip, server, port, 443, TCP_SYN, 1000, 0))
        synack.append(fast_tcp4(server, ip, 443, port, TCP_SYN | TCP_ACK, 5000, 1001))
        ack.append(fast_tcp4(ip, server, port, 443, TCP_ACK, 1001, 5001))
    return syn, synack, ack


def test_rtt_with_thousands_of_directions_outstanding_at_once() -> None:
    n = 1500  # SYNs then SYN-ACKs: 3000 directions with data in flight, > 1024
    syn, synack, ack = handshake_frames(n)
    table = FlowTable(KEEP_ALL)
    feed(table, [(T0, f) for f in syn])
    feed(table, [(T0 + 10 * MS, f) for f in synack])
    feed(table, [(T0 + 13 * MS, f) for f in ack])
    rows = table.live_rows()
    assert len(rows) == n
    assert (table.i64[rows, L.I_RTT_SAMPLES] == 2).all()
    assert np.allclose(table.f64[rows, L.F_RTT_MIN], 3.0)
    assert np.allclose(table.f64[rows, L.F_RTT_LAST], 3.0)
    assert np.allclose(table.f64[rows, L.F_RTT_EWMA], 0.875 * 10 + 0.125 * 3)
    assert table.totals["rtt_untracked"] == 0


def test_rtt_ring_pool_is_bounded() -> None:
    """A SYN flood cannot grow memory: past MAX_RING_SLOTS, segments go unsampled (counted).

    The first outstanding segment of a direction lives in the flow's own row (no ring);
    the ring pool is only used from the second one on, so each flow here sends two.
    """
    extra = 100
    n = MAX_RING_SLOTS + extra
    server = 0xC0A80001
    first, second = [], []
    for k in range(n):
        ip, port = 0x0A000000 + k, 1024 + k % 60_000
        first.append(fast_tcp4(ip, server, port, 443, TCP_SYN, 1000, 0))
        second.append(fast_tcp4(ip, server, port, 443, TCP_SYN, 2000, 0))  # new data, seq 2000
    table = FlowTable(KEEP_ALL)
    slots = table.ring_seq.shape[0]
    assert slots == MAX_RING_SLOTS
    feed(table, [(T0, f) for f in first])
    assert table.active == n
    assert table.totals["rtt_untracked"] == 0  # all in the rows' inline slots
    feed(table, [(T0 + MS, f) for f in second])
    assert table.totals["rtt_untracked"] == extra
    assert table.ring_seq.shape[0] == slots
    # an ACK covering both segments of the first flow samples the newer one (1 sample)
    ack_all = fast_tcp4(server, 0x0A000000, 443, 1024, TCP_SYN | TCP_ACK, 5000, 2001)
    feed(table, [(T0 + 21 * MS, ack_all)])
    rows = table.live_rows()
    assert int(table.i64[rows, L.I_RTT_SAMPLES].sum()) == 1
    assert np.isclose(table.f64[rows, L.F_RTT_LAST].max(), 20.0)
    # packets are counted whatever happens to RTT
    assert int(table.i64[rows, L.I_PKTS_AB].sum()) == 2 * n


# ---------------------------------------------------------------------------- top-N


def test_top_rows_largest_deltas_in_order_and_reset_only_those() -> None:
    sizes = {1: 100, 2: 500, 3: 300, 4: 200, 5: 400}
    table = track_frames([udp_at(0.0, port, size) for port, size in sizes.items()])

    def top(n: int) -> list[tuple[int, int]]:
        rows = table.top_rows(n)
        return [
            (r.a_port, r.delta_bytes)
            for r in records_from_rows(table.keys, table.i64, table.f64, table.u8, rows)
        ]

    frame = 42  # Ethernet + IPv4 + UDP headers
    assert top(3) == [(2, frame + 500), (5, frame + 400), (3, frame + 300)]
    table.reset_delta(table.top_rows(3))
    # the two unreported flows keep their deltas; reported ones start again from zero
    assert top(3) == [(4, frame + 200), (1, frame + 100)]
    feed(table, [udp_at(1.0, 2, 10)])
    assert top(5) == [(4, frame + 200), (1, frame + 100), (2, frame + 10)]
    # totals are not deltas: flow 2 still has all its bytes
    rec2 = next(r for r in flow_records(table) if r.a_port == 2)
    assert rec2.bytes_a_to_b == 2 * frame + 510
    assert len(table.top_rows(0)) == 0


def test_top_rows_with_many_flows_matches_a_sort() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.permutation(2000)[:300]  # distinct sizes: no ties
    table = track_frames(
        [(T0, fast_udp4(0x0A000000 + k, 0x0A100000, 2000, 53, int(s))) for k, s in enumerate(sizes)]
    )
    rows = table.top_rows(10)
    deltas = table.i64[rows, L.I_DELTA_BYTES].tolist()
    assert deltas == sorted((int(s) + 42 for s in sizes), reverse=True)[:10]


# ---------------------------------------------------------------------------- model check

ADDRS = {
    4: ["10.0.0.1", "10.0.0.2", "192.168.1.1"],
    6: ["2001:db8::1", "2001:db8::2", "fe80::1"],
}
PORTS = [53, 80, 1024, 65535]

endpoint_pairs = st.tuples(
    st.sampled_from([4, 6]),
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from(PORTS),
    st.sampled_from(PORTS),
    st.sampled_from(["tcp", "udp"]),
)
packet_plan = st.tuples(st.integers(0, 7), st.booleans(), st.integers(0, 40))


def build(flow: tuple[int, int, int, int, int, str], reverse: bool, size: int) -> bytes:
    version, i, j, p1, p2, proto = flow
    src, dst = ADDRS[version][i], ADDRS[version][j]
    if reverse:
        src, dst, p1, p2 = dst, src, p2, p1
    if proto == "udp":
        return pk.ether_ip(src, dst, 17, pk.udp(src, dst, p1, p2, b"m" * size))
    return pk.ether_ip(src, dst, 6, pk.tcp(src, dst, p1, p2, 1, 1, "A", payload=b"m" * size))


def model_key(flow: tuple[int, int, int, int, int, str], reverse: bool) -> tuple[str, int]:
    """The reference orientation: A = smaller (version, ip as an integer, port)."""
    version, i, j, p1, p2, proto = flow
    src, dst = ipaddress.ip_address(ADDRS[version][i]), ipaddress.ip_address(ADDRS[version][j])
    if reverse:
        src, dst, p1, p2 = dst, src, p2, p1
    if (int(src), p1) <= (int(dst), p2):
        return f"{proto} {fmt(src)}:{p1} <-> {fmt(dst)}:{p2}", 0
    return f"{proto} {fmt(dst)}:{p2} <-> {fmt(src)}:{p1}", 1


def fmt(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"[{ip}]" if ip.version == 6 else str(ip)


def table_counts(table: FlowTable) -> dict[str, list[int]]:
    return {
        r.label(): [r.packets_a_to_b, r.bytes_a_to_b, r.packets_b_to_a, r.bytes_b_to_a]
        for r in flow_records(table)
    }


@settings(max_examples=60, deadline=None)
@given(
    flows=st.lists(endpoint_pairs, min_size=1, max_size=8),
    plan=st.lists(packet_plan, min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=4),
)
def test_counts_equal_a_dict_model(flows, plan, cuts) -> None:  # type: ignore[no-untyped-def]
    """Random packets of random 5-tuples, fed in random batches: counts equal a dict model."""
    frames, model = [], {}
    for n, (which, reverse, size) in enumerate(plan):
        flow = flows[which % len(flows)]
        frame = build(flow, reverse, size)
        frames.append((T0 + n * MS, frame))
        key, d = model_key(flow, reverse)
        counts = model.setdefault(key, [0, 0, 0, 0])
        counts[2 * d] += 1
        counts[2 * d + 1] += len(frame)
    table = FlowTable(KEEP_ALL)
    bounds = sorted({0, len(frames), *(c for c in cuts if c < len(frames))})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        feed(table, frames[lo:hi])
    assert table_counts(table) == model


@settings(max_examples=60, deadline=None)
@given(
    flows=st.lists(endpoint_pairs, min_size=1, max_size=8),
    plan=st.lists(packet_plan, min_size=1, max_size=60),
    max_flows=st.integers(1, 4),
)
def test_eviction_equals_an_lru_model(flows, plan, max_flows) -> None:  # type: ignore[no-untyped-def]
    """With a small cap, live flows, their counts and the eviction order follow an LRU model."""
    frames, model, evicted = [], OrderedDict(), []
    for n, (which, reverse, size) in enumerate(plan):
        flow = flows[which % len(flows)]
        frame = build(flow, reverse, size)
        frames.append((T0 + n * MS, frame))
        key, d = model_key(flow, reverse)
        if key in model:
            model.move_to_end(key)
        else:
            if len(model) == max_flows:
                evicted.append(model.popitem(last=False)[0])
            model[key] = [0, 0, 0, 0]
        model[key][2 * d] += 1
        model[key][2 * d + 1] += len(frame)
    sink = Expired()
    table = FlowTable(FlowOptions(max_flows=max_flows, timeout_secs=0, keep_expired=True))
    table.on_expired = sink
    feed(table, frames)
    assert table_counts(table) == dict(model)
    assert [rec.label() for rec, _ in sink.items] == evicted
    assert table.active == len(model) <= max_flows


def test_batches_of_one_and_one_batch_agree() -> None:
    """Resuming observe at any index gives the same table as one call (no hidden state)."""
    c, s = tcp_pair()
    frames = [c.seg("S", 1), s.seg("SA", 9, 2), c.seg("PA", 2, 10, data=5), s.seg("A", 10, 7)]
    frames += [udp_frame(LOW_IP, HIGH_IP, 1, 2, k) for k in range(5)]
    one = track_frames(frames)
    batch = batch_from_packets(frames, [T0 + k * MS for k in range(len(frames))])
    cols = Analyzer().process(batch)
    step = FlowTable(KEEP_ALL)
    for i in range(batch.count):
        assert step.observe(batch.ts_ns, batch.wirelens, cols, i + 1, start=i) == (i + 1, 0)
    assert flow_records(step) == flow_records(one)


@pytest.mark.parametrize("max_flows", [1, 100])
def test_capped_table_never_grows(max_flows: int) -> None:
    table = FlowTable(FlowOptions(max_flows=max_flows, timeout_secs=0))
    feed(table, [(T0 + k, fast_udp4(0x0A000000 + k, 0x0A100000, 2000, 53)) for k in range(500)])
    assert table.capacity == max_flows and table.active == max_flows
    assert table.totals["evicted"] == 500 - max_flows

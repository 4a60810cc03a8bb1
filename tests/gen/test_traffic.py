"""Tests for the seeded trace generator: determinism, exact counts, valid packets, and a ground
truth that agrees with an independent re-parse of the written file.

The parser and the TCP reference tracker here are deliberately plain (struct slicing, dicts) and
share no code with the generator, so a bug in one cannot hide a bug in the other. The tracker
follows SPEC §6 literally: that is the contract the ground truth promises to match.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

import pytest

from netscope.gen import traffic
from netscope.gen.__main__ import main as gen_main
from netscope.gen.pcapfile import iter_pcap
from netscope.gen.traffic import BASE_TS_NS, GroundTruth, generate

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
M32 = 0xFFFFFFFF

# --------------------------------------------------------------------------- plain parsing


def read_records(path: Path) -> list[tuple[int, bytes, int]]:
    """(ts_ns, data, wirelen) of a little-endian microsecond pcap, by hand."""
    raw = path.read_bytes()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", raw, 0)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    assert snaplen == 65535
    out = []
    pos = 24
    while pos < len(raw):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", raw, pos)
        out.append((sec * 10**9 + usec * 1000, raw[pos + 16 : pos + 16 + caplen], wirelen))
        pos += 16 + caplen
    assert pos == len(raw)
    return out


def fold_sum(data: bytes, initial: int = 0) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = initial + sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def expected_checksum(data: bytes, field_at: int, initial: int = 0) -> int:
    """RFC 1071 checksum of ``data`` with its checksum field zeroed."""
    zeroed = data[:field_at] + b"\x00\x00" + data[field_at + 2 :]
    return ~fold_sum(zeroed, initial) & 0xFFFF


def pseudo(src: bytes, dst: bytes, proto: int, length: int) -> int:
    return fold_sum(src + dst) + proto + length


@dataclass
class Pkt:
    ts: int
    wirelen: int
    vlans: tuple[int, ...]
    version: int
    src: str
    dst: str
    proto: int
    sport: int = 0
    dport: int = 0
    seq: int = 0
    ack: int = 0
    flags: int = 0
    payload: bytes = b""
    icmp_id: int = 0


def dissect(ts: int, frame: bytes, wirelen: int) -> Pkt:
    """Decode one generated frame, asserting every checksum as it goes."""
    off = 12
    vlans = []
    ethertype = struct.unpack_from("!H", frame, off)[0]
    while ethertype in (0x8100, 0x88A8):
        vlans.append(struct.unpack_from("!H", frame, off + 2)[0] & 0x0FFF)
        off += 4
        ethertype = struct.unpack_from("!H", frame, off)[0]
    off += 2
    if ethertype == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        hdr = frame[off : off + ihl]
        total = struct.unpack_from("!H", hdr, 2)[0]
        assert off + total == len(frame), "IPv4 total length must match the frame"
        assert struct.unpack_from("!H", hdr, 10)[0] == expected_checksum(hdr, 10)
        proto = hdr[9]
        src_b, dst_b = hdr[12:16], hdr[16:20]
        l4 = frame[off + ihl : off + total]
        version = 4
    else:
        assert ethertype == 0x86DD
        plen, proto = struct.unpack_from("!HB", frame, off + 4)
        src_b, dst_b = frame[off + 8 : off + 24], frame[off + 24 : off + 40]
        l4 = frame[off + 40 :]
        assert len(l4) == plen
        version = 6
    p = Pkt(ts, wirelen, tuple(vlans), version, str(ip_address(src_b)), str(ip_address(dst_b)),
            proto)  # fmt: skip
    if proto == 6:
        p.sport, p.dport, p.seq, p.ack, off_b, p.flags = struct.unpack_from("!HHIIBB", l4)
        assert struct.unpack_from("!H", l4, 16)[0] == expected_checksum(
            l4, 16, pseudo(src_b, dst_b, 6, len(l4))
        )
        p.payload = l4[(off_b >> 4) * 4 :]
    elif proto == 17:
        p.sport, p.dport, ulen, csum = struct.unpack_from("!HHHH", l4)
        assert ulen == len(l4)
        want = expected_checksum(l4, 6, pseudo(src_b, dst_b, 17, len(l4))) or 0xFFFF
        assert csum == want
        p.payload = l4[8:]
    elif proto == 1:
        assert struct.unpack_from("!H", l4, 2)[0] == expected_checksum(l4, 2)
        p.icmp_id = struct.unpack_from("!H", l4, 4)[0]
    else:
        assert proto == 58
        assert struct.unpack_from("!H", l4, 2)[0] == expected_checksum(
            l4, 2, pseudo(src_b, dst_b, 58, len(l4))
        )
        p.icmp_id = struct.unpack_from("!H", l4, 4)[0]
    return p


def endpoint_key(version: int, ip: str, port: int) -> tuple[int, bytes, int]:
    return (version, ip_address(ip).packed, port)


def flow_key(p: Pkt) -> tuple[tuple[str, str, int, str, int], int]:
    """Canonical key as SPEC §6 defines it, plus the packet's direction (0 = a->b)."""
    name = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}[p.proto]
    sport, dport = (p.sport, p.dport) if p.proto in (6, 17) else (0, 0)
    src = endpoint_key(p.version, p.src, sport)
    dst = endpoint_key(p.version, p.dst, dport)
    if src <= dst:
        return (name, p.src, sport, p.dst, dport), 0
    return (name, p.dst, dport, p.src, sport), 1


def seq_le(a: int, b: int) -> bool:
    return ((b - a) & M32) < 0x80000000


@dataclass
class Reference:
    """SPEC §6 TCP tracking, written out the obvious way."""

    state: str = "unknown"
    client: int | None = None
    fin_side: int | None = None
    highest: dict[int, int] = field(default_factory=dict)
    last_ack: dict[int, int] = field(default_factory=dict)
    retrans: int = 0
    ooo: int = 0

    def observe(self, p: Pkt, d: int) -> None:
        f = p.flags
        if f & RST:
            self.state = "reset"
        elif f & SYN and not f & ACK:
            self.state = "syn_sent"
            if self.client is None:
                self.client = d
        elif f & SYN:
            self.state = "syn_ack"
        elif f & FIN:
            if self.state == "fin_wait" and d != self.fin_side:
                self.state = "closed"
            elif self.state != "closed":
                self.state = "fin_wait"
                self.fin_side = d
        elif f & ACK and self.state in ("unknown", "syn_ack"):
            self.state = "established"
        seg_len = len(p.payload) + (1 if f & SYN else 0) + (1 if f & FIN else 0)
        if seg_len:
            end = (p.seq + seg_len) & M32
            if d not in self.highest:
                self.highest[d] = end
            elif seq_le(end, self.highest[d]):
                peer_ack = self.last_ack.get(1 - d)
                if peer_ack is not None and seq_le(end, peer_ack):
                    self.retrans += 1
                else:
                    self.ooo += 1
            else:
                self.highest[d] = end
        if f & ACK:
            self.last_ack[d] = p.ack


# --------------------------------------------------------------------------- fixtures


@dataclass
class Trace:
    path: Path
    truth: GroundTruth
    packets: list[Pkt]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Trace:
    """A mid-sized trace with anomaly rates turned up so every feature shows up."""
    path = tmp_path_factory.mktemp("gen") / "trace.pcap"
    truth = generate(
        path,
        packets=20_000,
        flows=400,
        seed=11,
        v6_fraction=0.3,
        udp_fraction=0.25,
        vlan_fraction=0.1,
        retrans_rate=0.03,
        ooo_rate=0.03,
    )
    pkts = [dissect(ts, data, wl) for ts, data, wl in read_records(path)]
    return Trace(path, truth, pkts)


def by_flow(pkts: list[Pkt]) -> dict[tuple[str, str, int, str, int], list[tuple[Pkt, int]]]:
    flows: dict[tuple[str, str, int, str, int], list[tuple[Pkt, int]]] = defaultdict(list)
    for p in pkts:
        key, d = flow_key(p)
        flows[key].append((p, d))
    return flows


# --------------------------------------------------------------------------- tests


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    ta = generate(a, packets=5_000, flows=200, seed=3)
    tb = generate(b, packets=5_000, flows=200, seed=3)
    generate(c, packets=5_000, flows=200, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert ta.flows == tb.flows and ta.bytes == tb.bytes
    assert a.read_bytes() != c.read_bytes()


def test_packet_count_is_exact(trace: Trace) -> None:
    assert len(trace.packets) == trace.truth.packets == 20_000
    assert len(trace.truth.flows) == 400
    assert sum(f.packets for f in trace.truth.flows) == 20_000
    assert sum(p.wirelen for p in trace.packets) == trace.truth.bytes


@pytest.mark.parametrize(("packets", "flows"), [(1, 1), (7, 3), (50, 50), (60, 40), (999, 20)])
def test_exact_counts_for_tight_budgets(tmp_path: Path, packets: int, flows: int) -> None:
    path = tmp_path / "t.pcap"
    truth = generate(path, packets=packets, flows=flows, seed=packets + flows)
    recs = read_records(path)
    assert len(recs) == packets
    assert len(truth.flows) == flows
    seen = {flow_key(dissect(*r))[0] for r in recs}
    assert seen == set(truth.by_key())


def test_rejects_impossible_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path / "x.pcap", packets=5, flows=6, seed=1)
    with pytest.raises(ValueError):
        generate(tmp_path / "x.pcap", packets=5, flows=1, seed=1, v6_fraction=1.5)


def test_timestamps_sorted_from_base_and_flows_never_idle_long(trace: Trace) -> None:
    ts = [p.ts for p in trace.packets]
    assert ts[0] == BASE_TS_NS == trace.truth.first_ts_ns
    assert ts == sorted(ts)
    assert ts[-1] == trace.truth.last_ts_ns
    assert all(t % 1000 == 0 for t in ts)
    for pkts in by_flow(trace.packets).values():
        gaps = [b[0].ts - a[0].ts for a, b in zip(pkts, pkts[1:], strict=False)]
        assert max(gaps, default=0) < 10 * 10**9, "must stay far below the 60 s flow timeout"


def test_ground_truth_matches_reparse(trace: Trace) -> None:
    flows = by_flow(trace.packets)
    truth = trace.truth.by_key()
    assert set(flows) == set(truth), "every conversation has its own canonical key"
    for key, pkts in flows.items():
        t = truth[key]
        for d, (pk_want, by_want) in enumerate(
            ((t.packets_a_to_b, t.bytes_a_to_b), (t.packets_b_to_a, t.bytes_b_to_a))
        ):
            assert sum(1 for _, dd in pkts if dd == d) == pk_want, key
            assert sum(p.wirelen for p, dd in pkts if dd == d) == by_want, key
        assert pkts[0][0].ts == t.first_seen_ns
        assert pkts[-1][0].ts == t.last_seen_ns
        assert {p.vlans for p, _ in pkts} == {t.vlan_ids}
        assert {p.version for p, _ in pkts} == {t.ip_version}
    assert all(f.client is None for f in trace.truth.flows if f.protocol != "tcp")
    table = trace.truth.table_flows()
    assert all(f.protocol in ("tcp", "udp") for f in table)
    assert len(table) < len(trace.truth.flows), "some ICMP conversations are present"


def test_tcp_reference_tracker_agrees_with_truth(trace: Trace) -> None:
    truth = trace.truth.by_key()
    total_retrans = total_ooo = 0
    states = set()
    for key, pkts in by_flow(trace.packets).items():
        if key[0] != "tcp":
            continue
        ref = Reference()
        for p, d in pkts:
            ref.observe(p, d)
        t = truth[key]
        assert (ref.retrans, ref.ooo) == (t.retransmissions, t.out_of_order), key
        assert ref.state == t.tcp_state, key
        want_client = None if t.client is None else (0 if t.client == "a" else 1)
        assert ref.client == want_client, key
        total_retrans += ref.retrans
        total_ooo += ref.ooo
        states.add(ref.state)
    assert total_retrans > 10 and total_ooo > 10
    assert total_retrans == trace.truth.retransmissions
    assert total_ooo == trace.truth.out_of_order
    assert {"closed", "reset", "established"} <= states


def test_handshake_and_sequence_numbers(trace: Trace) -> None:
    flows = by_flow(trace.packets)
    checked = 0
    for t in trace.truth.flows:
        if t.protocol != "tcp" or not t.handshake or t.packets < 8:
            continue
        pkts = flows[t.key]
        (syn, ds), (synack, dsa), (ack, da) = pkts[:3]
        assert syn.flags == SYN and synack.flags == SYN | ACK and ack.flags == ACK
        assert dsa == 1 - ds and da == ds
        assert synack.ack == (syn.seq + 1) & M32
        assert ack.seq == (syn.seq + 1) & M32 and ack.ack == (synack.seq + 1) & M32
        # Every data segment continues its direction's byte stream, except the injected
        # anomalies: a swapped pair shows one segment ahead of the stream and one behind it,
        # a retransmission one behind it.
        nxt = {ds: ack.seq, dsa: ack.ack}
        ahead = behind = 0
        for p, d in pkts[3:]:
            if not p.payload:
                continue
            end = (p.seq + len(p.payload)) & M32
            if p.seq == nxt[d]:
                nxt[d] = end
            elif seq_le(end, nxt[d]):
                behind += 1
            else:
                ahead += 1
                nxt[d] = end
        assert ahead == t.out_of_order, t.key
        assert behind == t.out_of_order + t.retransmissions, t.key
        # Every ACK number is exactly what its sender has received in order so far.
        cont = {ds: (syn.seq + 1) & M32, dsa: (synack.seq + 1) & M32}
        pending: dict[int, dict[int, int]] = {ds: {}, dsa: {}}
        for p, d in pkts[2:]:
            if p.flags & ACK:
                assert p.ack == cont[1 - d], (t.key, p)
            seg_len = len(p.payload) + (1 if p.flags & FIN else 0)
            if not seg_len:
                continue
            end = (p.seq + seg_len) & M32
            if p.seq == cont[d]:
                cont[d] = end
                while cont[d] in pending[d]:
                    cont[d] = pending[d].pop(cont[d])
            elif not seq_le(end, cont[d]):
                pending[d][p.seq] = end
        checked += 1
        if checked >= 50:
            break
    assert checked >= 20


def test_sequence_wraparound_flows_present(trace: Trace) -> None:
    flows = by_flow(trace.packets)
    wrapped = [t for t in trace.truth.flows if t.seq_wraps]
    assert wrapped
    for t in wrapped:
        # Initial sequence numbers sit just below 2**32, so any later segment whose sequence
        # number is below its direction's ISN has wrapped around.
        pkts = flows[t.key]
        isn = {d: p.seq for p, d in pkts if p.flags & SYN}
        assert min(isn.values()) > M32 - 2000
        assert any(p.seq < isn[d] for p, d in pkts), t.key


def test_feature_mix_present(trace: Trace) -> None:
    flows = trace.truth.flows
    kinds = {f.kind for f in flows}
    assert {"tcp", "tls", "dns", "echo"} <= kinds
    assert any(f.ip_version == 6 for f in flows) and any(f.ip_version == 4 for f in flows)
    assert any(len(f.vlan_ids) == 1 for f in flows)
    assert any(f.protocol == "icmpv6" for f in flows) or any(f.protocol == "icmp" for f in flows)
    assert any(not f.handshake for f in flows if f.protocol == "tcp")
    dns = [p for p in trace.packets if p.proto == 17 and 53 in (p.sport, p.dport)]
    assert dns and all(struct.unpack_from("!H", p.payload, 4)[0] == 1 for p in dns)


def test_tls_client_hello_carries_the_sni(trace: Trace) -> None:
    flows = by_flow(trace.packets)
    tls = [t for t in trace.truth.flows if t.sni]
    assert tls
    for t in tls:
        client_dir = 0 if t.client == "a" else 1
        syn = flows[t.key][0][0]
        # The first byte of the client stream (it may arrive swapped with the next segment).
        first = next(
            p
            for p, d in flows[t.key]
            if d == client_dir and p.payload and p.seq == (syn.seq + 1) & M32
        )
        rec = first.payload
        assert rec[0] == 22 and rec[5] == 1  # handshake record, ClientHello
        assert struct.unpack_from("!H", rec, 3)[0] == len(rec) - 5
        assert t.sni is not None and t.sni.encode() in rec
        assert t.b_port == 443 or t.a_port == 443


def stream_bytes(pkts: list[tuple[Pkt, int]], direction: int, isn: int) -> bytes:
    """One direction's byte stream, reassembled by sequence number (duplicates dropped)."""
    chunks = {((p.seq - isn - 1) & M32): p.payload for p, d in pkts if d == direction and p.payload}
    out = b""
    for off in sorted(chunks):
        assert off == len(out), "stream has no holes"
        out += chunks[off]
    return out


def test_http_flows_carry_consistent_requests_and_responses(trace: Trace) -> None:
    flows = by_flow(trace.packets)
    checked = 0
    for t in trace.truth.flows:
        if t.protocol != "tcp" or not t.handshake or 80 not in (t.a_port, t.b_port):
            continue
        pkts = flows[t.key]
        if len(pkts) < 3:
            continue
        (syn, c), (synack, s) = pkts[0], pkts[1]
        requests = stream_bytes(pkts, c, syn.seq)
        assert requests.count(b"GET ") == requests.count(b"\r\n\r\n")
        assert not requests or requests.startswith(b"GET /")
        responses = stream_bytes(pkts, s, synack.seq)
        pos = 0
        while pos < len(responses):
            assert responses.startswith(b"HTTP/1.1 200 OK\r\n", pos)
            head_end = responses.index(b"\r\n\r\n", pos) + 4
            length = next(
                int(line.split(b":")[1])
                for line in responses[pos:head_end].split(b"\r\n")
                if line.startswith(b"Content-Length:")
            )
            pos = head_end + length
        assert pos == len(responses)
        checked += bool(responses)
    assert checked >= 5


def test_small_packets_have_tiny_payloads(tmp_path: Path) -> None:
    path = tmp_path / "small.pcap"
    generate(path, packets=5_000, flows=100, seed=5, small_packets=True)
    pkts = [dissect(*r) for r in read_records(path)]
    tcp = [p for p in pkts if p.proto == 6]
    assert tcp and max(len(p.payload) for p in tcp) <= 64
    assert any(len(p.payload) == 0 for p in tcp) and any(p.payload for p in tcp)


def test_mss_caps_segments(tmp_path: Path) -> None:
    path = tmp_path / "mss.pcap"
    generate(path, packets=3_000, flows=60, seed=5, mss=536)
    tcp = [dissect(*r) for r in read_records(path)]
    assert max(len(p.payload) for p in tcp if p.proto == 6 and p.dport != 443) <= 536


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_tcpdump_reads_the_trace(trace: Trace) -> None:
    proc = subprocess.run(
        ["tcpdump", "-nn", "-r", str(trace.path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == trace.truth.packets
    assert "truncated" not in proc.stdout + proc.stderr


def test_truth_json_and_cli(tmp_path: Path) -> None:
    out, js = tmp_path / "cli.pcap", tmp_path / "truth.json"
    rc = gen_main([str(out), "--packets", "500", "--flows", "30", "--seed", "9",
                   "--truth-json", str(js)])  # fmt: skip
    assert rc == 0
    data = json.loads(js.read_text())
    assert data["packets"] == 500 and len(data["flows"]) == 30
    assert data["table_flows"] == len([f for f in data["flows"] if f["protocol"] in ("tcp", "udp")])
    same = tmp_path / "api.pcap"
    generate(same, packets=500, flows=30, seed=9)
    assert same.read_bytes() == out.read_bytes()
    assert gen_main([str(out), "--packets", "3", "--flows", "5"]) == 2


# --------------------------------------------------------------------------- scenarios


def test_syn_flood(tmp_path: Path) -> None:
    path = tmp_path / "flood.pcap"
    sc = traffic.syn_flood(path, "198.18.0.10", 80, sources=120, syns=600, seed=2,
                           duration_s=2.0)  # fmt: skip
    pkts = [dissect(*r) for r in read_records(path)]
    assert len(pkts) == sc.packets == 600
    assert all(p.flags == SYN and p.dst == "198.18.0.10" and p.dport == 80 for p in pkts)
    assert len({p.src for p in pkts}) == 120 == len(sc.sources)
    assert pkts[-1].ts - pkts[0].ts < 2 * 10**9
    again = tmp_path / "again.pcap"
    traffic.syn_flood(again, "198.18.0.10", 80, sources=120, syns=600, seed=2, duration_s=2.0)
    assert again.read_bytes() == path.read_bytes()
    v6 = tmp_path / "flood6.pcap"
    traffic.syn_flood(v6, "2001:db8:2::10", 443, sources=60, syns=100, seed=2, v6=True)
    assert all(dissect(*r).version == 6 for r in read_records(v6))
    with pytest.raises(ValueError):
        traffic.syn_flood(v6, "198.18.0.10", 80, sources=5, syns=5, seed=1, v6=True)


def test_port_scans_vertical_and_horizontal(tmp_path: Path) -> None:
    vpath, hpath = tmp_path / "v.pcap", tmp_path / "h.pcap"
    traffic.port_scan(vpath, "10.66.0.1", "198.18.0.10", range(1, 101), rate_pps=500, seed=1)
    vert = [dissect(*r) for r in read_records(vpath)]
    assert len(vert) == 100 and {p.dport for p in vert} == set(range(1, 101))
    assert {p.src for p in vert} == {"10.66.0.1"} and all(p.flags == SYN for p in vert)
    assert vert[-1].ts - vert[0].ts == 99 * 2_000_000
    hosts = [f"198.18.1.{i}" for i in range(1, 31)]
    traffic.port_scan(hpath, "10.66.0.1", hosts, [53], udp=True, seed=1)
    horiz = [dissect(*r) for r in read_records(hpath)]
    assert {p.dst for p in horiz} == set(hosts) and {p.proto for p in horiz} == {17}


def test_mixed_merges_by_timestamp(tmp_path: Path) -> None:
    bg = tmp_path / "bg.pcap"
    truth = generate(bg, packets=2_000, flows=80, seed=1)
    srcs, flood = traffic.syn_flood_records("198.18.0.10", 80, 50, 300, seed=3,
                                            start_ts_ns=BASE_TS_NS + 2 * 10**9)  # fmt: skip
    scan = tmp_path / "scan.pcap"
    traffic.port_scan(scan, "10.66.0.1", "198.18.0.10", range(1, 51), seed=1,
                      start_ts_ns=BASE_TS_NS + 10**9)  # fmt: skip
    out = tmp_path / "mixed.pcap"
    count = traffic.mixed(out, [bg, flood, scan])
    assert count == truth.packets + 300 + 50
    ts = [t for t, _, _ in iter_pcap(out)]
    assert len(ts) == count and ts == sorted(ts)


SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "demo.pcap"


@pytest.mark.skipif(not SAMPLE.is_file(), reason="samples/demo.pcap not present")
def test_bundled_sample_is_reproducible(tmp_path: Path) -> None:
    # The exact command documented in samples/README.md.
    out = tmp_path / "demo.pcap"
    args = [str(out), "--packets", "3000", "--flows", "150", "--seed", "7", "--mss", "536"]
    assert gen_main(args) == 0
    assert out.read_bytes() == SAMPLE.read_bytes(), "regenerate samples/demo.pcap (README)"
    assert SAMPLE.stat().st_size < 1_000_000

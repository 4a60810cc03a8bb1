"""Deterministic, seeded synthetic traffic: realistic interleaved flows plus a ground truth.

:func:`generate` writes a classic little-endian microsecond pcap (Ethernet) of exactly
``packets`` packets spread over exactly ``flows`` conversations and returns a
:class:`GroundTruth` listing, per flow, what a correct flow tracker must report: packets and
bytes per direction, expected TCP state, client side, and the number of retransmissions and
out-of-order segments that were *injected*. Same arguments give a byte-identical file.

How the traffic looks (capture point next to the clients):

* TCP: SYN / SYN-ACK / ACK with MSS, SACK-permitted and window-scale options, then
  request/response bursts with correct seq/ack numbers, delayed ACKs every second segment,
  closed by FIN/ACK exchanges or RST. Budgets too small for a full conversation give a lone
  SYN, a refused SYN (RST) or a bare handshake. A few flows start mid-stream (no handshake),
  a few have initial sequence numbers just below 2**32 so their sequence numbers wrap.
  Port-443 flows often open with a TLS ClientHello carrying SNI.
* Retransmissions are spurious resends of a segment *after* the peer's ACK covering it was
  seen (the ACK was lost beyond the capture point); out-of-order segments are two adjacent
  segments of one burst sent swapped. Both therefore match NetScope's definitions exactly
  (SPEC §6): a retransmission ends at or before the highest seen seq_end and the peer's last
  ACK; an out-of-order segment ends at or before the highest seen seq_end but after the peer's
  last ACK. Pure ACKs never count.
* UDP: DNS query/response pairs on port 53 (A and AAAA), NTP, one-way syslog and opaque
  datagram flows. ICMP and ICMPv6 echo request/reply (these are not flows in NetScope's flow
  table, the ground truth marks them).
* ``v6_fraction`` of conversations use IPv6, ``vlan_fraction`` carry one 802.1Q tag (a fifth
  of those a QinQ pair).

Speed: the hot path never calls the generic builders in :mod:`netscope.gen.packets`. Each
flow direction precomputes its Ethernet/VLAN prefix, a ``struct.Struct`` for the whole
L2-L4 header and the constant part of the IPv4 and TCP/UDP checksums; per packet only the
variable fields are added (RFC 1624 style incremental sums). Payloads are slices of a
pseudo-random pool whose 16-bit word prefix sums are precomputed, so a payload's checksum
contribution costs two list lookups; checksums use ``% 0xFFFF`` instead of folding
(a ones'-complement sum is congruent to the plain sum modulo 0xFFFF). Flows are built whole
when they start and merged by timestamp through a heap of integer keys, one heap operation
per run of consecutive packets of a flow (found with ``bisect``); output goes out in ~1 MiB
chunks from a writer thread. Measured on the project machine (2 cores, CPython 3.11):
about 300k packets/s with realistic sizes and 310-350k packets/s with ``small_packets``.

Attack scenarios for the anomaly detectors: :func:`syn_flood`, :func:`port_scan`, and
:func:`mixed` to merge them with background traffic by timestamp.
"""

from __future__ import annotations

import heapq
import ipaddress
import json
import math
import os
import random
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import accumulate
from typing import Any, Protocol

from netscope.gen import packets as pk
from netscope.gen.pcapfile import PcapWriter, Record, iter_pcap, pcap_linktype

__all__ = [
    "BASE_TS_NS",
    "FlowTruth",
    "GroundTruth",
    "ScenarioTruth",
    "generate",
    "mixed",
    "port_scan",
    "port_scan_records",
    "syn_flood",
    "syn_flood_records",
]

BASE_SEC = 1_704_067_200  # 2024-01-01T00:00:00Z
BASE_TS_NS = BASE_SEC * 1_000_000_000

_M32 = 0xFFFFFFFF
_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_ETH_IPV4, _ETH_IPV6 = b"\x08\x00", b"\x86\xdd"
_GATEWAY_MAC = bytes.fromhex("020000fe0001")
_REC = struct.Struct("<IIII").pack

_POOL_MOD = 1 << 16  # payload stream offsets wrap here; the pool has slack for one segment
_POOL_SLACK = 2048

_DOMAINS = (
    "example.com",
    "example.org",
    "example.net",
    "netscope.test",
    "api.example.com",
    "cdn.example.net",
    "mail.example.org",
    "updates.example.com",
    "static.netscope.test",
    "login.example.net",
)
_SUBDOMAINS = ("www", "api", "cdn", "img", "auth", "edge", "m", "static", "ws", "v2")
# Server ports. Opaque (pool) payloads go only where Wireshark's dissectors accept arbitrary
# bytes (TLS-based ports, databases, SMTP) so the trace opens without "malformed" errors;
# 80/8080 carry real HTTP text. No SSH, Redis, OpenVPN, SIP or IPsec NAT-T: their dissectors
# reject noise or track sequence numbers.
_TCP_PORTS = (443, 443, 443, 443, 443, 80, 80, 80, 8080, 8443, 8443, 3306, 5432, 993, 995, 25)
_UDP_GENERIC_PORTS = (5004, 3478, 27015, 9000, 10001, 34197)
# Opaque UDP payloads start with this tag: its first byte keeps RTP/RTCP heuristics (version
# bits 2) from claiming them, and its even length keeps pool words aligned for the checksum.
_UDP_TAG = b"NSg\x01"
_WINDOWS = (502, 1024, 8192, 29200, 64240, 65535)


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class FlowTruth:
    """What the generator put on the wire for one conversation.

    Endpoints are ordered as NetScope orders flow keys (SPEC §6): ``a`` is the smaller of
    (ip version, ip bytes, port). Bytes are frame lengths on the wire. ``retransmissions`` and
    ``out_of_order`` count the injected events (see the module docstring for why these are
    exactly what the tracker must count). ``tcp_state`` is the state after the last packet
    (``None`` for non-TCP), ``client`` the side that sent the first SYN (``None`` without
    one). ICMP/ICMPv6 conversations use port 0 (the echo identifier is in ``icmp_id``).
    """

    index: int
    protocol: str  # "tcp" | "udp" | "icmp" | "icmpv6"
    kind: str  # "tcp", "tls", "dns", "ntp", "syslog", "udp", "echo"
    ip_version: int
    a_ip: str
    a_port: int
    b_ip: str
    b_port: int
    client: str | None  # "a" | "b"
    packets_a_to_b: int
    packets_b_to_a: int
    bytes_a_to_b: int
    bytes_b_to_a: int
    retransmissions: int
    out_of_order: int
    tcp_state: str | None
    handshake: bool
    seq_wraps: bool
    vlan_ids: tuple[int, ...]
    sni: str | None
    icmp_id: int | None
    first_seen_ns: int
    last_seen_ns: int

    @property
    def packets(self) -> int:
        """Packets in both directions."""
        return self.packets_a_to_b + self.packets_b_to_a

    @property
    def bytes(self) -> int:
        """Wire bytes in both directions."""
        return self.bytes_a_to_b + self.bytes_b_to_a

    @property
    def key(self) -> tuple[str, str, int, str, int]:
        """(protocol, a_ip, a_port, b_ip, b_port): the canonical flow key."""
        return (self.protocol, self.a_ip, self.a_port, self.b_ip, self.b_port)


@dataclass(frozen=True)
class GroundTruth:
    """Result of :func:`generate`: totals and one :class:`FlowTruth` per conversation."""

    path: str
    seed: int
    packets: int
    bytes: int
    first_ts_ns: int
    last_ts_ns: int
    flows: tuple[FlowTruth, ...]

    def table_flows(self) -> list[FlowTruth]:
        """The conversations NetScope's flow table must contain (TCP and UDP only)."""
        return [f for f in self.flows if f.protocol in ("tcp", "udp")]

    def by_key(self) -> dict[tuple[str, str, int, str, int], FlowTruth]:
        """Flows indexed by :attr:`FlowTruth.key` (keys are unique by construction)."""
        return {f.key: f for f in self.flows}

    @property
    def retransmissions(self) -> int:
        """Injected retransmissions over all flows."""
        return sum(f.retransmissions for f in self.flows)

    @property
    def out_of_order(self) -> int:
        """Injected out-of-order segments over all flows."""
        return sum(f.out_of_order for f in self.flows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the CLI's ``--truth-json`` format)."""
        out = asdict(self)
        out["table_flows"] = len(self.table_flows())
        out["retransmissions"] = self.retransmissions
        out["out_of_order"] = self.out_of_order
        return out

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as indented JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write("\n")


# --------------------------------------------------------------------------- payload pool


class _Pool:
    """Pseudo-random payload bytes with 16-bit word prefix sums for O(1) checksums.

    ``even[k]`` sums the words starting at even offsets 0, 2, .., 2k-2; ``odd[k]`` sums the
    words starting at odd offsets 1, 3, .., 2k-1. A slice starting at either parity therefore
    sums to a difference of two prefix entries, plus its last byte if the length is odd.
    Payloads are handed out as memoryview slices: no copy until the output chunk is joined.
    """

    def __init__(self, rng: random.Random) -> None:
        size = _POOL_MOD + _POOL_SLACK
        self.data = rng.randbytes(size)
        self.view = memoryview(self.data)
        nwords = size // 2 - 1
        even = struct.unpack(f"!{nwords}H", self.data[: 2 * nwords])
        odd = struct.unpack(f"!{nwords}H", self.data[1 : 1 + 2 * nwords])
        self.even = [0, *accumulate(even)]
        self.odd = [0, *accumulate(odd)]

    def take(self, offset: int, length: int) -> tuple[memoryview, int]:
        """(payload view, unfolded word sum) for ``length`` bytes at stream ``offset``."""
        o = offset & (_POOL_MOD - 1)
        k = o >> 1
        table = self.odd if o & 1 else self.even
        total = table[k + (length >> 1)] - table[k]
        if length & 1:
            total += self.data[o + length - 1] << 8
        return self.view[o : o + length], total


# --------------------------------------------------------------------------- per-direction


_STRUCTS: dict[tuple[int, bool, int], struct.Struct] = {}


def _hdr_struct(eth_len: int, v6: bool, proto: int) -> struct.Struct:
    """One Struct for Ethernet(+VLAN) + IP + TCP/UDP, so a header is a single pack call."""
    key = (eth_len, v6, proto)
    st = _STRUCTS.get(key)
    if st is None:
        ip_fmt = "IHBB16s16s" if v6 else "BBHHHBBH4s4s"
        l4_fmt = "HHIIBBHHH" if proto == 6 else "HHHH"
        st = struct.Struct(f"!{eth_len}s{ip_fmt}{l4_fmt}")
        _STRUCTS[key] = st
    return st


def _word_sum(data: bytes) -> int:
    """16-bit word sum of ``data`` (congruent modulo 0xFFFF, which is all checksums need)."""
    return pk.ones_complement_sum(data)


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


_UDP_TAG_SUM = _word_sum(_UDP_TAG)


class _Dir:
    """Everything constant about one direction of one conversation.

    Holds the Ethernet prefix, header Structs and the constant parts of the IPv4 header
    checksum and of the TCP/UDP pseudo-header sums; the emitters add per-packet fields.
    """

    __slots__ = (
        "v6",
        "eth",
        "src",
        "dst",
        "sport",
        "dport",
        "ttl",
        "ident",
        "win",
        "ip_sum",
        "addr_sum",
        "word0",
        "payload_base",
    )

    def __init__(
        self,
        src: bytes,
        dst: bytes,
        src_mac: bytes,
        dst_mac: bytes,
        vlan_ids: tuple[int, ...],
        ports: tuple[int, int],
        ttl: int,
        ident: int,
        win: int,
        flow_label: int,
        payload_base: int,
    ) -> None:
        self.v6 = len(src) == 16
        tags = b"".join(
            struct.pack("!HH", 0x88A8 if (i == 0 and len(vlan_ids) > 1) else 0x8100, vid)
            for i, vid in enumerate(vlan_ids)
        )
        self.eth = dst_mac + src_mac + tags + (_ETH_IPV6 if self.v6 else _ETH_IPV4)
        self.src, self.dst = src, dst
        self.sport, self.dport = ports
        self.ttl = ttl
        self.ident = ident
        self.win = win
        self.addr_sum = _word_sum(src + dst)
        # IPv4 constant words: version/IHL/TOS, DF flag, TTL (protocol added per packet).
        self.ip_sum = 0x4500 + 0x4000 + (ttl << 8) + self.addr_sum
        self.word0 = 0x60000000 | (flow_label & 0xFFFFF)
        self.payload_base = payload_base

    def next_ident(self) -> int:
        """IPv4 identification: a per-direction counter, as most stacks do."""
        self.ident = (self.ident + 1) & 0xFFFF
        return self.ident

    def ip_frame(self, proto: int, l4: bytes) -> bytes:
        """Ethernet + IP around an already checksummed L4 message (slow path, rare packets)."""
        if self.v6:
            head = struct.pack(
                "!IHBB16s16s", self.word0, len(l4), proto, self.ttl, self.src, self.dst
            )
            return self.eth + head + l4
        ip = pk.ipv4(self.src, self.dst, proto, l4, ttl=self.ttl, ident=self.next_ident())
        return self.eth + ip


# --------------------------------------------------------------------------- flow building


@dataclass
class _Spec:
    """A conversation chosen up front: kind, budget, endpoints and start time."""

    kind: str  # tcp | dns | ntp | syslog | udp | echo
    budget: int
    v6: bool
    vlan: tuple[int, ...]
    client_ip: bytes
    server_ip: bytes
    client_mac: bytes
    sport: int
    dport: int
    start_us: int
    wrap: bool = False
    midstream: bool = False


class _TcpEmit(Protocol):
    """Emit one TCP segment after advancing the flow clock (see tcp_emitters)."""

    def __call__(
        self,
        extra: int,
        flags: int,
        seq: int,
        ack: int,
        payload: bytes | memoryview,
        psum: int,
        opts: bytes = b"",
    ) -> None: ...


class _FlowBuilder:
    """Collects one conversation's packets as parallel lists, ready for the timestamp merge.

    Per packet: the heap key (``t_us * key_mul + slot``), the record head (16-byte pcap
    record header + L2-L4 headers) and the payload (often a pool memoryview, joined without
    an intermediate copy). ``counts`` holds packets and wire bytes per direction
    (0 = client to server, 1 = server to client) for the ground truth.
    """

    def __init__(self, gen: _Generator, spec: _Spec, slot: int) -> None:
        self.gen = gen
        self.spec = spec
        self.slot = slot
        self.keys: list[int] = []
        self.data: list[bytes | memoryview] = []  # head, payload, head, payload, ...
        self.counts = [0, 0, 0, 0]  # packets c->s, packets s->c, bytes c->s, bytes s->c
        self.t = spec.start_us
        rng = gen.rng
        label = rng.getrandbits(20) if spec.v6 else 0
        self.dirs = (
            _Dir(
                spec.client_ip,
                spec.server_ip,
                spec.client_mac,
                _GATEWAY_MAC,
                spec.vlan,
                (spec.sport, spec.dport),
                64,
                rng.getrandbits(16),
                rng.choice(_WINDOWS),
                label,
                rng.getrandbits(16),
            ),
            _Dir(
                spec.server_ip,
                spec.client_ip,
                _GATEWAY_MAC,
                spec.client_mac,
                spec.vlan,
                (spec.dport, spec.sport),
                rng.choice((49, 52, 56, 57, 115, 118, 243)),
                rng.getrandbits(16),
                rng.choice(_WINDOWS),
                label,
                rng.getrandbits(16),
            ),
        )

    # -- emission -------------------------------------------------------------------------

    def _record(self, d: int, head: bytes, payload: bytes | memoryview) -> None:
        t = self.t
        n = len(head) + len(payload)
        self.data.append(_REC(BASE_SEC + t // 1_000_000, t % 1_000_000, n, n) + head)
        self.data.append(payload)
        self.keys.append(t * self.gen.key_mul + self.slot)
        self.counts[d] += 1
        self.counts[d + 2] += n

    def tcp_emitters(
        self, rtt: int, rnd: Callable[[], float]
    ) -> tuple[_TcpEmit, _TcpEmit, Callable[[], None]]:
        """Closures emitting client->server and server->client segments, plus ``flush``.

        Everything constant is bound as a closure variable, so a segment costs one call, one
        struct pack and a few integer additions. Checksums use the fact that a ones'-complement
        sum is congruent to the plain sum modulo 0xFFFF, so 32-bit seq/ack values are added
        whole and one ``%`` replaces the folding. The clock models a capture point next to
        the client: server packets show up an RTT after the client packet that triggered
        them, client packets shortly after server ones; ``extra_us`` adds think time.
        Per-direction counters live in closure cells (cheaper than list items); ``flush()``
        adds them to :attr:`counts` and must be called before :meth:`truth`.
        """
        now = self.t  # flow clock (µs) and the direction of the last packet, shared;
        last_dir = -1  # -1: nothing sent yet, the first packet goes out at the start time
        heads_append = pays_append = self.data.append
        keys_append = self.keys.append
        mul, slot = self.gen.key_mul, self.slot
        rec = _REC
        flushers: list[Callable[[], None]] = []

        def make(d: int) -> _TcpEmit:
            s = self.dirs[d]
            eth, src, dst, ttl, win = s.eth, s.src, s.dst, s.ttl, s.win
            sport, dport = s.sport, s.dport
            pack = _hdr_struct(len(eth), s.v6, 6).pack
            base_sum = s.addr_sum + 6 + sport + dport + win + 0x5000
            turn_gap, turn_span = (rtt, rtt >> 3) if d else (20, 180)
            elen = len(eth)
            npk = nby = 0
            counts = self.counts

            def flush() -> None:
                nonlocal npk, nby
                counts[d] += npk
                counts[d + 2] += nby
                npk = nby = 0

            flushers.append(flush)

            if s.v6:
                word0 = s.word0

                def emit_v6(
                    extra: int,
                    flags: int,
                    seq: int,
                    ack: int,
                    payload: bytes | memoryview,
                    psum: int,
                    opts: bytes = b"",
                ) -> None:
                    nonlocal now, last_dir, npk, nby
                    if last_dir == d:
                        now += 3 + int(rnd() * 40) + extra
                    elif last_dir >= 0:
                        last_dir = d
                        now += turn_gap + int(rnd() * turn_span) + extra
                    else:
                        last_dir = d
                    t = now
                    tcp_len = 20 + len(payload)
                    if opts:
                        olen = len(opts)
                        tcp_len += olen
                        off = 0x50 + (olen << 2)
                        c = base_sum + tcp_len + seq + ack + flags + psum + (olen << 10)
                        c += _word_sum(opts)
                    else:
                        off = 0x50
                        c = base_sum + tcp_len + seq + ack + flags + psum
                    c %= 0xFFFF
                    n = elen + 40 + tcp_len
                    sec, usec = divmod(t, 1_000_000)
                    heads_append(
                        rec(BASE_SEC + sec, usec, n, n)
                        + pack(eth, word0, tcp_len, 6, ttl, src, dst, sport, dport, seq, ack,
                               off, flags, win, 0xFFFF - c if c else 0, 0)
                        + opts
                    )  # fmt: skip
                    pays_append(payload)
                    keys_append(t * mul + slot)
                    npk += 1
                    nby += n

                return emit_v6

            ip_base = s.ip_sum + 6
            ident = s.ident

            def emit_v4(
                extra: int,
                flags: int,
                seq: int,
                ack: int,
                payload: bytes | memoryview,
                psum: int,
                opts: bytes = b"",
            ) -> None:
                nonlocal now, last_dir, npk, nby, ident
                if last_dir == d:
                    now += 3 + int(rnd() * 40) + extra
                elif last_dir >= 0:
                    last_dir = d
                    now += turn_gap + int(rnd() * turn_span) + extra
                else:
                    last_dir = d
                t = now
                tcp_len = 20 + len(payload)
                if opts:
                    olen = len(opts)
                    tcp_len += olen
                    off = 0x50 + (olen << 2)
                    c = base_sum + tcp_len + seq + ack + flags + psum + (olen << 10)
                    c += _word_sum(opts)
                else:
                    off = 0x50
                    c = base_sum + tcp_len + seq + ack + flags + psum
                c %= 0xFFFF
                tot = 20 + tcp_len
                ident = (ident + 1) & 0xFFFF
                i = (ip_base + tot + ident) % 0xFFFF
                n = elen + tot
                sec, usec = divmod(t, 1_000_000)
                heads_append(
                    rec(BASE_SEC + sec, usec, n, n)
                    + pack(eth, 0x45, 0, tot, ident, 0x4000, ttl, 6, 0xFFFF - i if i else 0,
                           src, dst, sport, dport, seq, ack, off, flags, win,
                           0xFFFF - c if c else 0, 0)
                    + opts
                )  # fmt: skip
                pays_append(payload)
                keys_append(t * mul + slot)
                npk += 1
                nby += n

            return emit_v4

        e0, e1 = make(0), make(1)

        def flush_all() -> None:
            for f in flushers:
                f()

        return e0, e1, flush_all

    def udp(self, d: int, payload: bytes | memoryview, psum: int) -> None:
        """Emit one UDP datagram from direction ``d`` at time ``self.t``."""
        s = self.dirs[d]
        ulen = 8 + len(payload)
        csum = (~_fold(s.addr_sum + 17 + s.sport + s.dport + 2 * ulen + psum) & 0xFFFF) or 0xFFFF
        pack = _hdr_struct(len(s.eth), s.v6, 17).pack
        if s.v6:
            head = pack(s.eth, s.word0, ulen, 17, s.ttl, s.src, s.dst, s.sport, s.dport, ulen, csum)
        else:
            tot = 20 + ulen
            ident = s.next_ident()
            ipck = ~_fold(s.ip_sum + 17 + tot + ident) & 0xFFFF
            head = pack(s.eth, 0x45, 0, tot, ident, 0x4000, s.ttl, 17, ipck, s.src, s.dst,
                        s.sport, s.dport, ulen, csum)  # fmt: skip
        self._record(d, head, payload)

    def raw(self, d: int, proto: int, l4: bytes) -> None:
        """Emit an already built L4 message (ICMP) inside Ethernet + IP at time ``self.t``."""
        self._record(d, self.dirs[d].ip_frame(proto, l4), b"")

    # -- truth ------------------------------------------------------------------------------

    def truth(
        self,
        protocol: str,
        kind: str,
        retrans: int = 0,
        ooo: int = 0,
        tcp_state: str | None = None,
        handshake: bool = False,
        seq_wraps: bool = False,
        sni: str | None = None,
        icmp_id: int | None = None,
        client_known: bool = False,
    ) -> FlowTruth:
        """Fold the per-direction counters into a :class:`FlowTruth` with ordered endpoints."""
        spec = self.spec
        cport, sport = (spec.sport, spec.dport) if protocol in ("tcp", "udp") else (0, 0)
        c_key = (spec.client_ip, cport)
        s_key = (spec.server_ip, sport)
        client_is_a = c_key <= s_key  # same IP version on both sides: bytes order = key order
        a, b = (c_key, s_key) if client_is_a else (s_key, c_key)
        ab, ba = (0, 1) if client_is_a else (1, 0)
        cnt = self.counts
        mul = self.gen.key_mul
        return FlowTruth(
            index=self.slot,
            protocol=protocol,
            kind=kind,
            ip_version=6 if spec.v6 else 4,
            a_ip=str(ipaddress.ip_address(a[0])),
            a_port=a[1],
            b_ip=str(ipaddress.ip_address(b[0])),
            b_port=b[1],
            client=("a" if client_is_a else "b") if client_known else None,
            packets_a_to_b=cnt[ab],
            packets_b_to_a=cnt[ba],
            bytes_a_to_b=cnt[ab + 2],
            bytes_b_to_a=cnt[ba + 2],
            retransmissions=retrans,
            out_of_order=ooo,
            tcp_state=tcp_state,
            handshake=handshake,
            seq_wraps=seq_wraps,
            vlan_ids=spec.vlan,
            sni=sni,
            icmp_id=icmp_id,
            first_seen_ns=BASE_TS_NS + (self.keys[0] // mul) * 1000,
            last_seen_ns=BASE_TS_NS + (self.keys[-1] // mul) * 1000,
        )


# --------------------------------------------------------------------------- generator


class _Generator:
    """State shared by all flows of one :func:`generate` call (rng, pool, knobs)."""

    def __init__(
        self,
        seed: int,
        retrans_rate: float,
        ooo_rate: float,
        small: bool,
        key_mul: int,
        mss: int | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.mss = mss
        self.pool = _Pool(self.rng)
        self.retrans_rate = retrans_rate
        self.ooo_rate = ooo_rate
        self.small = small
        self.key_mul = key_mul

    def build(self, fb: _FlowBuilder, echo_id: int) -> FlowTruth:
        """Build every packet of one conversation; returns its ground truth."""
        kind = fb.spec.kind
        if kind == "tcp":
            return self.tcp_flow(fb)
        if kind == "dns":
            return self.dns_flow(fb)
        if kind == "echo":
            return self.echo_flow(fb, echo_id)
        return self.udp_flow(fb)

    # -- TCP --------------------------------------------------------------------------------

    def tcp_flow(self, fb: _FlowBuilder) -> FlowTruth:
        """Handshake, request/response bursts with injected anomalies, then close."""
        rng = self.rng
        rnd = rng.random
        spec = fb.spec
        budget = spec.budget
        small = self.small
        mss = self.mss or (1440 if spec.v6 else 1460)
        rtt = int(min(300_000, max(150, 20_000 * math.exp(rng.gauss(0.0, 1.0)))))
        pool = self.pool
        pool_data, pool_view, pool_even, pool_odd = pool.data, pool.view, pool.even, pool.odd
        pool_mask = _POOL_MOD - 1
        # Mid-stream flows get no injected anomalies: without the handshake a tracker has no
        # peer ACK yet, so whether an early swapped segment counts would be ambiguous.
        retrans_rate = 0.0 if spec.midstream else self.retrans_rate
        ooo_rate = 0.0 if spec.midstream else self.ooo_rate
        both = ooo_rate + retrans_rate
        e0, e1, flush = fb.tcp_emitters(rtt, rnd)
        emitters = (e0, e1)
        bases = (fb.dirs[0].payload_base, fb.dirs[1].payload_base)

        if spec.wrap:
            isn = [(1 << 32) - 1 - rng.randrange(32 if small else 1500) for _ in range(2)]
        else:
            isn = [rng.getrandbits(32), rng.getrandbits(32)]
        nxt = [(isn[0] + 1) & _M32, (isn[1] + 1) & _M32]  # next seq each side sends
        rcv = [nxt[1], nxt[0]]  # what each side acknowledges (in-order data received)
        sent = [0, 0]  # payload bytes per direction (stream offset into the pool)
        retrans = ooo = 0
        sni: str | None = None

        handshake = not spec.midstream
        if handshake:
            syn_opts = pk.tcp_options(mss=mss, sack_perm=True, wscale=7)
            e0(0, _SYN, isn[0], 0, b"", 0, syn_opts)
            if budget == 1:
                flush()
                return fb.truth(
                    "tcp", "tcp", tcp_state="syn_sent", handshake=True, client_known=True
                )
            if budget == 2:  # refused: RST/ACK from the server
                e1(0, _RST | _ACK, 0, nxt[0], b"", 0)
                flush()
                return fb.truth("tcp", "tcp", tcp_state="reset", handshake=True, client_known=True)
            e1(0, _SYN | _ACK, isn[1], nxt[0], b"", 0, syn_opts)
            e0(0, _ACK, nxt[0], nxt[1], b"", 0)
            rem = budget - 3
        else:
            # Capture started after the handshake: the first packet is plain data/ACK.
            rem = budget

        # Reserve packets for the close: FIN/ACK x4 or x3, RST, or none (still open).
        close = 0
        r = rnd()
        if rem >= 5 and r < 0.8:
            close = 4 if rnd() < 0.6 else 3
        elif rem >= 2 and r < 0.95:
            close = 1
        rem -= close

        # Plain-text HTTP on 80/8080 (so Wireshark sees valid requests and responses), and a
        # TLS ClientHello opening most port-443 flows; neither in small-packet mode.
        http = spec.dport in (80, 8080) and not small and mss >= 256
        host = f"{rng.choice(_SUBDOMAINS)}.{rng.choice(_DOMAINS)}"
        tls_hello: bytes | None = None
        if spec.dport == 443 and handshake and mss >= 400 and not small and rem and rnd() < 0.7:
            sni = f"{rng.choice(_SUBDOMAINS)}.{rng.choice(_DOMAINS)}"
            tls_hello = pk.tls_client_hello(
                sni, client_random=rng.randbytes(32), session_id=rng.randbytes(32),
                key_share=rng.randbytes(32),
            )  # fmt: skip

        turn = 0
        first_burst = True
        swaps: list[int] = []  # per burst: segments swapped with their successor
        marks: list[int] = []  # per burst: segments retransmitted after the covering ACK
        while rem > 0:
            d = turn
            rv = 1 - d
            send = emitters[d]
            answer = emitters[rv]
            if d == 0:
                n = 2 if rnd() < 0.15 else 1
            else:
                n = 1 + int(rng.expovariate(0.25))
                if n > 24:
                    n = 24
            if n > rem:
                n = rem
            # Segment lengths: requests 60-760 bytes, responses full segments then a partial.
            if small:
                lengths = [1 + int(rnd() * 64) for _ in range(n)]
            elif d == 0:
                lengths = [min(mss, 60 + int(rnd() * 700)) for _ in range(n)]
            else:
                lengths = [mss] * n
                lengths[-1] = 1 + int(rnd() * mss)
            # Application bytes that start the burst (TLS ClientHello, HTTP request/response
            # header); the rest of the stream comes from the pool.
            text = b""
            if tls_hello is not None and d == 0:
                text, tls_hello = tls_hello, None
                lengths[0] = len(text)
            elif http:
                text = _http_text(d, lengths, host, rng)
            # The burst's segments: (seq, end, payload, payload sum, draw for anomalies).
            # Pool payloads sit at their stream offset (inlined _Pool.take), so a
            # retransmission naturally carries the same bytes.
            segs: list[tuple[int, int, bytes | memoryview, int]] = []
            base = bases[d]
            seq = nxt[d]
            offset = sent[d]
            pos = 0
            for length in lengths:
                o = (base + offset) & pool_mask
                payload: bytes | memoryview
                if pos < len(text):
                    part = text[pos : pos + length]
                    psum = pk.ones_complement_sum(part)
                    t = len(part)
                    if t < length:
                        # Rest of the segment from the pool; text parts that stop short are
                        # even-length, so the pool words stay aligned for the prefix sums.
                        q = o + t
                        h = q >> 1
                        table = pool_odd if q & 1 else pool_even
                        psum += table[h + ((length - t) >> 1)] - table[h]
                        if (length - t) & 1:
                            psum += pool_data[o + length - 1] << 8
                        part += pool_data[q : o + length]
                    payload = part
                else:
                    h = o >> 1
                    table = pool_odd if o & 1 else pool_even
                    psum = table[h + (length >> 1)] - table[h]
                    if length & 1:
                        psum += pool_data[o + length - 1] << 8
                    payload = pool_view[o : o + length]
                pos += length
                offset += length
                end = (seq + length) & _M32
                # One draw per segment decides its anomaly: swapped with the next segment
                # (u < ooo_rate) or retransmitted later (ooo_rate <= u < both).
                u = rnd()
                if u < both:
                    (swaps if u < ooo_rate else marks).append(len(segs))
                segs.append((seq, end, payload, psum))
                seq = end
            nxt[d] = seq
            sent[d] = offset
            ack_d = rcv[d]
            if d:
                extra = 50 + int(rnd() * 2_000)  # server think time before a response
            elif first_burst:
                extra = 0
            else:
                extra = 100 + int(rnd() * 20_000)  # client think time before a request
            last = n - 1
            if not swaps and not marks:
                # Common case: segments in order, receiver ACKs every second one and the
                # last, while the budget leaves room after the burst's remaining data.
                for j in range(n):
                    seq, end, payload, psum = segs[j]
                    send(extra, _ACK | _PSH if j == last else _ACK, seq, ack_d, payload, psum)
                    extra = 0
                    rem -= 1
                    if (j & 1 or j == last) and rem > last - j:
                        answer(0, _ACK, nxt[rv], end, b"", 0)
                        rem -= 1
                rcv[rv] = nxt[d]
                swaps.clear()
                first_burst = False
                turn = rv if (d == 0 or rnd() < 0.8) else d
                continue
            order = list(range(n))
            swapped_at = -2
            for k in swaps:  # non-overlapping adjacent pairs, in order
                # The segment starting with application text (HTTP header, ClientHello) stays
                # first: Wireshark, without out-of-order reassembly, would misparse the rest.
                if k < last and k != swapped_at + 1 and (k or not text):
                    order[k], order[k + 1] = k + 1, k
                    ooo += 1
                    swapped_at = k
            # Receiver side: expected seq, one held out-of-order segment, delayed-ACK count.
            expect = rcv[rv]
            held_seq = held_end = -1
            unacked = 0
            resend: list[int] = []
            for j, idx in enumerate(order):
                seq, end, payload, psum = segs[idx]
                send(extra, _ACK | _PSH if idx == last else _ACK, seq, ack_d, payload, psum)
                extra = 0
                rem -= 1
                if idx in marks:
                    resend.append(idx)
                if seq == expect:
                    expect = end
                    if held_seq == expect:
                        expect = held_end
                        held_seq = -1
                else:
                    held_seq, held_end = seq, end
                unacked += 1
                spare = rem - (last - j)  # packets left after the burst's remaining data
                # No ACK between the two halves of a swapped pair: the late segment follows
                # within microseconds, as network reordering looks from the capture point.
                if spare > 0 and held_seq < 0 and (unacked >= 2 or j == last):
                    answer(0, _ACK, nxt[rv], expect, b"", 0)
                    rem -= 1
                    spare -= 1
                    unacked = 0
                    if resend:
                        # Spurious retransmissions of segments this ACK covered.
                        keep = []
                        for ridx in resend:
                            rseq, rend, rpay, rpsum = segs[ridx]
                            if spare > 0 and ((expect - rend) & _M32) < 0x80000000:
                                send(rtt, _ACK | _PSH, rseq, ack_d, rpay, rpsum)
                                rem -= 1
                                spare -= 1
                                retrans += 1
                            else:
                                keep.append(ridx)
                        resend = keep
            swaps.clear()
            marks.clear()
            rcv[rv] = expect
            first_burst = False
            turn = rv if (d == 0 or rnd() < 0.8) else d

        state = "established"
        if close == 1:
            d = 0 if rnd() < 0.5 else 1
            emitters[d](int(rnd() * 5_000), _RST | _ACK, nxt[d], rcv[d], b"", 0)
            state = "reset"
        elif close:
            d = 0 if rnd() < 0.6 else 1
            rv = 1 - d
            closer, peer = emitters[d], emitters[rv]
            closer(int(rnd() * 20_000), _FIN | _ACK, nxt[d], rcv[d], b"", 0)
            nxt[d] = (nxt[d] + 1) & _M32
            rcv[rv] = nxt[d]
            if close == 4:
                peer(0, _ACK, nxt[rv], rcv[rv], b"", 0)
            peer(int(rnd() * 200), _FIN | _ACK, nxt[rv], rcv[rv], b"", 0)
            nxt[rv] = (nxt[rv] + 1) & _M32
            rcv[d] = nxt[rv]
            closer(0, _ACK, nxt[d], rcv[d], b"", 0)
            state = "closed"

        flush()
        fin = 1 if close > 1 else 0
        wraps = handshake and any(isn[i] + 1 + sent[i] + fin > _M32 + 1 for i in (0, 1))
        return fb.truth(
            "tcp",
            "tls" if sni else "tcp",
            retrans=retrans,
            ooo=ooo,
            tcp_state=state,
            handshake=handshake,
            seq_wraps=wraps,
            sni=sni,
            client_known=handshake,  # only a SYN names the client (SPEC §6)
        )

    # -- UDP --------------------------------------------------------------------------------

    def dns_flow(self, fb: _FlowBuilder) -> FlowTruth:
        """Query/response pairs on port 53 (A then AAAA); an odd budget ends unanswered."""
        rng = self.rng
        name = f"{rng.choice(_SUBDOMAINS)}.{rng.choice(_DOMAINS)}"
        txid = 0
        for i in range(fb.spec.budget):
            qtype = 1 if (i // 2) % 2 == 0 else 28
            if i % 2 == 0:
                txid = rng.getrandbits(16)
                msg = pk.dns_query(name, qtype=qtype, txid=txid)
                if i:
                    fb.t += 100 + int(rng.random() * 2_000)
                fb.udp(0, msg, pk.ones_complement_sum(msg))
            else:
                answers = [
                    f"198.18.{rng.randrange(256)}.{1 + rng.randrange(254)}"
                    if qtype == 1
                    else f"2001:db8:ff::{rng.randrange(1, 0xFFFF):x}"
                    for _ in range(1 + int(rng.random() * 2))
                ]
                msg = pk.dns_response(name, qtype=qtype, txid=txid, answers=answers)
                fb.t += 500 + int(rng.random() * 30_000)
                fb.udp(1, msg, pk.ones_complement_sum(msg))
        return fb.truth("udp", "dns")

    def udp_flow(self, fb: _FlowBuilder) -> FlowTruth:
        """NTP exchanges, one-way syslog, or opaque datagrams in both directions."""
        rng = self.rng
        rnd = rng.random
        kind = fb.spec.kind
        take = self.pool.take
        sent = [0, 0]
        d = 0
        for i in range(fb.spec.budget):
            payload: bytes | memoryview
            if kind == "ntp":
                d = i & 1
                head = bytes([0x23 if d == 0 else 0x24, 2 if d else 0, 6, 0xE9])
                body, bsum = take(fb.dirs[d].payload_base + sent[d], 44)
                sent[d] += 44
                payload = head + body
                psum = _word_sum(head) + bsum
                if i:
                    # Replies after a network RTT, new polls after a (shortened) poll interval.
                    fb.t += (1_000 + int(rnd() * 20_000)) if d else 2_000_000
            elif kind == "syslog":
                d = 0
                text = (
                    f"<{rng.choice((13, 30, 86, 134, 165))}>Jan  1 00:00:{i % 60:02d} "
                    f"host{fb.slot} app[{1000 + fb.slot}]: event {i} "
                    f"status={rng.choice(('ok', 'warn', 'fail'))}"
                ).encode("ascii")
                payload, psum = text, pk.ones_complement_sum(text)
                if i:
                    fb.t += 1_000 + int(rnd() * 400_000)
            else:
                if i:
                    d = d if rnd() < 0.4 else 1 - d
                    fb.t += 30 + int(rnd() * 5_000)
                length = int(rnd() * 61) if self.small else 16 + int(rnd() * 1160)
                body, bsum = take(fb.dirs[d].payload_base + sent[d], length)
                sent[d] += length
                payload, psum = _UDP_TAG + body, _UDP_TAG_SUM + bsum
            fb.udp(d, payload, psum)
        return fb.truth("udp", kind)

    # -- ICMP -------------------------------------------------------------------------------

    def echo_flow(self, fb: _FlowBuilder, ident: int) -> FlowTruth:
        """Ping: echo request/reply pairs one second apart."""
        rng = self.rng
        v6 = fb.spec.v6
        rtt = 200 + int(rng.random() * 40_000)
        data = bytes(range(0x10, 0x10 + (24 if self.small else 56)))
        src, dst = fb.spec.client_ip, fb.spec.server_ip
        for i in range(fb.spec.budget):
            seq = i // 2 + 1
            reply = bool(i & 1)
            if i:
                fb.t += rtt if reply else 1_000_000 - rtt
            if v6:
                a, b = (dst, src) if reply else (src, dst)
                fb.raw(int(reply), 58, pk.icmpv6_echo(a, b, ident, seq, data, reply))
            else:
                fb.raw(int(reply), 1, pk.icmp_echo(ident, seq, data, reply))
        return fb.truth("icmpv6" if v6 else "icmp", "echo", icmp_id=ident)


def _http_text(d: int, lengths: list[int], host: str, rng: random.Random) -> bytes:
    """HTTP/1.1 text starting a burst: a whole request (d=0) or a response header (d=1).

    A request fills the burst exactly (padded with an ``X-Pad`` header); a response header's
    Content-Length covers the rest of the burst, which is pool bytes. ``lengths`` is grown at
    its last segment when the burst is too short to hold the text.
    """
    total = sum(lengths)
    if d == 0:
        path = f"/{rng.choice(('api', 'static', 'img', 'v1', 'assets'))}/{rng.randrange(10**6)}"
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netscope-gen/1\r\n"
            "Accept: */*\r\nX-Pad: "
        ).encode("ascii")
        tail = b"\r\n\r\n"
        short = len(head) + len(tail) - total
        if short > 0:
            lengths[-1] += short
            total += short
        return head + b"a" * (total - len(head) - len(tail)) + tail
    if total < 120:
        lengths[-1] += 120 - total
        total = 120
    while True:
        # Content-Length counts the body, whose size depends on the header's own length; the
        # header is also kept even-length (one of two Server values) so the body's checksum
        # words stay aligned for the pool prefix sums.
        guess = len(str(total - _HTTP_FIXED))
        for digits in (guess, guess - 1):
            for extra in (0, 1):
                body = total - _HTTP_FIXED - extra - digits
                if (_HTTP_FIXED + extra + digits) % 2 == 0 and len(str(body)) == digits:
                    return _HTTP_HEAD[extra] + str(body).encode("ascii") + b"\r\n\r\n"
        lengths[-1] += 1  # e.g. 1000 vs 999: no consistent digit count; grow by one byte
        total += 1


_HTTP_HEAD = (
    b"HTTP/1.1 200 OK\r\nServer: netscope-gen\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: ",
    b"HTTP/1.1 200 OK\r\nServer: netscope-gen1\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: ",
)
_HTTP_FIXED = len(_HTTP_HEAD[0]) + 4  # without the digits, with the final CRLFCRLF


def _split(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into len(weights) integers >= 1 proportional to weights (exact sum)."""
    n = len(weights)
    if n == 0:
        return []
    rest = total - n
    wsum = sum(weights)
    shares = [rest * w / wsum for w in weights]
    out = [1 + int(s) for s in shares]
    left = total - sum(out)
    order = sorted(range(n), key=lambda i: (int(shares[i]) - shares[i], i))
    for i in order[:left]:
        out[i] += 1
    return out


def _v4(n: int, base: str) -> bytes:
    return (int(ipaddress.IPv4Address(base)) + n).to_bytes(4, "big")


def _v6(n: int, base: str) -> bytes:
    return (int(ipaddress.IPv6Address(base)) + n).to_bytes(16, "big")


def _plan(
    rng: random.Random,
    packets: int,
    flows: int,
    v6_fraction: float,
    udp_fraction: float,
    vlan_fraction: float,
    duration_us: int,
) -> list[_Spec]:
    """Choose every conversation's kind, budget, endpoints and start time, sorted by start."""
    n_echo = 0 if flows < 10 else max(1, round(flows * 0.01))
    n_udp = round((flows - n_echo) * udp_fraction)
    kinds: list[str] = ["echo"] * n_echo
    for _ in range(n_udp):
        r = rng.random()
        kinds.append("dns" if r < 0.6 else "ntp" if r < 0.72 else "syslog" if r < 0.82 else "udp")
    kinds += ["tcp"] * (flows - len(kinds))
    rng.shuffle(kinds)

    # Small fixed-size conversations first, the rest shared by heavy-tailed weights.
    preferred = {
        "dns": lambda: 4 if rng.random() < 0.4 else 2,
        "ntp": lambda: 2,
        "syslog": lambda: 1 + rng.randrange(6),
        "echo": lambda: 2 * (1 + rng.randrange(5)),
    }
    desired = [preferred[k]() if k in preferred else 0 for k in kinds]
    variable = [i for i, k in enumerate(kinds) if k in ("tcp", "udp")]
    fixed_total = sum(desired)
    weights = [math.exp(rng.gauss(0.0, 1.0)) for _ in variable]
    if variable and packets - fixed_total >= len(variable):
        budgets = desired[:]
        for i, b in zip(variable, _split(packets - fixed_total, weights), strict=True):
            budgets[i] = b
    elif not variable and packets == fixed_total:
        budgets = desired
    else:
        # Too few packets for the preferred sizes: shrink everything proportionally.
        w = [float(desired[i]) if desired[i] else 4.0 for i in range(flows)]
        budgets = _split(packets, w)

    # Endpoints: plenty of clients (each talks to few servers, so normal traffic does not
    # look like a scan), fewer servers, a handful of DNS resolvers.
    n_clients = max(4, flows // 3)
    n_servers = max(2, flows // 40)
    n_resolvers = max(2, flows // 200)
    next_port: dict[bytes, int] = {}
    specs: list[_Spec] = []
    wrap_left = max(1, round(0.02 * kinds.count("tcp"))) if kinds.count("tcp") >= 5 else 0
    icmp_hosts = 0
    for i, kind in enumerate(kinds):
        v6 = rng.random() < v6_fraction
        ci = rng.randrange(n_clients)
        if kind == "echo":
            # One client/server pair per echo conversation so each is unambiguous.
            ci = n_clients + icmp_hosts
            si = n_servers + icmp_hosts
            icmp_hosts += 1
        elif kind == "dns":
            si = n_servers + flows + rng.randrange(n_resolvers)
        else:
            si = rng.randrange(n_servers)
        if v6:
            cip, sip = _v6(ci + 1, "2001:db8:1::"), _v6(si + 1, "2001:db8:2::")
        else:
            cip, sip = _v4(ci + 1, "10.0.0.0"), _v4(si + 1, "198.18.0.0")
        if rng.random() < vlan_fraction:
            vid = 10 + rng.randrange(4000)
            vlan: tuple[int, ...] = (vid, 1 + rng.randrange(100)) if rng.random() < 0.2 else (vid,)
        else:
            vlan = ()
        port = next_port.get(cip)
        if port is None:
            port = 32768 + rng.randrange(28000)
        next_port[cip] = port + 1 if port < 60999 else 32768
        if kind == "tcp":
            dport = rng.choice(_TCP_PORTS)
        elif kind == "dns":
            dport = 53
        elif kind == "ntp":
            dport = 123
        elif kind == "syslog":
            dport = 514
        elif kind == "udp":
            dport = rng.choice(_UDP_GENERIC_PORTS)
        else:
            dport = 0
        spec = _Spec(
            kind=kind,
            budget=budgets[i],
            v6=v6,
            vlan=vlan,
            client_ip=cip,
            server_ip=sip,
            client_mac=b"\x02\x00" + ci.to_bytes(4, "big"),
            sport=port,
            dport=dport,
            start_us=rng.randrange(max(1, duration_us)),
        )
        if kind == "tcp":
            if wrap_left and budgets[i] >= 12:
                spec.wrap = True
                wrap_left -= 1
            elif budgets[i] >= 4 and rng.random() < 0.02:
                spec.midstream = True
        specs.append(spec)
    specs.sort(key=lambda s: s.start_us)
    if specs:
        shift = specs[0].start_us
        for s in specs:
            s.start_us -= shift  # the trace starts exactly at the base timestamp
    return specs


def generate(
    path: str | os.PathLike[str],
    packets: int,
    flows: int,
    seed: int,
    v6_fraction: float = 0.2,
    udp_fraction: float = 0.2,
    vlan_fraction: float = 0.02,
    retrans_rate: float = 0.01,
    ooo_rate: float = 0.01,
    small_packets: bool = False,
    mss: int | None = None,
) -> GroundTruth:
    """Write a realistic pcap of exactly ``packets`` packets in ``flows`` conversations.

    Args:
        path: output pcap (classic, little-endian, microseconds, Ethernet).
        packets: exact number of packets; must be >= ``flows``.
        flows: number of conversations (TCP, UDP, and ~1% ICMP/ICMPv6 echo when >= 10).
        seed: everything derives from ``random.Random(seed)``: same arguments, same bytes.
        v6_fraction: share of conversations over IPv6.
        udp_fraction: share of non-ICMP conversations over UDP (60% of them DNS).
        vlan_fraction: share of conversations with 802.1Q tags (a fifth of them QinQ).
        retrans_rate: per data segment probability of a spurious retransmission.
        ooo_rate: per data segment probability of being swapped with the next one.
        small_packets: 1-64 byte payloads (for packets-per-second benchmarks).
        mss: TCP maximum segment size (advertised in SYNs and used for full segments);
            default 1460 (IPv4) / 1440 (IPv6). A small value such as 536 keeps a realistic
            trace compact (the bundled sample uses it).

    Flow start times are spread over ``max(10 s, packets / 20000 pps)`` from
    2024-01-01T00:00:00Z; no flow is idle for more than a few seconds, far below the default
    60 s flow timeout, so every conversation stays one flow table entry.
    """
    if flows < 1 or packets < flows:
        raise ValueError("need flows >= 1 and packets >= flows")
    for name, value in (
        ("v6_fraction", v6_fraction),
        ("udp_fraction", udp_fraction),
        ("vlan_fraction", vlan_fraction),
        ("retrans_rate", retrans_rate),
        ("ooo_rate", ooo_rate),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {value}")
    key_mul = 1 << max(1, flows.bit_length())  # heap key = t_us * key_mul + flow slot
    if mss is not None and not 64 <= mss <= 1460:
        raise ValueError(f"mss must be within [64, 1460], got {mss}")
    gen = _Generator(seed, retrans_rate, ooo_rate, small_packets, key_mul, mss)
    duration_us = max(10_000_000, packets * 50)
    specs = _plan(gen.rng, packets, flows, v6_fraction, udp_fraction, vlan_fraction, duration_us)
    truths: list[FlowTruth] = []
    # Per flow slot: sort keys of its packets, their heads and payloads (interleaved), and
    # a cursor.
    keys: list[list[int]] = [[] for _ in range(flows)]
    datas: list[list[bytes | memoryview]] = [[] for _ in range(flows)]
    pos = [0] * flows
    start_keys = [s.start_us * key_mul + i for i, s in enumerate(specs)]
    never = 1 << 200  # larger than any key
    start_keys.append(never)
    heap: list[int] = [never]  # sentinel keeps heap[0] valid when no flow is active
    next_flow = 0
    next_start = start_keys[0]
    echo_id = 0x1000
    written = 0
    total_bytes = 0
    key = 0
    mask = key_mul - 1
    out: list[bytes | memoryview] = []
    extend = out.extend
    heappush, heapreplace, heappop = heapq.heappush, heapq.heapreplace, heapq.heappop

    with PcapWriter(path, threaded=True) as writer:
        while True:
            # Start every flow whose first packet comes before the earliest pending packet:
            # flows are built whole, only when they are about to be needed.
            while next_start < heap[0]:
                spec = specs[next_flow]
                fb = _FlowBuilder(gen, spec, next_flow)
                if spec.kind == "echo":
                    echo_id += 1
                truth = gen.build(fb, echo_id)
                if len(fb.keys) != spec.budget:  # pragma: no cover - internal invariant
                    raise AssertionError(f"flow {next_flow}: {len(fb.keys)} != {spec.budget}")
                truths.append(truth)
                total_bytes += truth.bytes
                keys[next_flow], datas[next_flow] = fb.keys, fb.data
                heappush(heap, fb.keys[0])
                next_flow += 1
                next_start = start_keys[next_flow]
            key = heap[0]
            if key == never:
                break
            # Emit the earliest pending packet, and the same flow's following ones while they
            # still come before every other flow's next packet (bursts are common, and a run
            # costs one heap operation instead of one per packet), and before the next flow
            # to start. In a binary heap the second smallest entry is heap[1] or heap[2]; the
            # sentinel guarantees heap[1] exists.
            fi = key & mask
            p = pos[fi]
            fkeys = keys[fi]
            limit = heap[1]
            if len(heap) > 2 and heap[2] < limit:
                limit = heap[2]
            if next_start < limit:
                limit = next_start
            q = bisect_right(fkeys, limit, p + 1)
            extend(datas[fi][2 * p : 2 * q])
            if q < len(fkeys):
                pos[fi] = q
                heapreplace(heap, fkeys[q])
            else:
                heappop(heap)
                keys[fi], datas[fi] = [], []
            if len(out) >= 8192:
                writer.write_raw(b"".join(out), len(out) >> 1)
                written += len(out) >> 1
                out.clear()
        if out:
            writer.write_raw(b"".join(out), len(out) >> 1)
            written += len(out) >> 1
    if written != packets:  # pragma: no cover - internal invariant
        raise AssertionError(f"wrote {written} packets, expected {packets}")
    first_ts = min(t.first_seen_ns for t in truths)
    last_ts = max(t.last_seen_ns for t in truths)
    return GroundTruth(
        path=os.fspath(path),
        seed=seed,
        packets=packets,
        bytes=total_bytes,
        first_ts_ns=first_ts,
        last_ts_ns=last_ts,
        flows=tuple(truths),
    )


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class ScenarioTruth:
    """What an attack scenario wrote: enough for a detector test to assert on."""

    kind: str  # "syn_flood" | "port_scan"
    path: str
    packets: int
    first_ts_ns: int
    last_ts_ns: int
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    ports: tuple[int, ...]


def _check_version(addr: str, v6: bool, what: str) -> None:
    version = ipaddress.ip_address(addr).version
    if (version == 6) != v6:
        raise ValueError(f"{what} {addr} is IPv{version} but v6={v6} (the --v6 option)")


def _syn(
    src: str, dst: str, sport: int, dport: int, seq: int, ttl: int, ident: int, mac: bytes
) -> bytes:
    seg = pk.tcp(src, dst, sport, dport, seq, 0, _SYN, window=1024,
                 options=pk.tcp_options(mss=1460))  # fmt: skip
    if ":" in src:
        l3 = pk.ipv6(src, dst, 6, seg, hop_limit=ttl)
        return pk.ethernet(mac, _GATEWAY_MAC, 0x86DD, l3)
    l3 = pk.ipv4(src, dst, 6, seg, ttl=ttl, ident=ident, flags_df=False)
    return pk.ethernet(mac, _GATEWAY_MAC, 0x0800, l3)


def syn_flood_records(
    target_ip: str,
    target_port: int,
    sources: int,
    syns: int,
    seed: int,
    start_ts_ns: int = BASE_TS_NS,
    duration_s: float = 1.0,
    v6: bool = False,
) -> tuple[list[str], Iterator[tuple[int, bytes]]]:
    """(source addresses, records) of a spoofed SYN flood; see :func:`syn_flood`."""
    _check_version(target_ip, v6, "target_ip")
    if sources < 1 or syns < 1:
        raise ValueError("sources and syns must be >= 1")
    rng = random.Random(seed)
    if v6:
        picks = rng.sample(range(1, 1 << 32), sources)
        srcs = [str(ipaddress.IPv6Address(_v6(p, "2001:db8:bad::"))) for p in picks]
    else:
        picks = rng.sample(range(1, 1 << 20), sources)
        srcs = [str(ipaddress.IPv4Address(_v4(p, "172.16.0.0"))) for p in picks]
    span = int(duration_s * 1e9)

    def records() -> Iterator[tuple[int, bytes]]:
        for i in range(syns):
            # Each source is used once before any repeats, so ``sources`` are all present.
            src = srcs[i] if i < sources else srcs[rng.randrange(sources)]
            ts = start_ts_ns + (span * i) // syns
            ts -= ts % 1000  # whole microseconds, like the rest of the generator
            yield ts, _syn(
                src, target_ip, 1024 + rng.randrange(64512), target_port, rng.getrandbits(32),
                rng.choice((48, 52, 60, 64, 113, 128)), rng.getrandbits(16),
                b"\x02\xee" + rng.randbytes(4),
            )  # fmt: skip

    return srcs, records()


def syn_flood(
    path: str | os.PathLike[str],
    target_ip: str,
    target_port: int,
    sources: int,
    syns: int,
    seed: int,
    start_ts_ns: int = BASE_TS_NS,
    duration_s: float = 1.0,
    v6: bool = False,
) -> ScenarioTruth:
    """Write ``syns`` SYNs (no ACK, never answered) to ``target_ip:target_port``.

    They come from ``sources`` distinct spoofed addresses (172.16/12, or 2001:db8:bad::/48
    with ``v6``, which must match the target's version) with random ports, sequence numbers
    and TTLs, evenly spaced over ``duration_s`` from ``start_ts_ns``. The detector's rule
    (SPEC §6) fires when a window holds >= syn_threshold SYNs from >= unique_src_threshold
    sources, so pick ``syns``/``sources``/``duration_s`` on either side of it.
    """
    srcs, recs = syn_flood_records(
        target_ip, target_port, sources, syns, seed, start_ts_ns, duration_s, v6
    )
    first = last = start_ts_ns
    with PcapWriter(path) as w:
        for ts, data in recs:
            if w.count == 0:
                first = ts
            w.write(ts, data)
            last = ts
        count = w.count
    return ScenarioTruth(
        "syn_flood", os.fspath(path), count, first, last, tuple(srcs), (target_ip,),
        (target_port,),
    )  # fmt: skip


def port_scan_records(
    scanner_ip: str,
    target_ips: str | Sequence[str],
    ports: Iterable[int],
    udp: bool = False,
    rate_pps: float = 1000.0,
    seed: int = 0,
    v6: bool = False,
    start_ts_ns: int = BASE_TS_NS,
) -> Iterator[tuple[int, bytes]]:
    """Records of a scan probing every (target, port) pair once; see :func:`port_scan`."""
    targets = [target_ips] if isinstance(target_ips, str) else list(target_ips)
    port_list = list(ports)
    if not targets or not port_list or rate_pps <= 0:
        raise ValueError("need at least one target, one port and rate_pps > 0")
    _check_version(scanner_ip, v6, "scanner_ip")
    for t in targets:
        _check_version(t, v6, "target")
    rng = random.Random(seed)
    probes = [(t, p) for t in targets for p in port_list]
    rng.shuffle(probes)
    sport = 40000 + rng.randrange(20000)  # nmap-style: one source port for the whole scan
    mac = b"\x02\x5c" + rng.randbytes(4)
    step = 1e9 / rate_pps
    for i, (target, port) in enumerate(probes):
        ts = start_ts_ns + int(i * step)
        ts -= ts % 1000
        if udp:
            l4 = pk.udp(scanner_ip, target, sport, port, b"")
            if v6:
                frame = pk.ethernet(mac, _GATEWAY_MAC, 0x86DD, pk.ipv6(scanner_ip, target, 17, l4))
            else:
                l3 = pk.ipv4(scanner_ip, target, 17, l4, ident=rng.getrandbits(16))
                frame = pk.ethernet(mac, _GATEWAY_MAC, 0x0800, l3)
        else:
            frame = _syn(scanner_ip, target, sport, port, rng.getrandbits(32), 64,
                         rng.getrandbits(16), mac)  # fmt: skip
        yield ts, frame


def port_scan(
    path: str | os.PathLike[str],
    scanner_ip: str,
    target_ips: str | Sequence[str],
    ports: Iterable[int],
    udp: bool = False,
    rate_pps: float = 1000.0,
    seed: int = 0,
    v6: bool = False,
    start_ts_ns: int = BASE_TS_NS,
) -> ScenarioTruth:
    """Write a scan from ``scanner_ip``: TCP SYN probes, or empty UDP datagrams with ``udp``.

    One target and many ports is a vertical scan; many targets and one port a horizontal one
    (any mix works: every (target, port) pair is probed once, in seeded random order, at
    ``rate_pps``). No replies are generated. ``v6`` must match the addresses' version.
    """
    targets = (target_ips,) if isinstance(target_ips, str) else tuple(target_ips)
    port_list = tuple(ports)
    first = last = start_ts_ns
    with PcapWriter(path) as w:
        for ts, data in port_scan_records(
            scanner_ip, targets, port_list, udp, rate_pps, seed, v6, start_ts_ns
        ):
            if w.count == 0:
                first = ts
            w.write(ts, data)
            last = ts
        count = w.count
    return ScenarioTruth(
        "port_scan", os.fspath(path), count, first, last, (scanner_ip,), targets, port_list
    )


def mixed(
    path: str | os.PathLike[str],
    streams: Sequence[str | os.PathLike[str] | Iterable[Record]],
    linktype: int = 1,
) -> int:
    """Merge several time-sorted record streams into one pcap by timestamp; returns the count.

    Each stream is a pcap path (e.g. from :func:`generate` or :func:`syn_flood`; its link type
    must equal ``linktype``) or an iterable of ``(ts_ns, data[, wirelen])`` records such as
    :func:`syn_flood_records`' second value. Ties keep stream order, so the result is
    deterministic. Merging is streaming (``heapq.merge``), so inputs may be large.
    """

    def normalise(stream: str | os.PathLike[str] | Iterable[Record]) -> Iterator[Record]:
        if isinstance(stream, (str, os.PathLike)):
            lt = pcap_linktype(stream)
            if lt != linktype:
                raise ValueError(f"{os.fspath(stream)} has link type {lt}, expected {linktype}")
            return iter_pcap(stream)
        return iter(stream)

    merged = heapq.merge(*(normalise(s) for s in streams), key=lambda r: r[0])
    with PcapWriter(path, linktype=linktype) as w:
        for rec in merged:
            if len(rec) == 2:
                w.write(rec[0], rec[1])
            else:
                w.write(rec[0], rec[1], rec[2])
        return w.count

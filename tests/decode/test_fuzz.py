"""Property tests: no input makes the decoder (or the display) raise.

Random bytes reach the link decoders; mutated real packets (a few bytes changed,
then maybe truncated) reach the deep layers — IPv6 extension chains, TCP options,
DNS names, TLS lengths — which random bytes almost never do.
"""

from __future__ import annotations

import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netscope.constants import SUPPORTED_LINKTYPES

from . import build as b
from .corpus_reader import CORPUS_DIR, read_packets
from .invariants import check_packet

LINKTYPES = sorted(SUPPORTED_LINKTYPES) + [2, 127, 239, 65535]

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=1)
def seed_packets() -> list[tuple[int, bytes]]:
    """A few packets of every corpus file, plus hand-built ones (so the test has seeds
    even without the corpus): DNS, TLS, IPv6 extension chains."""
    seeds = [
        (1, b.ethernet(b.ipv4(b.udp(b.dns_query("www.example.com"), dport=53)))),
        (1, b.ethernet(b.ipv4(b.tcp(b.client_hello(b"example.org"), flags=0x18), proto=6))),
        (101, b.ipv6(b.ext_options(44) + b.ext_fragment(6) + b.tcp(options=b"\x01" * 8), 0)),
        (0, b"\x02\0\0\0" + b.ipv4(b.icmp_echo(), proto=1)),
    ]
    if CORPUS_DIR.is_dir():
        for path in sorted(CORPUS_DIR.glob("*.pcap*")):
            seeds += [(p.linktype, p.data) for p in read_packets(path)[:4]]
    return seeds


@FUZZ
@given(data=st.binary(max_size=160), linktype=st.sampled_from(LINKTYPES))
def test_random_bytes_any_link_type(data: bytes, linktype: int) -> None:
    check_packet(data, linktype)


@FUZZ
@given(
    which=st.integers(min_value=0),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=119), st.integers(0, 255)), max_size=6
    ),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=1600)),
    relink=st.one_of(st.none(), st.sampled_from(LINKTYPES)),
)
def test_mutated_real_packets(
    which: int, edits: list[tuple[int, int]], cut: int | None, relink: int | None
) -> None:
    linktype, original = seed_packets()[which % len(seed_packets())]
    data = bytearray(original)
    for pos, value in edits:  # header bytes are where parsers make decisions
        if pos < len(data):
            data[pos] = value
    if cut is not None:
        del data[cut:]
    check_packet(bytes(data), relink if relink is not None else linktype)


@settings(max_examples=100, deadline=None)
@given(ts_ns=st.integers(min_value=-(2**70), max_value=2**70))
def test_any_timestamp_formats(ts_ns: int) -> None:
    check_packet(b.ethernet(b.ipv4(b.udp())), 1, ts_ns=ts_ns)

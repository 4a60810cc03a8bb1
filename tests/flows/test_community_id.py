"""Community ID v1: our compiled hash against the ``communityid`` reference package.

The corpus-wide agreement with tshark is in ``test_community_id_tshark.py``; these tests
cover the corners a corpus may not have: IPv6 ordering on the high half, equal addresses,
every ICMP/ICMPv6 paired type, one-way ICMP messages, seeds, other protocols (no ports).
"""

from __future__ import annotations

import ipaddress

import communityid
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netscope.flows import layout as L
from netscope.flows.community_id import (
    community_id,
    community_ids,
    community_ids_from_keys,
    to_arrow_array,
    to_strings,
)


def reference(src: str, dst: str, proto: int, sp: int, dp: int, seed: int = 0) -> str:
    cid = communityid.CommunityID(seed=seed)
    if proto in (1, 58, 6, 17, 132):
        tpl = communityid.FlowTuple(proto, src, dst, sp, dp)
    else:
        tpl = communityid.FlowTuple(proto, src, dst)
    return str(cid.calc(tpl))


def test_spec_example_tcp() -> None:
    # the spec's baseline: 128.232.110.120:34855 -> 66.35.250.204:80 TCP, seed 0
    assert (
        community_id("128.232.110.120", "66.35.250.204", 6, 34855, 80)
        == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    )


ipv4 = st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v)))
# small address pools make equal addresses and equal high halves likely
ipv6 = st.sampled_from([0, 1, 2**64, 2**64 + 1, 2**127, 2**128 - 1]).flatmap(
    lambda base: st.integers(0, 3).map(lambda d: str(ipaddress.IPv6Address(base ^ d)))
)
port = st.sampled_from([0, 1, 53, 80, 443, 65535]) | st.integers(0, 65535)
proto = st.sampled_from([6, 17, 132, 47, 50])
seed = st.sampled_from([0, 1, 0x1234, 65535])


@settings(max_examples=300, deadline=None)
@given(src=ipv4 | ipv6, dst=ipv4 | ipv6, proto=proto, sp=port, dp=port, seed=seed)
def test_matches_reference_package(
    src: str, dst: str, proto: int, sp: int, dp: int, seed: int
) -> None:
    if ":" in src:
        dst = src if ":" not in dst else dst
    elif ":" in dst:
        dst = src
    assert community_id(src, dst, proto, sp, dp, seed) == reference(src, dst, proto, sp, dp, seed)


@pytest.mark.parametrize("proto", [1, 58])
def test_icmp_every_type_matches_reference(proto: int) -> None:
    a, b = ("10.0.0.2", "10.0.0.1") if proto == 1 else ("fe80::2", "fe80::1")
    for icmp_type in range(256):
        for code in (0, 3):
            for src, dst in ((a, b), (b, a)):
                got = community_id(src, dst, proto, icmp_type, code)
                assert got == reference(src, dst, proto, icmp_type, code), (icmp_type, code)


def test_icmp_echo_request_and_reply_share_an_id() -> None:
    req = community_id("192.168.0.1", "8.8.8.8", 1, 8, 0)
    rep = community_id("8.8.8.8", "192.168.0.1", 1, 0, 0)
    assert req == rep
    # a one-way message (destination unreachable) keeps its direction
    unreach = community_id("8.8.8.8", "192.168.0.1", 1, 3, 1)
    assert unreach != community_id("192.168.0.1", "8.8.8.8", 1, 3, 1)


def test_seed_out_of_range() -> None:
    with pytest.raises(ValueError, match="seed"):
        community_id("1.1.1.1", "2.2.2.2", 6, 1, 2, seed=70000)


def test_vectorised_equals_scalar_and_conversions() -> None:
    rng = np.random.default_rng(7)
    n = 500
    lo = rng.integers(0, 2**32, size=(n, 2), dtype=np.uint64)
    ports = rng.integers(0, 65536, size=(n, 2))
    protos = rng.choice([6, 17], size=n).astype(np.uint8)
    keys = np.zeros((n, L.KEY_WIDTH), dtype=np.uint64)
    keys[:, L.K_A_LO] = lo[:, 0]
    keys[:, L.K_B_LO] = lo[:, 1]
    keys[:, L.K_META] = (
        (ports[:, 0].astype(np.uint64) << np.uint64(48))
        | (ports[:, 1].astype(np.uint64) << np.uint64(32))
        | (protos.astype(np.uint64) << np.uint64(8))
        | np.uint64(4)
    )
    ids = community_ids_from_keys(keys)
    strings = to_strings(ids)
    assert to_arrow_array(ids).to_pylist() == strings
    for i in range(0, n, 37):
        src = str(ipaddress.IPv4Address(int(lo[i, 0])))
        dst = str(ipaddress.IPv4Address(int(lo[i, 1])))
        want = reference(src, dst, int(protos[i]), int(ports[i, 0]), int(ports[i, 1]))
        assert strings[i] == want
    # rows subset keeps order
    rows = np.array([5, 1, 3])
    assert to_strings(community_ids_from_keys(keys, rows)) == [strings[5], strings[1], strings[3]]


def test_empty_input() -> None:
    e = np.zeros(0, dtype=np.uint64)
    assert community_ids(e, e, e, e, e, e, e, e).shape == (0,)
    assert to_arrow_array(np.zeros(0, dtype="S30")).to_pylist() == []

"""Shard routing straight from raw packet bytes (SPEC §6 "Pipeline").

``route_batch`` walks each packet's link and IP headers with the decoder's own walks
(``kernels.headers``: every supported link type, up to MAX_VLAN_TAGS 802.1Q/802.1ad
tags, PPPoE session, the IPv6 extension-header walk including the routing-header
final destination), builds the flow's canonical endpoints exactly like the flow
kernel (endpoint A = smaller (address, port)), and hashes the *unordered* pair, so
both directions of a conversation land on one shard: ``shard = hash % shards``.

Packets that the flow table will never track get a fixed home, so no flow state is
split by them:

- IP packets that are not TCP/UDP (ICMP, other protocols) and IPv4/IPv6 non-initial
  fragments hash the (min, max) address pair with ports and protocol zeroed, which
  spreads them across shards while keeping an ICMP conversation on one shard;
- non-IP frames, unsupported link types and anything the decoder would reject
  (truncated or malformed headers) go to shard 0.

The same pass records ``need[i]``: how many leading bytes of packet ``i`` the decode
kernel reads (link + IP + extension headers + the fixed transport header, or the
whole captured packet for errors, non-IP frames and IPv6 jumbograms whose length is
taken from the capture). A pipeline worker can therefore decode a compact copy of
just those bytes and get columns identical to decoding the original packet; this is
what lets the capture thread hand packets to workers without copying payloads and
without keeping the reader's reused buffer alive.

``split_by_shard`` is the counting sort that turns ``shard[]`` into per-shard index
lists (one ``order`` array grouped by shard plus ``starts``), and ``gather_shards``
copies each packet's ``need`` bytes and metadata into per-shard compact sub-batches,
all without per-packet Python.
"""

from __future__ import annotations

import numpy as np

from netscope.constants import (
    ERR_UNSUPPORTED_LINK,
    FRAG_NONINITIAL,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_OPENBSD,
)
from netscope.kernels._jit import inline_helper, kernel, runtime_kernel
from netscope.kernels.byteorder import u16be, u32be, u64be
from netscope.kernels.headers import ipv6_extensions, link_layer

SUPPORTED_LINKTYPES = np.array(
    [
        LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL,
        LINKTYPE_LOOP, LINKTYPE_RAW, LINKTYPE_RAW_OPENBSD, LINKTYPE_IPV4, LINKTYPE_IPV6,
    ],
    dtype=np.int32,
)  # fmt: skip


def route_supported(linktypes: np.ndarray) -> np.ndarray:
    """Mask of packets whose link type the router (and the decoder) understands.
    Only used on batches where ``route_batch`` reported unsupported packets."""
    return np.isin(linktypes, SUPPORTED_LINKTYPES)


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


@inline_helper
def _mix(x):  # type: ignore[no-untyped-def]
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@inline_helper
def pair_hash(shi, slo, dhi, dlo, sp, dp, pr):  # type: ignore[no-untyped-def]
    """Hash of the unordered endpoint pair: same value for (src, dst) and (dst, src).

    Symmetric by construction (sums of the two endpoints' fields) rather than by ordering
    the endpoints first: the ordering compare is a coin flip per packet on real traffic and
    its mispredictions cost more than the rest of the hash. Sums cannot cancel the way
    XOR does for equal endpoints, and one splitmix64 round spreads every input bit.
    """
    ports = (np.uint64(sp) + np.uint64(dp)) | (np.uint64(pr) << np.uint64(20))
    x = (slo + dlo) ^ (ports * _GOLD) ^ ((shi + dhi) * _M2)
    return _mix(x)


@inline_helper
def _route_one(buf, base, cap, lt, nsh, pow2, shard_mask):  # type: ignore[no-untyped-def]
    """Route one packet: ``(shard, bytes the decoder reads, 1 if the link type is
    unsupported)``; the rules are in the module docstring."""
    end = base + cap
    e, ip, version, _etype, _vid, _ntags = link_layer(buf, base, end, lt)
    unsup = 1 if e == ERR_UNSUPPORTED_LINK else 0
    bad = e != 0

    # Default: shard 0, decoder reads (at most) the whole captured packet.
    sh = 0
    nd = cap
    if version != 0 and not bad:
        shi = np.uint64(0)
        slo = np.uint64(0)
        dhi = np.uint64(0)
        dlo = np.uint64(0)
        pr = np.int64(0)
        l4start = np.int64(-1)
        nonfirst = False
        jumbo = False
        ok = False
        if version == 4:
            if end - ip >= 20 and (buf[ip] >> 4) == 4:
                ihl = (np.int64(buf[ip]) & 0x0F) * 4
                total = u16be(buf, ip + 2)
                if total == 0:
                    total = end - ip  # segmentation offload, as the decoder reads it
                if ihl >= 20 and total >= ihl and end - ip >= ihl:
                    ok = True
                    pr = np.int64(buf[ip + 9])
                    slo = np.uint64(u32be(buf, ip + 12))
                    dlo = np.uint64(u32be(buf, ip + 16))
                    nonfirst = (u16be(buf, ip + 6) & 0x1FFF) != 0
                    l4start = ip + ihl
        else:
            if end - ip >= 40 and (buf[ip] >> 4) == 6:
                ok = True
                jumbo = u16be(buf, ip + 4) == 0
                shi = u64be(buf, ip + 8)
                slo = u64be(buf, ip + 16)
                dhi = u64be(buf, ip + 24)
                dlo = u64be(buf, ip + 32)
                e6, nh, cur, frag, dhi, dlo = ipv6_extensions(
                    buf, ip + 40, end, np.int64(buf[ip + 6]), dhi, dlo
                )
                if e6 != 0:
                    ok = False
                nonfirst = (frag & FRAG_NONINITIAL) != 0
                pr = nh
                l4start = cur
        if ok:
            sp = np.uint64(0)
            dp = np.uint64(0)
            hp = np.int64(0)
            if nonfirst:
                nd = l4start - base
            elif pr == IPPROTO_TCP or pr == IPPROTO_UDP:
                fixed = 20 if pr == IPPROTO_TCP else 8
                if end - l4start >= fixed:
                    sp = np.uint64(u16be(buf, l4start))
                    dp = np.uint64(u16be(buf, l4start + 2))
                    hp = pr
                    nd = l4start + fixed - base
            elif pr == IPPROTO_ICMP or pr == IPPROTO_ICMPV6:
                if end - l4start >= 8:
                    nd = l4start + 8 - base
            else:
                nd = l4start - base
            if jumbo:
                nd = cap  # payload length comes from the capture: copy it all
            if nd > cap:
                nd = cap
            h = pair_hash(shi, slo, dhi, dlo, sp, dp, hp)
            sh = np.int64(h & shard_mask) if pow2 else np.int64(h % nsh)
    return sh, nd, unsup


@kernel
def route_batch(buf, offsets, caplens, linktypes, start, stop, shards, shard, need, counts):  # type: ignore[no-untyped-def]
    """Shard of packets ``[start, stop)`` into ``shard[i - start]`` and decode-read
    extent into ``need[i - start]``; ``counts[s]`` = packets routed to shard ``s``.
    Returns the number of packets whose link type is unsupported (routed to 0)."""
    nsh = np.uint64(shards)
    # hash % shards; for a power of two that is a mask (a 64-bit division costs
    # ~25-40 cycles, more than the rest of the routing of a packet).
    pow2 = (shards & (shards - 1)) == 0
    shard_mask = np.uint64(shards - 1)
    for s in range(shards):
        counts[s] = 0
    unsupported = 0
    for i in range(start, stop):
        cap = np.int64(caplens[i])
        sh, nd, unsup = _route_one(buf, offsets[i], cap, linktypes[i], nsh, pow2, shard_mask)
        unsupported += unsup
        shard[i - start] = sh
        need[i - start] = nd
        counts[sh] += 1
    return unsupported


@kernel
def split_by_shard(shard, n, counts, starts, order):  # type: ignore[no-untyped-def]
    """Counting sort: ``order[starts[s]:starts[s+1]]`` lists shard ``s``'s packets
    (``0..n-1``, in arrival order). ``starts`` has ``len(counts) + 1`` entries."""
    acc = 0
    for s in range(counts.shape[0]):
        starts[s] = acc
        acc += counts[s]
    starts[counts.shape[0]] = acc
    # starts[s] serves as shard s's write cursor (no scratch array, so no allocation)
    # and is moved back to the shard's first index afterwards.
    for i in range(n):
        s = shard[i]
        order[starts[s]] = i
        starts[s] += 1
    for s in range(counts.shape[0]):
        starts[s] -= counts[s]


@kernel
def gather_shards(  # type: ignore[no-untyped-def]
    buf, offsets, caplens, wirelens, ts_ns, linktypes, first, order, n, need,
    out_buf, out_off, out_cap, out_wire, out_ts, out_lt,
):  # fmt: skip
    """Copy packets ``first + order[k]`` (k < n) into compact arrays, in ``order``.

    Only ``need`` bytes of each packet are copied; ``out_cap`` is that copied length,
    which the decoder treats exactly like the original caplen (every read it makes
    lies within ``need``). Returns the number of bytes written to ``out_buf``."""
    pos = np.int64(0)
    for k in range(n):
        j = order[k]
        i = first + j
        nd = np.int64(need[j])
        src = offsets[i]
        for b in range(nd):
            out_buf[pos + b] = buf[src + b]
        out_off[k] = pos
        out_cap[k] = nd
        out_wire[k] = wirelens[i]
        out_ts[k] = ts_ns[i]
        out_lt[k] = linktypes[i]
        pos += nd
    return pos


@runtime_kernel
def route_copy(  # type: ignore[no-untyped-def]
    buf, offsets, caplens, linktypes, start, stop, shards, shard, need, counts,
    out_buf, out_off, pos0,
):  # fmt: skip
    """``route_batch`` plus the copy of each packet's decoder-read bytes into ``out_buf``
    (arrival order, at ``out_off[i - start]``), done while the headers are still in L1.

    Returns ``(next_i, pos, unsupported)``: it stops early (``next_i < stop``) when
    ``out_buf`` has no room for the next packet's bytes; the caller provides a bigger
    buffer and calls again from ``next_i`` (counts accumulate: zero them first)."""
    nsh = np.uint64(shards)
    pow2 = (shards & (shards - 1)) == 0
    shard_mask = np.uint64(shards - 1)
    limit = out_buf.shape[0]
    pos = np.int64(pos0)
    unsupported = 0
    for i in range(start, stop):
        base = offsets[i]
        cap = np.int64(caplens[i])
        sh, nd, unsup = _route_one(buf, base, cap, linktypes[i], nsh, pow2, shard_mask)
        if pos + nd > limit:
            return i, pos, unsupported
        unsupported += unsup
        out_buf[pos : pos + nd] = buf[base : base + nd]  # memmove-style slice copy
        shard[i - start] = sh
        need[i - start] = nd
        out_off[i - start] = pos
        counts[sh] += 1
        pos += nd
    return stop, pos, unsupported


@kernel
def gather_meta(  # type: ignore[no-untyped-def]
    first, order, n, need, out_off, caplens, wirelens, ts_ns, linktypes,
    s_off, s_cap, s_wire, s_ts, s_lt, starts, cap_extra,
):  # fmt: skip
    """Per-shard metadata for packets already copied by ``route_copy``: row ``k`` of
    the ``s_*`` arrays describes packet ``first + order[k]``. ``cap_extra[s]`` = original
    captured bytes minus copied bytes of shard ``s`` (keeps ``bytes_captured`` exact)."""
    for s in range(starts.shape[0] - 1):
        extra = np.int64(0)
        for k in range(starts[s], starts[s + 1]):
            j = order[k]
            i = first + j
            s_off[k] = out_off[j]
            s_cap[k] = need[j]
            s_wire[k] = wirelens[i]
            s_ts[k] = ts_ns[i]
            s_lt[k] = linktypes[i]
            extra += np.int64(caplens[i]) - need[j]
        cap_extra[s] = extra


@kernel
def next_event(ts_ns, start, stop, tick_at, sweep_at):  # type: ignore[no-untyped-def]
    """First index in ``[start, stop)`` whose timestamp reaches ``tick_at`` or
    ``sweep_at`` (``stop`` if none): where the capture side inserts markers."""
    limit = tick_at if tick_at < sweep_at else sweep_at
    for i in range(start, stop):
        if ts_ns[i] >= limit:
            return i
    return stop

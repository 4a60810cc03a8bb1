"""Batch → columns: link, IPv4/IPv6, TCP/UDP/ICMP/ICMPv6 headers of every packet.

Array contract: ``buf`` uint8; ``offsets`` int64, ``caplens``/``wirelens`` int32,
``linktypes`` int32 (length >= count); the 25 output columns are the
``DecodedColumns`` arrays in ``COLUMN_SPEC`` order, each of length >= count.
Every column of every packet is written, so reused column arrays never leak
values from an earlier batch. No read goes past ``offsets[i] + caplens[i]``.

The rules (which layer sets which error, what payload_len means) are the ones in
docs/protocols.md "Decoding rules shared with the kernel"; the readable decoders
in ``netscope.decode`` follow the same rules and a test checks they agree.
"""

from __future__ import annotations

import numpy as np

from netscope.constants import (
    ERR_BAD_IP_HEADER,
    ERR_BAD_IP_VERSION,
    ERR_BAD_TCP_HEADER,
    ERR_TRUNC_IP,
    ERR_TRUNC_L4,
    FRAG_MORE,
    FRAG_NONINITIAL,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    L3_IPV4,
    L3_IPV6,
)
from netscope.kernels._jit import inline_helper, kernel
from netscope.kernels.byteorder import u16be, u32be, u32ne, u64be
from netscope.kernels.headers import ipv6_extensions, link_layer

# The link walk (with its MAX_VLAN_TAGS bound) and the IPv6 extension walk are shared
# with the router: kernels.headers.


@inline_helper
def _ipv4_checksum_ok(buf, off, ihl):  # type: ignore[no-untyped-def]
    # One's-complement sums do not depend on byte order, so the header is summed as
    # native-order 32-bit words (one unaligned load each, ihl is a multiple of 4) and the
    # carries are folded down to 16 bits; a valid header sums to 0xFFFF either way.
    total = np.uint64(0)
    for k in range(off, off + ihl, 4):
        total += np.uint64(u32ne(buf, k))
    mask32 = np.uint64(0xFFFFFFFF)
    mask16 = np.uint64(0xFFFF)
    total = (total & mask32) + (total >> np.uint64(32))
    total = (total & mask32) + (total >> np.uint64(32))
    total = (total & mask16) + (total >> np.uint64(16))
    total = (total & mask16) + (total >> np.uint64(16))
    return total == mask16


@kernel
def decode_batch(  # type: ignore[no-untyped-def]
    buf,
    offsets,
    caplens,
    linktypes,
    count,
    err,
    l3_off,
    vlan_id,
    vlan_count,
    ethertype,
    l3,
    ip_csum_ok,
    ttl,
    src_hi,
    src_lo,
    dst_hi,
    dst_lo,
    proto,
    frag,
    l4_off,
    sport,
    dport,
    tcp_flags,
    seq,
    ack,
    win,
    icmp_type,
    icmp_code,
    payload_off,
    payload_len,
):
    """Decode ``count`` packets into the column arrays (see module docstring)."""
    for i in range(count):
        base = offsets[i]
        end = base + caplens[i]
        lt = linktypes[i]

        # ---- defaults: every column written for every packet ----
        csum = 0
        hop = 0
        shi = np.uint64(0)
        slo = np.uint64(0)
        dhi = np.uint64(0)
        dlo = np.uint64(0)
        pr = 0
        fr = 0
        l4 = -1
        sp = 0
        dp = 0
        fl = 0
        sq = 0
        ak = 0
        wn = 0
        it = 0
        ic = 0
        poff = -1
        plen = 0
        l3v = 0  # set once the fixed IP header is decoded (addresses valid)

        # ---- link layer ----
        e, ip, version, etype, vid, ntags = link_layer(buf, base, end, lt)

        # ---- network layer ----
        l4start = -1
        l4len = 0  # transport bytes according to the IP length fields
        if e == 0 and version == 4:
            if end - ip < 20:
                e = ERR_TRUNC_IP
            elif (buf[ip] >> 4) != 4:
                e = ERR_BAD_IP_VERSION
            else:
                ihl = (np.int64(buf[ip]) & 0x0F) * 4
                total = u16be(buf, ip + 2)
                if total == 0:
                    total = end - ip  # segmentation offload: trust the capture (as Wireshark)
                if ihl < 20 or total < ihl:
                    e = ERR_BAD_IP_HEADER
                elif end - ip < ihl:
                    e = ERR_TRUNC_IP
                else:
                    l3v = L3_IPV4
                    csum = 1 if _ipv4_checksum_ok(buf, ip, ihl) else 0
                    hop = buf[ip + 8]
                    pr = buf[ip + 9]
                    slo = np.uint64(u32be(buf, ip + 12))
                    dlo = np.uint64(u32be(buf, ip + 16))
                    fw = u16be(buf, ip + 6)
                    if fw & 0x2000:
                        fr |= FRAG_MORE
                    if fw & 0x1FFF:
                        fr |= FRAG_NONINITIAL
                    l4start = ip + ihl
                    l4len = total - ihl
        elif e == 0 and version == 6:
            if end - ip < 40:
                e = ERR_TRUNC_IP
            elif (buf[ip] >> 4) != 6:
                e = ERR_BAD_IP_VERSION
            else:
                l3v = L3_IPV6
                csum = 1
                iplen = u16be(buf, ip + 4)
                if iplen == 0:
                    iplen = end - ip - 40  # jumbogram or TSO capture: trust the capture
                hop = buf[ip + 7]
                shi = u64be(buf, ip + 8)
                slo = u64be(buf, ip + 16)
                dhi = u64be(buf, ip + 24)
                dlo = u64be(buf, ip + 32)
                e, nh, cur, fr, dhi, dlo = ipv6_extensions(
                    buf, ip + 40, end, np.int64(buf[ip + 6]), dhi, dlo
                )
                pr = nh
                if e == 0:
                    l4start = cur
                    l4len = iplen - (cur - ip - 40)

        # ---- transport layer ----
        if e == 0 and l4start >= 0:
            if l4len < 0:
                l4len = 0
            if fr & FRAG_NONINITIAL:
                poff = l4start
                plen = l4len
            elif pr == IPPROTO_TCP:
                if end - l4start < 20:
                    e = ERR_TRUNC_L4
                else:
                    l4 = l4start
                    sp = u16be(buf, l4)
                    dp = u16be(buf, l4 + 2)
                    sq = u32be(buf, l4 + 4)
                    ak = u32be(buf, l4 + 8)
                    doff = (np.int64(buf[l4 + 12]) >> 4) * 4
                    fl = buf[l4 + 13]
                    wn = u16be(buf, l4 + 14)
                    if doff < 20:
                        e = ERR_BAD_TCP_HEADER
                    else:
                        poff = l4 + doff
                        plen = l4len - doff
                        if plen < 0:
                            plen = 0
            elif pr == IPPROTO_UDP:
                if end - l4start < 8:
                    e = ERR_TRUNC_L4
                else:
                    l4 = l4start
                    sp = u16be(buf, l4)
                    dp = u16be(buf, l4 + 2)
                    poff = l4 + 8
                    plen = l4len - 8
                    if plen < 0:
                        plen = 0
            elif pr == IPPROTO_ICMP or pr == IPPROTO_ICMPV6:
                if end - l4start < 8:
                    e = ERR_TRUNC_L4
                else:
                    l4 = l4start
                    it = buf[l4]
                    ic = buf[l4 + 1]
                    poff = l4 + 8
                    plen = l4len - 8
                    if plen < 0:
                        plen = 0
            else:
                poff = l4start
                plen = l4len

        # ---- store (offsets relative to the packet start) ----
        err[i] = e
        l3_off[i] = ip - base if ip >= 0 else -1
        vlan_id[i] = vid
        vlan_count[i] = ntags
        ethertype[i] = etype
        l3[i] = l3v
        ip_csum_ok[i] = csum
        ttl[i] = hop
        src_hi[i] = shi
        src_lo[i] = slo
        dst_hi[i] = dhi
        dst_lo[i] = dlo
        proto[i] = pr
        frag[i] = fr
        l4_off[i] = l4 - base if l4 >= 0 else -1
        sport[i] = sp
        dport[i] = dp
        tcp_flags[i] = fl
        seq[i] = sq
        ack[i] = ak
        win[i] = wn
        icmp_type[i] = it
        icmp_code[i] = ic
        payload_off[i] = poff - base if poff >= 0 else -1
        payload_len[i] = plen

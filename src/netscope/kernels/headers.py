"""Header walks shared by the decoder (``kernels.decode``) and the router (``kernels.router``).

Both must find the network header and the IPv6 upper-layer protocol by exactly the same
rules — the router sends a packet to the shard whose decoder will then read it, and a
disagreement would split a flow — so the walks live here once. They are IR-inlined into
both kernels (each caller keeps only the results it uses, and LLVM drops the rest).
The rules are those of docs/protocols.md "Decoding rules shared with the kernel".
"""

from __future__ import annotations

import numpy as np

from netscope.constants import (
    ERR_BAD_IP_VERSION,
    ERR_IPV6_EXT_LIMIT,
    ERR_TRUNC_IP,
    ERR_TRUNC_IPV6_EXT,
    ERR_TRUNC_LINK,
    ERR_UNSUPPORTED_LINK,
    ETH_IPV4,
    ETH_IPV6,
    ETH_PPPOE_SESSION,
    ETH_QINQ,
    ETH_QINQ_OLD,
    ETH_VLAN,
    FRAG_HEADER,
    FRAG_MORE,
    FRAG_NONINITIAL,
    IPPROTO_AH,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPV6_MAX_EXT_HEADERS,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_OPENBSD,
    PPP_IPV4,
    PPP_IPV6,
)
from netscope.kernels._jit import inline_helper
from netscope.kernels.byteorder import u16be, u32be, u32le, u64be

MAX_VLAN_TAGS = 8  # bounded tag walk; deeper stacks are treated as non-IP


@inline_helper
def _af_to_ethertype(af):  # type: ignore[no-untyped-def]
    if af == 2:
        return ETH_IPV4
    if af == 24 or af == 28 or af == 30:
        return ETH_IPV6
    return 0


@inline_helper
def link_layer(buf, base, end, lt):  # type: ignore[no-untyped-def]
    """Walk the link header of the packet in ``buf[base:end]`` with link type ``lt``.

    Returns ``(err, ip, version, ethertype, vlan_id, vlan_count)``: ``ip`` is the offset of
    the IP header (-1 if none), ``version`` 4, 6 or 0 (not IP). ``err`` is 0 or one of
    ERR_TRUNC_LINK, ERR_UNSUPPORTED_LINK, ERR_TRUNC_IP, ERR_BAD_IP_VERSION.
    """
    e = 0
    vid = -1
    ntags = 0
    etype = 0
    ip = np.int64(-1)
    version = 0
    if lt == LINKTYPE_ETHERNET or lt == LINKTYPE_LINUX_SLL or lt == LINKTYPE_LINUX_SLL2:
        if lt == LINKTYPE_ETHERNET:
            hdr = 14
            tpos = base + 12
        elif lt == LINKTYPE_LINUX_SLL:
            hdr = 16
            tpos = base + 14
        else:
            hdr = 20
            tpos = base
        if end - base < hdr:
            e = ERR_TRUNC_LINK
        else:
            etype = u16be(buf, tpos)
            cur = base + hdr
            while etype == ETH_VLAN or etype == ETH_QINQ or etype == ETH_QINQ_OLD:
                if ntags >= MAX_VLAN_TAGS:
                    break
                if end - cur < 4:
                    e = ERR_TRUNC_LINK
                    break
                if ntags == 0:
                    vid = u16be(buf, cur) & 0x0FFF
                etype = u16be(buf, cur + 2)
                ntags += 1
                cur += 4
            if e == 0 and etype == ETH_PPPOE_SESSION:
                # PPPoE session: 6-byte PPPoE header, then a 2-byte PPP protocol.
                if end - cur < 8:
                    e = ERR_TRUNC_LINK
                else:
                    ppp = u16be(buf, cur + 6)
                    cur += 8
                    if ppp == PPP_IPV4:
                        etype = ETH_IPV4
                    elif ppp == PPP_IPV6:
                        etype = ETH_IPV6
            if e == 0:
                if etype == ETH_IPV4:
                    version = 4
                    ip = cur
                elif etype == ETH_IPV6:
                    version = 6
                    ip = cur
    elif lt == LINKTYPE_NULL or lt == LINKTYPE_LOOP:
        if end - base < 4:
            e = ERR_TRUNC_LINK
        else:
            if lt == LINKTYPE_LOOP:
                etype = _af_to_ethertype(u32be(buf, base))
            else:
                etype = _af_to_ethertype(u32le(buf, base))
                if etype == 0:
                    etype = _af_to_ethertype(u32be(buf, base))
                if etype == 0:
                    # Some writers put an EtherType in the header's last two bytes.
                    low = u16be(buf, base + 2)
                    if low == ETH_IPV4 or low == ETH_IPV6:
                        etype = low
            if etype == ETH_IPV4:
                version = 4
                ip = base + 4
            elif etype == ETH_IPV6:
                version = 6
                ip = base + 4
    elif (
        lt == LINKTYPE_RAW
        or lt == LINKTYPE_RAW_OPENBSD
        or lt == LINKTYPE_IPV4
        or lt == LINKTYPE_IPV6
    ):
        # Every raw-IP link type dispatches on the version nibble, as tcpdump and tshark do:
        # writers label IPv6 packets LINKTYPE_IPV4 (and the reverse) often enough that
        # trusting the header's own version is the useful reading.
        if end - base < 1:
            e = ERR_TRUNC_IP
        else:
            nib = buf[base] >> 4
            if nib == 4:
                version = 4
                etype = ETH_IPV4
                ip = base
            elif nib == 6:
                version = 6
                etype = ETH_IPV6
                ip = base
            else:
                e = ERR_BAD_IP_VERSION
    else:
        e = ERR_UNSUPPORTED_LINK
    return e, ip, version, etype, vid, ntags


@inline_helper
def ipv6_extensions(buf, cur, end, nh, dhi, dlo):  # type: ignore[no-untyped-def]
    """Walk IPv6 extension headers from ``cur`` (just after the fixed header), next header
    ``nh``; ``dhi``/``dlo`` is the destination from the fixed header.

    Returns ``(err, nh, cur, frag, dhi, dlo)``: the upper-layer protocol and where it
    starts, FRAG_* bits, and the final destination (a routing header with segments left
    names it). ``err`` is 0, ERR_IPV6_EXT_LIMIT or ERR_TRUNC_IPV6_EXT. The walk stops at a
    non-initial fragment: what follows is not a header.
    """
    e = 0
    fr = 0
    walked = 0
    while True:
        if nh == IPPROTO_HOPOPTS or nh == IPPROTO_ROUTING or nh == IPPROTO_DSTOPTS:
            if walked >= IPV6_MAX_EXT_HEADERS:
                e = ERR_IPV6_EXT_LIMIT
                break
            if end - cur < 2:
                e = ERR_TRUNC_IPV6_EXT
                break
            hl = (np.int64(buf[cur + 1]) + 1) * 8
            if end - cur < hl:
                e = ERR_TRUNC_IPV6_EXT
                break
            if nh == IPPROTO_ROUTING and hl >= 24 and buf[cur + 3] > 0:
                # Segments left: the packet's final destination is in the
                # routing header (what TCP/UDP checksums and flows use).
                rtype = buf[cur + 2]
                if rtype == 0 or rtype == 2:
                    last = cur + hl - 16
                    dhi = u64be(buf, last)
                    dlo = u64be(buf, last + 8)
                elif rtype == 4:
                    dhi = u64be(buf, cur + 8)
                    dlo = u64be(buf, cur + 16)
            nh = np.int64(buf[cur])
            cur += hl
            walked += 1
        elif nh == IPPROTO_AH:
            if walked >= IPV6_MAX_EXT_HEADERS:
                e = ERR_IPV6_EXT_LIMIT
                break
            if end - cur < 2:
                e = ERR_TRUNC_IPV6_EXT
                break
            hl = (np.int64(buf[cur + 1]) + 2) * 4
            if end - cur < hl:
                e = ERR_TRUNC_IPV6_EXT
                break
            nh = np.int64(buf[cur])
            cur += hl
            walked += 1
        elif nh == IPPROTO_FRAGMENT:
            if walked >= IPV6_MAX_EXT_HEADERS:
                e = ERR_IPV6_EXT_LIMIT
                break
            if end - cur < 8:
                e = ERR_TRUNC_IPV6_EXT
                break
            fw = u16be(buf, cur + 2)
            fr |= FRAG_HEADER
            if fw & 1:
                fr |= FRAG_MORE
            if fw >> 3:
                fr |= FRAG_NONINITIAL
            nh = np.int64(buf[cur])
            cur += 8
            walked += 1
            if fr & FRAG_NONINITIAL:
                break
        else:
            break
    return e, nh, cur, fr, dhi, dlo

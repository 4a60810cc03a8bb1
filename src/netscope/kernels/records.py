"""Record scanners: walk capture-file records in a chunk and fill batch arrays.

Both scanners stop early and say why (``status``), so the Python reader can refill
the chunk, handle a non-packet pcapng block, or report a corrupt record, without
ever touching individual packets itself.
"""

from __future__ import annotations

import numpy as np

from netscope.kernels._jit import kernel
from netscope.kernels.byteorder import u16, u32
from netscope.kernels.prefetch import prefetch

# Bytes ahead of the record being read that the scanners ask the cache for (see
# kernels/prefetch.py); two lines per record, so short records leave no line unrequested.
PREFETCH_AHEAD = 2048
# Only behind short records: with long ones the header chain is sparse (one line per
# record) and the hardware streams it well; extra prefetches there measured slower.
PREFETCH_MAX_RECORD = 256

# status codes returned by the scanners
NEED_MORE = 0  # the next record is not entirely inside [pos, end)
BATCH_FULL = 1  # max_packets records were produced
CORRUPT = 2  # the record at pos has an impossible length / interface
OTHER_BLOCK = 3  # (pcapng) the block at pos is not a packet block
# (pcapng) the packet block at pos is damaged: its trailing total length differs from the
# leading one, or an option runs past the block (tcpdump and tshark refuse such files too)
DAMAGED = 4

INT32_MAX = 2147483647
INT64_MAX = 9223372036854775807

PCAPNG_EPB = 6
PCAPNG_SPB = 3
PCAPNG_OPB = 2


@kernel
def scan_pcap(  # type: ignore[no-untyped-def]
    buf,
    pos,
    end,
    big_endian,
    frac_to_ns,
    old_length_order,
    max_caplen,
    max_packets,
    offsets,
    caplens,
    wirelens,
    ts_ns,
):
    """Scan classic-pcap records in ``buf[pos:end]``.

    Writes up to ``max_packets`` entries of offsets/caplens/wirelens/ts_ns (int64,
    int32, int32, int64). ``frac_to_ns`` is 1000 for microsecond files and 1 for
    nanosecond ones. ``old_length_order``: files older than version 2.3 may have
    the two length fields swapped; like libpcap, swap them when incl > orig.
    Returns ``(count, new_pos, status)``.
    """
    n = 0
    while n < max_packets:
        if end - pos < 16:
            return n, pos, NEED_MORE
        sec = u32(buf, pos, big_endian)
        frac = u32(buf, pos + 4, big_endian)
        incl = u32(buf, pos + 8, big_endian)
        orig = u32(buf, pos + 12, big_endian)
        if old_length_order and incl > orig:
            incl, orig = orig, incl
        if incl > max_caplen:
            return n, pos, CORRUPT
        if end - pos - 16 < incl:
            return n, pos, NEED_MORE
        if incl <= PREFETCH_MAX_RECORD:
            prefetch(buf, pos + PREFETCH_AHEAD)
            prefetch(buf, pos + PREFETCH_AHEAD + 64)
        offsets[n] = pos + 16
        caplens[n] = incl
        wirelens[n] = orig if orig < INT32_MAX else INT32_MAX
        ts_ns[n] = sec * 1_000_000_000 + frac * frac_to_ns
        pos += 16 + incl
        n += 1
    return n, pos, BATCH_FULL


# Timestamps are int64 ns since 1970. A pcapng timestamp outside [0, TS_MAX_NS] (a
# negative or enormous if_tsoffset, a 64-bit tick count beyond year 2262) is clamped to the
# nearer end and counted; INT64_MAX itself is the flow kernel's "no tick pending".
TS_MAX_NS = INT64_MAX - 1
TS_MAX_SEC = TS_MAX_NS // 1_000_000_000

# pcapng scanner state slots (int64 array of STATE_SLOTS, zeroed by the reader)
ST_LAST_TS = 0  # the last timestamp (SPBs have none and inherit it)
ST_LAST_CLAMPED = 1  # 1 if that timestamp was clamped
ST_CLAMPED = 2  # packets whose timestamp was clamped so far
STATE_SLOTS = 3


@kernel
def _ticks_to_ns(hi, lo, units, offset_s):  # type: ignore[no-untyped-def]
    """pcapng ticks (``hi:lo``, 1/``units`` s) plus ``offset_s`` seconds -> ns since 1970.

    Returns ``(ns, clamped)``. Never overflows: seconds are range-checked before they are
    scaled to ns, and ``offset_s`` (any int64, from if_tsoffset) is added in seconds.
    """
    if hi >= 0x80000000:  # ticks >= 2**63: beyond int64 whatever the unit
        return TS_MAX_NS, True
    ticks = (hi << 32) | lo
    sec = ticks // units
    frac = ticks - sec * units
    if units <= 4_000_000_000:
        frac_ns = (frac * 1_000_000_000) // units
    else:
        frac_ns = np.int64(frac * (1e9 / units))
    # sec >= 0, so sec + offset_s can overflow only upwards
    if offset_s > 0 and sec > TS_MAX_SEC - offset_s:
        return TS_MAX_NS, True
    sec += offset_s
    if sec < 0:
        return 0, True
    if sec > TS_MAX_SEC:
        return TS_MAX_NS, True
    whole = sec * 1_000_000_000
    if frac_ns > TS_MAX_NS - whole:
        return TS_MAX_NS, True
    return whole + frac_ns, False


@kernel
def scan_pcapng(  # type: ignore[no-untyped-def]
    buf,
    pos,
    end,
    big_endian,
    max_block,
    if_linktype,
    if_snaplen,
    if_units,
    if_offset_s,
    n_ifaces,
    max_packets,
    state,
    offsets,
    caplens,
    wirelens,
    ts_ns,
    linktypes,
):
    """Scan pcapng packet blocks (EPB, SPB, obsolete PB) in ``buf[pos:end]``.

    Interface tables (``if_*``, length >= ``n_ifaces``) come from the IDBs the
    Python reader parsed (``if_offset_s``: if_tsoffset in seconds). ``state`` (see
    ``ST_*``) carries the last timestamp across calls (SPBs have none and inherit it) and
    counts clamped timestamps. Stops with OTHER_BLOCK at any other block type so Python can
    parse IDBs/SHBs and skip unknown blocks. Returns ``(count, new_pos, status)``.
    """
    n = 0
    while n < max_packets:
        if end - pos < 12:
            return n, pos, NEED_MORE
        btype = u32(buf, pos, big_endian)
        blen = u32(buf, pos + 4, big_endian)
        if blen < 12 or (blen & 3) != 0 or blen > max_block:
            return n, pos, CORRUPT
        if end - pos < blen:
            return n, pos, NEED_MORE
        if blen <= PREFETCH_MAX_RECORD:
            prefetch(buf, pos + PREFETCH_AHEAD)
            prefetch(buf, pos + PREFETCH_AHEAD + 64)
        if btype == PCAPNG_EPB or btype == PCAPNG_OPB:
            if btype == PCAPNG_EPB:
                if blen < 32:
                    return n, pos, CORRUPT
                iface = u32(buf, pos + 8, big_endian)
                hi = u32(buf, pos + 12, big_endian)
                lo = u32(buf, pos + 16, big_endian)
                cap = u32(buf, pos + 20, big_endian)
                orig = u32(buf, pos + 24, big_endian)
                data = pos + 28
            else:
                if blen < 32:
                    return n, pos, CORRUPT
                iface = u16(buf, pos + 8, big_endian)
                hi = u32(buf, pos + 12, big_endian)
                lo = u32(buf, pos + 16, big_endian)
                cap = u32(buf, pos + 20, big_endian)
                orig = u32(buf, pos + 24, big_endian)
                data = pos + 28
            if iface >= n_ifaces or cap > blen - 32:
                return n, pos, CORRUPT
            if u32(buf, pos + blen - 4, big_endian) != blen:
                return n, pos, DAMAGED
            # options follow the padded packet data up to the trailer: each must end inside
            opt = data + ((cap + 3) & ~3)
            opt_end = pos + blen - 4
            while opt + 4 <= opt_end:
                code = u16(buf, opt, big_endian)
                if code == 0:  # opt_endofopt
                    break
                opt += 4 + ((u16(buf, opt + 2, big_endian) + 3) & ~3)
                if opt > opt_end:
                    return n, pos, DAMAGED
            ts, clamped = _ticks_to_ns(hi, lo, if_units[iface], if_offset_s[iface])
            state[ST_LAST_TS] = ts
            state[ST_LAST_CLAMPED] = 1 if clamped else 0
        elif btype == PCAPNG_SPB:
            if n_ifaces < 1 or blen < 16:
                return n, pos, CORRUPT
            if u32(buf, pos + blen - 4, big_endian) != blen:
                return n, pos, DAMAGED
            iface = 0
            orig = u32(buf, pos + 8, big_endian)
            cap = blen - 16
            if orig < cap:
                cap = orig
            snap = if_snaplen[0]
            if snap > 0 and snap < cap:
                cap = snap
            data = pos + 12
            ts = state[ST_LAST_TS]
        else:
            return n, pos, OTHER_BLOCK
        offsets[n] = data
        caplens[n] = cap
        wirelens[n] = orig if orig < INT32_MAX else INT32_MAX
        ts_ns[n] = ts
        state[ST_CLAMPED] += state[ST_LAST_CLAMPED]
        linktypes[n] = if_linktype[iface]
        pos += blen
        n += 1
    return n, pos, BATCH_FULL

"""Flow table kernels: open-addressing index over row-stable numpy matrices.

Layout (``netscope.flows.layout``): a flow is a row in ``keys``/``i64``/``f64``/
``u32``/``u8``/``links``. The hash index (``idx_row`` int32, ``idx_tag`` uint32,
power-of-two size, linear probing, backward-shift deletion, load <= 0.5) maps a
canonical key to its row; rows never move, so row ids are stable handles for
top-N candidates and exports. Rows are kept on an LRU list ordered by last
packet, which makes "evict the oldest by last_seen" and the inactivity sweep
O(1) per flow removed. Removed flows are copied into the ``exp_*`` buffer (when
a sink wants them) before their row is recycled.

``observe`` processes ``[start, count)`` of a decoded batch and may stop early
with a status (tick boundary, expired buffer full, table or RTT pool full); the
Python caller handles it and calls again from the returned index. Every early
return happens before packet ``i`` mutates anything, so resuming is exact.
"""

from __future__ import annotations

import numpy as np

from netscope.constants import ERR_OK, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from netscope.flows.layout import (
    B_CLIENT,
    B_FIN_SIDE,
    B_LIVE,
    B_SEQFLAGS,
    B_STATE,
    B_TCPF_AB,
    CLIENT_A,
    CLIENT_B,
    CLIENT_UNKNOWN,
    F_RTT_EWMA,
    F_RTT_LAST,
    F_RTT_MIN,
    G_ACTIVE,
    G_EXPIRED_COUNT,
    G_EXPIRED_DROPPED,
    G_FREE_TOP,
    G_LAST_TS,
    G_LRU_HEAD,
    G_LRU_TAIL,
    G_NEXT_EXPIRY_NS,
    G_RING_FREE_TOP,
    G_RTT_UNTRACKED,
    G_TICK_BYTES,
    G_TICK_PKTS,
    G_TOTAL_CREATED,
    G_TOTAL_EVICTED,
    G_TOTAL_EXPIRED,
    G_TOTAL_OOO,
    G_TOTAL_RETRANS,
    I_BYTES_AB,
    I_DELTA_BYTES,
    I_DELTA_PKTS,
    I_FIRST_NS,
    I_LAST_NS,
    I_OOO,
    I_OUT_TS_AB,
    I_PKTS_AB,
    I_RETRANS,
    I_RTT_SAMPLES,
    K_A_HI,
    K_A_LO,
    K_B_HI,
    K_B_LO,
    K_META,
    L_NEXT,
    L_PREV,
    L_RING_AB,
    REASON_EVICTED,
    REASON_TIMEOUT,
    RTT_EWMA_ALPHA,
    RTT_RING,
    S_LAST_ACK_AB,
    S_MAX_END_AB,
    S_OUT_END_AB,
    SEQF_HAVE_ACK_AB,
    SEQF_HAVE_END_AB,
    SEQF_OUT_AB,
    ST_DONE,
    ST_EXPIRED_FULL,
    ST_GROW_ROWS,
    ST_TICK,
    TCP_STATE_CLOSED,
    TCP_STATE_ESTABLISHED,
    TCP_STATE_FIN_WAIT,
    TCP_STATE_RESET,
    TCP_STATE_SYN_ACK,
    TCP_STATE_SYN_SENT,
    TCP_STATE_UNKNOWN,
    X_IPB_AB,
)
from netscope.kernels._jit import inline_helper, kernel, runtime_kernel
from netscope.kernels.lists import list_append, list_unlink

# parameter vector (int64) indices
P_MAX_FLOWS = 0
P_TIMEOUT_NS = 1
P_TRACK_SEQ = 2
P_RTT = 3
P_RETRANS = 4
P_OOO = 5
P_TICK_AT_NS = 6
P_KEEP_EXPIRED = 7
P_EXPORT_COL = 8  # first flow-export i64 column (layout.X_*), -1 = no export columns
P_WIDTH = 9

SWEEP_EVERY_NS = 1_000_000_000  # inactivity is checked at most once per second of packet time

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


@inline_helper
def _mix(x):  # type: ignore[no-untyped-def]
    """splitmix64 finaliser: every input bit affects every output bit."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@inline_helper
def flow_hash(a_hi, a_lo, b_hi, b_lo, meta):  # type: ignore[no-untyped-def]
    h = _mix(a_lo ^ ((b_lo << np.uint64(32)) | (b_lo >> np.uint64(32))) ^ (meta * _GOLD))
    if a_hi != 0 or b_hi != 0:
        h = _mix(h ^ a_hi ^ ((b_hi << np.uint64(17)) | (b_hi >> np.uint64(47))))
    return h


@inline_helper
def seq_le(a, b):  # type: ignore[no-untyped-def]
    """a <= b in 32-bit sequence space (RFC 1982 style, wrap-around safe)."""
    return np.int32(np.uint32(a) - np.uint32(b)) <= 0


@inline_helper
def _find(keys, idx_row, idx_tag, mask, tag, k0, k1, k2, k3, k4):  # type: ignore[no-untyped-def]
    """Row holding the key, or -1."""
    slot = np.int64(tag) & mask
    while True:
        row = idx_row[slot]
        if row < 0:
            return -1
        if (
            idx_tag[slot] == tag
            and keys[row, K_META] == k4
            and keys[row, K_A_LO] == k1
            and keys[row, K_B_LO] == k3
            and keys[row, K_A_HI] == k0
            and keys[row, K_B_HI] == k2
        ):
            return row
        slot = (slot + 1) & mask


@inline_helper
def _index_insert(idx_row, idx_tag, mask, tag, row):  # type: ignore[no-untyped-def]
    slot = np.int64(tag) & mask
    while idx_row[slot] >= 0:
        slot = (slot + 1) & mask
    idx_row[slot] = row
    idx_tag[slot] = tag


@inline_helper
def _index_delete(keys, idx_row, idx_tag, mask, row):  # type: ignore[no-untyped-def]
    """Remove ``row`` from the index with backward-shift deletion (no tombstones)."""
    tag = np.uint32(
        flow_hash(
            keys[row, K_A_HI],
            keys[row, K_A_LO],
            keys[row, K_B_HI],
            keys[row, K_B_LO],
            keys[row, K_META],
        )
        & np.uint64(0xFFFFFFFF)
    )
    slot = np.int64(tag) & mask
    while idx_row[slot] != row:
        slot = (slot + 1) & mask
    hole = slot
    j = slot
    while True:
        j = (j + 1) & mask
        if idx_row[j] < 0:
            break
        home = np.int64(idx_tag[j]) & mask
        # move j into the hole unless its home lies cyclically in (hole, j]
        if hole <= j:
            stays = hole < home <= j
        else:
            stays = home > hole or home <= j
        if not stays:
            idx_row[hole] = idx_row[j]
            idx_tag[hole] = idx_tag[j]
            hole = j
    idx_row[hole] = -1


@inline_helper
def _release_ring(links, ring_meta, ring_free, g, row, d):  # type: ignore[no-untyped-def]
    slot = links[row, L_RING_AB + d]
    if slot >= 0:
        ring_meta[slot, 0] = 0
        ring_meta[slot, 1] = 0
        ring_free[g[G_RING_FREE_TOP]] = slot
        g[G_RING_FREE_TOP] += 1
        links[row, L_RING_AB + d] = -1


@inline_helper
def _remove_flow(  # type: ignore[no-untyped-def]
    keys,
    i64,
    f64,
    u8,
    links,
    idx_row,
    idx_tag,
    mask,
    free_rows,
    g,
    p,
    ring_meta,
    ring_free,
    exp_keys,
    exp_i64,
    exp_f64,
    exp_u8,
    exp_reason,
    row,
    reason,
):
    """Emit ``row`` to the expired buffer (if wanted) and recycle it."""
    if p[P_KEEP_EXPIRED]:
        k = g[G_EXPIRED_COUNT]
        # element loops, not slice copies: these kernels run without numba's runtime
        for c in range(keys.shape[1]):
            exp_keys[k, c] = keys[row, c]
        for c in range(i64.shape[1]):
            exp_i64[k, c] = i64[row, c]
        if f64.shape[0] == keys.shape[0]:  # deep mode keeps RTT columns
            for c in range(f64.shape[1]):
                exp_f64[k, c] = f64[row, c]
        for c in range(u8.shape[1]):
            exp_u8[k, c] = u8[row, c]
        exp_reason[k] = reason
        g[G_EXPIRED_COUNT] = k + 1
    else:
        g[G_EXPIRED_DROPPED] += 1
    if reason == REASON_TIMEOUT:
        g[G_TOTAL_EXPIRED] += 1
    else:
        g[G_TOTAL_EVICTED] += 1
    _index_delete(keys, idx_row, idx_tag, mask, row)
    list_unlink(links, L_PREV, L_NEXT, g, G_LRU_HEAD, G_LRU_TAIL, row)
    if p[P_RTT]:
        _release_ring(links, ring_meta, ring_free, g, row, 0)
        _release_ring(links, ring_meta, ring_free, g, row, 1)
    u8[row, B_LIVE] = 0
    free_rows[g[G_FREE_TOP]] = row
    g[G_FREE_TOP] += 1
    g[G_ACTIVE] -= 1


@inline_helper
def _sweep_idle(  # type: ignore[no-untyped-def]
    now_ns, keys, i64, f64, u8, links, idx_row, idx_tag, mask, free_rows, g, p,
    ring_meta, ring_free, exp_keys, exp_i64, exp_f64, exp_u8, exp_reason,
):  # fmt: skip
    """Remove flows idle for at least the timeout, oldest first (the LRU head).

    Reads and updates the LRU ends in ``g``. Returns ST_EXPIRED_FULL when the expired
    buffer must be drained first (the sweep then resumes where it stopped), else ST_DONE.
    """
    timeout = p[P_TIMEOUT_NS]
    while g[G_LRU_HEAD] >= 0:
        head = g[G_LRU_HEAD]
        if i64[head, I_LAST_NS] + timeout > now_ns:
            break
        if p[P_KEEP_EXPIRED] and g[G_EXPIRED_COUNT] >= exp_reason.shape[0]:
            return ST_EXPIRED_FULL
        _remove_flow(
            keys, i64, f64, u8, links, idx_row, idx_tag, mask, free_rows, g, p, ring_meta,
            ring_free, exp_keys, exp_i64, exp_f64, exp_u8, exp_reason, head, REASON_TIMEOUT,
        )  # fmt: skip
    return ST_DONE


@inline_helper
def _rtt_sample(f64, i64, row, rtt_ms):  # type: ignore[no-untyped-def]
    n = i64[row, I_RTT_SAMPLES]
    f64[row, F_RTT_LAST] = rtt_ms
    if n == 0:
        f64[row, F_RTT_MIN] = rtt_ms
        f64[row, F_RTT_EWMA] = rtt_ms
    else:
        if rtt_ms < f64[row, F_RTT_MIN]:
            f64[row, F_RTT_MIN] = rtt_ms
        f64[row, F_RTT_EWMA] = (1.0 - RTT_EWMA_ALPHA) * f64[
            row, F_RTT_EWMA
        ] + RTT_EWMA_ALPHA * rtt_ms
    i64[row, I_RTT_SAMPLES] = n + 1


@inline_helper
def _tcp_state(u8, row, d, flags):  # type: ignore[no-untyped-def]
    """Advance the TCP state machine of SPEC §6 for one segment from side ``d``.

    Returns True when a SYN restarts a closed/reset flow (new connection on the
    same 5-tuple), so the caller resets sequence state.
    """
    st = u8[row, B_STATE]
    restart = False
    if flags & TCP_RST:
        u8[row, B_STATE] = TCP_STATE_RESET
        return False
    if st == TCP_STATE_RESET and not (flags & TCP_SYN):
        return False  # a reset connection stays reset until a new SYN
    if flags & TCP_SYN:
        if flags & TCP_ACK:
            if st == TCP_STATE_UNKNOWN or st == TCP_STATE_SYN_SENT:
                u8[row, B_STATE] = TCP_STATE_SYN_ACK
                if u8[row, B_CLIENT] == CLIENT_UNKNOWN:
                    u8[row, B_CLIENT] = CLIENT_B if d == 0 else CLIENT_A
        else:
            if st == TCP_STATE_CLOSED or st == TCP_STATE_RESET:
                restart = True
                st = TCP_STATE_UNKNOWN
            if st == TCP_STATE_UNKNOWN:
                u8[row, B_STATE] = TCP_STATE_SYN_SENT
                u8[row, B_CLIENT] = CLIENT_A if d == 0 else CLIENT_B
        return restart
    if flags & TCP_ACK:
        if st == TCP_STATE_SYN_ACK or st == TCP_STATE_UNKNOWN:
            st = TCP_STATE_ESTABLISHED
            u8[row, B_STATE] = st
    if flags & TCP_FIN:
        if st == TCP_STATE_FIN_WAIT:
            if u8[row, B_FIN_SIDE] != d:
                u8[row, B_STATE] = TCP_STATE_CLOSED
        elif st != TCP_STATE_CLOSED:
            u8[row, B_STATE] = TCP_STATE_FIN_WAIT
            u8[row, B_FIN_SIDE] = d
    return False


@inline_helper
def _sync_table(g, lru_head, lru_tail, free_top, created):  # type: ignore[no-untyped-def]
    """Write observe()'s register copies of the table bookkeeping back to ``g``; the
    ``created`` flows are added to the counters (the caller restarts its count)."""
    g[G_LRU_HEAD] = lru_head
    g[G_LRU_TAIL] = lru_tail
    g[G_FREE_TOP] = free_top
    g[G_ACTIVE] += created
    g[G_TOTAL_CREATED] += created


@inline_helper
def _sync_tick(g, tick_bytes, tick_pkts, last_ts):  # type: ignore[no-untyped-def]
    """Write observe()'s register copies of the tick totals back to ``g``."""
    g[G_TICK_BYTES] = tick_bytes
    g[G_TICK_PKTS] = tick_pkts
    g[G_LAST_TS] = last_ts


@kernel
def observe(  # type: ignore[no-untyped-def]
    start,
    count,
    ts_ns,
    wirelens,
    err,
    l3,
    src_hi,
    src_lo,
    dst_hi,
    dst_lo,
    proto,
    l4_off,
    sport,
    dport,
    tcp_flags,
    seq,
    ack,
    payload_len,
    l3_off,
    payload_off,
    keys,
    i64,
    f64,
    u32,
    u8,
    links,
    idx_row,
    idx_tag,
    free_rows,
    g,
    p,
    ring_seq,
    ring_ts,
    ring_meta,
    ring_free,
    exp_keys,
    exp_i64,
    exp_f64,
    exp_u8,
    exp_reason,
):
    """Fold packets ``[start, count)`` into the flow table. Returns ``(i, status)``."""
    mask = np.int64(idx_row.shape[0] - 1)
    exp_cap = exp_reason.shape[0]
    keep = p[P_KEEP_EXPIRED] != 0
    timeout = p[P_TIMEOUT_NS]
    track_seq = p[P_TRACK_SEQ] != 0
    do_rtt = p[P_RTT] != 0
    xcol = p[P_EXPORT_COL]
    # The LRU ends live in locals on the hot path: storing them to ``g`` every packet
    # makes each iteration's loads wait on the previous one's stores (~40 ns/packet).
    # ``g`` is synchronised before anything else reads it (removals, returns).
    lru_head = g[G_LRU_HEAD]
    lru_tail = g[G_LRU_TAIL]
    tick_bytes = g[G_TICK_BYTES]
    tick_pkts = g[G_TICK_PKTS]
    last_ts = g[G_LAST_TS]
    tick_at = p[P_TICK_AT_NS]
    # Likewise the free-row stack top and the flows created since the last sync.
    free_top = g[G_FREE_TOP]
    created = np.int64(0)
    for i in range(start, count):
        ts = ts_ns[i]
        if ts >= tick_at:
            _sync_table(g, lru_head, lru_tail, free_top, created)
            _sync_tick(g, tick_bytes, tick_pkts, last_ts)
            return i, ST_TICK

        # ---- inactivity sweep, at most once per second of packet time ----
        if timeout > 0 and ts >= g[G_NEXT_EXPIRY_NS]:
            _sync_table(g, lru_head, lru_tail, free_top, created)
            created = 0
            status = _sweep_idle(
                ts, keys, i64, f64, u8, links, idx_row, idx_tag, mask, free_rows, g, p,
                ring_meta, ring_free, exp_keys, exp_i64, exp_f64, exp_u8, exp_reason,
            )  # fmt: skip
            if status == ST_EXPIRED_FULL:
                _sync_tick(g, tick_bytes, tick_pkts, last_ts)  # g holds the rest already
                return i, ST_EXPIRED_FULL
            g[G_NEXT_EXPIRY_NS] = ts + SWEEP_EVERY_NS
            lru_head = g[G_LRU_HEAD]
            lru_tail = g[G_LRU_TAIL]
            free_top = g[G_FREE_TOP]

        wl = np.int64(wirelens[i])
        pr = proto[i]
        trackable = (
            err[i] == ERR_OK
            and l3[i] != 0
            and l4_off[i] >= 0
            and (pr == IPPROTO_TCP or pr == IPPROTO_UDP)
        )
        if not trackable:
            tick_bytes += wl
            tick_pkts += 1
            if ts > last_ts:
                last_ts = ts
            continue

        # ---- canonical key: endpoint A is the smaller (version, ip, port) ----
        shi = src_hi[i]
        slo = src_lo[i]
        dhi = dst_hi[i]
        dlo = dst_lo[i]
        sp = np.uint64(sport[i])
        dp = np.uint64(dport[i])
        if shi < dhi or (shi == dhi and (slo < dlo or (slo == dlo and sp <= dp))):
            d = 0
            k0, k1, k2, k3 = shi, slo, dhi, dlo
            pa, pb = sp, dp
        else:
            d = 1
            k0, k1, k2, k3 = dhi, dlo, shi, slo
            pa, pb = dp, sp
        k4 = (
            (pa << np.uint64(48))
            | (pb << np.uint64(32))
            | (np.uint64(pr) << np.uint64(8))
            | np.uint64(l3[i])
        )
        h = flow_hash(k0, k1, k2, k3, k4)
        tag = np.uint32(h & np.uint64(0xFFFFFFFF))
        row = _find(keys, idx_row, idx_tag, mask, tag, k0, k1, k2, k3, k4)

        is_tcp = pr == IPPROTO_TCP
        flags = tcp_flags[i]
        seglen = np.int64(payload_len[i])
        if is_tcp:
            if flags & TCP_SYN:
                seglen += 1
            if flags & TCP_FIN:
                seglen += 1

        # ---- capacity checks (no mutation before these) ----
        evict = False
        if row < 0 and free_top == 0:
            # the table starts small and grows (Python side) up to max_flows rows; only a
            # table at its cap evicts
            if p[P_MAX_FLOWS] > 0 and keys.shape[0] >= p[P_MAX_FLOWS] and lru_head >= 0:
                if keep and g[G_EXPIRED_COUNT] >= exp_cap:
                    _sync_table(g, lru_head, lru_tail, free_top, created)
                    _sync_tick(g, tick_bytes, tick_pkts, last_ts)
                    return i, ST_EXPIRED_FULL
                evict = True
            else:
                _sync_table(g, lru_head, lru_tail, free_top, created)
                _sync_tick(g, tick_bytes, tick_pkts, last_ts)
                return i, ST_GROW_ROWS

        # ---- mutate ----
        tick_bytes += wl
        tick_pkts += 1
        if ts > last_ts:
            last_ts = ts
        if row < 0:
            if evict:
                _sync_table(g, lru_head, lru_tail, free_top, created)
                created = 0
                _remove_flow(
                    keys,
                    i64,
                    f64,
                    u8,
                    links,
                    idx_row,
                    idx_tag,
                    mask,
                    free_rows,
                    g,
                    p,
                    ring_meta,
                    ring_free,
                    exp_keys,
                    exp_i64,
                    exp_f64,
                    exp_u8,
                    exp_reason,
                    lru_head,
                    REASON_EVICTED,
                )
                lru_head = g[G_LRU_HEAD]
                lru_tail = g[G_LRU_TAIL]
                free_top = g[G_FREE_TOP]
            free_top -= 1
            row = free_rows[free_top]
            keys[row, K_A_HI] = k0
            keys[row, K_A_LO] = k1
            keys[row, K_B_HI] = k2
            keys[row, K_B_LO] = k3
            keys[row, K_META] = k4
            i64[row, :] = 0
            i64[row, I_FIRST_NS] = ts
            i64[row, I_LAST_NS] = ts
            u8[row, :] = 0
            u8[row, B_LIVE] = 1
            if track_seq:
                u32[row, :] = 0
            if do_rtt:
                f64[row, :] = 0.0
                links[row, L_RING_AB] = -1
                links[row, L_RING_AB + 1] = -1
            _index_insert(idx_row, idx_tag, mask, tag, row)
            links[row, L_PREV] = lru_tail
            links[row, L_NEXT] = -1
            if lru_tail >= 0:
                links[lru_tail, L_NEXT] = row
            else:
                lru_head = row
            lru_tail = row
            created += 1
        elif lru_tail != row:
            # move to the tail of the LRU list (row is not the tail, so it has a next)
            prev_row = links[row, L_PREV]
            next_row = links[row, L_NEXT]
            if prev_row >= 0:
                links[prev_row, L_NEXT] = next_row
            else:
                lru_head = next_row
            links[next_row, L_PREV] = prev_row
            links[row, L_PREV] = lru_tail
            links[row, L_NEXT] = -1
            links[lru_tail, L_NEXT] = row
            lru_tail = row

        # first/last seen are the min/max packet time: a timestamp going backwards (merged
        # or re-ordered captures) must not leave first_seen > last_seen
        if ts > i64[row, I_LAST_NS]:
            i64[row, I_LAST_NS] = ts
        elif ts < i64[row, I_FIRST_NS]:
            i64[row, I_FIRST_NS] = ts
        i64[row, I_PKTS_AB + d] += 1
        i64[row, I_BYTES_AB + d] += wl
        i64[row, I_DELTA_BYTES] += wl
        i64[row, I_DELTA_PKTS] += 1
        if xcol >= 0:
            # flow export (issue 17): IP total length = IP + transport headers + payload
            i64[row, xcol + X_IPB_AB + d] += np.int64(payload_off[i] - l3_off[i]) + np.int64(
                payload_len[i]
            )
            if is_tcp:
                u8[row, B_TCPF_AB + d] |= flags
        if not is_tcp:
            continue

        restart = _tcp_state(u8, row, d, flags)
        if not track_seq:
            continue
        if restart:
            u8[row, B_SEQFLAGS] = 0
            if do_rtt:
                _release_ring(links, ring_meta, ring_free, g, row, 0)
                _release_ring(links, ring_meta, ring_free, g, row, 1)

        # ---- sequence analysis: retransmission / out-of-order (SPEC §6) ----
        peer = 1 - d
        sflags = np.int64(u8[row, B_SEQFLAGS])
        have_end = SEQF_HAVE_END_AB << d
        have_peer_ack = SEQF_HAVE_ACK_AB << peer
        new_data = False
        if seglen > 0:
            seq_end = np.uint32(np.uint32(seq[i]) + np.uint32(seglen))
            if not (sflags & have_end):
                u32[row, S_MAX_END_AB + d] = seq_end
                sflags |= have_end
                new_data = True
            elif seq_le(seq_end, u32[row, S_MAX_END_AB + d]):
                # old data again: covered by the peer's ACK → retransmission,
                # otherwise it fills a gap → out-of-order (no peer ACK yet: retransmission)
                if (sflags & have_peer_ack) and not seq_le(seq_end, u32[row, S_LAST_ACK_AB + peer]):
                    if p[P_OOO]:
                        i64[row, I_OOO] += 1
                        g[G_TOTAL_OOO] += 1
                else:
                    if p[P_RETRANS]:
                        i64[row, I_RETRANS] += 1
                        g[G_TOTAL_RETRANS] += 1
                if do_rtt:
                    # Karn: samples over re-sent data are ambiguous, forget them
                    _release_ring(links, ring_meta, ring_free, g, row, d)
                    sflags &= ~(SEQF_OUT_AB << d)
            else:
                u32[row, S_MAX_END_AB + d] = seq_end
                new_data = True
            out_flag = SEQF_OUT_AB << d
            slot = links[row, L_RING_AB + d] if do_rtt else -1
            if new_data and do_rtt and not (sflags & out_flag) and slot < 0:
                # nothing outstanding: the row's inline slot holds it (no ring needed —
                # most flows never have more than one segment in flight)
                u32[row, S_OUT_END_AB + d] = seq_end
                i64[row, I_OUT_TS_AB + d] = ts
                sflags |= out_flag
            elif new_data and do_rtt:
                if slot < 0 and g[G_RING_FREE_TOP] == 0:
                    # pool exhausted (e.g. a SYN flood): this segment gives no RTT sample
                    g[G_RTT_UNTRACKED] += 1
                elif slot < 0:
                    g[G_RING_FREE_TOP] -= 1
                    slot = ring_free[g[G_RING_FREE_TOP]]
                    links[row, L_RING_AB + d] = slot
                    ring_meta[slot, 0] = 0
                    ring_meta[slot, 1] = 0
                n_out = ring_meta[slot, 1] if slot >= 0 else RTT_RING
                inline_used = 1 if sflags & out_flag else 0
                if n_out + inline_used < RTT_RING:
                    pos = (ring_meta[slot, 0] + n_out) % RTT_RING
                    ring_seq[slot, pos] = seq_end
                    ring_ts[slot, pos] = ts
                    ring_meta[slot, 1] = n_out + 1
        if flags & TCP_ACK:
            a = np.uint32(ack[i])
            my_ack = SEQF_HAVE_ACK_AB << d
            if not (sflags & my_ack) or not seq_le(a, u32[row, S_LAST_ACK_AB + d]):
                u32[row, S_LAST_ACK_AB + d] = a
                sflags |= my_ack
            if do_rtt:
                # the ACK acknowledges the peer's outstanding segments, oldest first:
                # the inline slot (if used) is older than anything in the ring
                # "sampled", not a sentinel time: a segment sent before 1970 (a negative
                # if_tsoffset) has a negative timestamp and still yields a sample
                sample_ts = np.int64(0)
                sampled = False
                peer_out = SEQF_OUT_AB << peer
                if sflags & peer_out:
                    if seq_le(u32[row, S_OUT_END_AB + peer], a):
                        sample_ts = i64[row, I_OUT_TS_AB + peer]
                        sampled = True
                        sflags &= ~peer_out
                slot = links[row, L_RING_AB + peer]
                if slot >= 0 and not (sflags & peer_out):
                    head = ring_meta[slot, 0]
                    n_out = ring_meta[slot, 1]
                    while n_out > 0 and seq_le(ring_seq[slot, head], a):
                        sample_ts = ring_ts[slot, head]
                        sampled = True
                        head = (head + 1) % RTT_RING
                        n_out -= 1
                    ring_meta[slot, 0] = head
                    ring_meta[slot, 1] = n_out
                    if n_out == 0:
                        _release_ring(links, ring_meta, ring_free, g, row, peer)
                if sampled:
                    _rtt_sample(f64, i64, row, (ts - sample_ts) / 1e6)
        u8[row, B_SEQFLAGS] = sflags
    _sync_table(g, lru_head, lru_tail, free_top, created)
    _sync_tick(g, tick_bytes, tick_pkts, last_ts)
    return count, ST_DONE


@kernel
def expire_all(  # type: ignore[no-untyped-def]
    now_ns,
    keys,
    i64,
    f64,
    u8,
    links,
    idx_row,
    idx_tag,
    free_rows,
    g,
    p,
    ring_meta,
    ring_free,
    exp_keys,
    exp_i64,
    exp_f64,
    exp_u8,
    exp_reason,
):
    """Inactivity sweep at ``now_ns`` outside ``observe`` (live idle ticks). Returns status."""
    if p[P_TIMEOUT_NS] <= 0:
        return ST_DONE
    mask = np.int64(idx_row.shape[0] - 1)
    return _sweep_idle(
        now_ns, keys, i64, f64, u8, links, idx_row, idx_tag, mask, free_rows, g, p,
        ring_meta, ring_free, exp_keys, exp_i64, exp_f64, exp_u8, exp_reason,
    )  # fmt: skip


@kernel
def rebuild_index(keys, u8, idx_row, idx_tag):  # type: ignore[no-untyped-def]
    """Re-insert every live row into a fresh (all -1) index after the table grew."""
    mask = np.int64(idx_row.shape[0] - 1)
    for row in range(keys.shape[0]):
        if u8[row, B_LIVE]:
            h = flow_hash(
                keys[row, K_A_HI],
                keys[row, K_A_LO],
                keys[row, K_B_HI],
                keys[row, K_B_LO],
                keys[row, K_META],
            )
            _index_insert(idx_row, idx_tag, mask, np.uint32(h & np.uint64(0xFFFFFFFF)), row)


@runtime_kernel
def select_top(i64, u8, n, out_rows):  # type: ignore[no-untyped-def]
    """Rows of the ``n`` live flows with the largest positive byte delta, unordered.

    One pass over the table keeping the current best ``n`` (O(F) for small n):
    no full sort. Returns how many rows were written to ``out_rows``.
    """
    best_val = np.zeros(n, dtype=np.int64)
    filled = 0
    min_pos = 0
    for row in range(i64.shape[0]):
        if u8[row, B_LIVE] == 0:
            continue
        v = i64[row, I_DELTA_BYTES]
        if v <= 0:
            continue
        if filled < n:
            out_rows[filled] = row
            best_val[filled] = v
            filled += 1
            if filled == n:
                min_pos = 0
                for k in range(1, n):
                    if best_val[k] < best_val[min_pos]:
                        min_pos = k
        elif v > best_val[min_pos]:
            out_rows[min_pos] = row
            best_val[min_pos] = v
            min_pos = 0
            for k in range(1, n):
                if best_val[k] < best_val[min_pos]:
                    min_pos = k
    return filled


@kernel
def insert_synthetic(  # type: ignore[no-untyped-def]
    n,
    seed,
    keys,
    i64,
    u8,
    links,
    idx_row,
    idx_tag,
    free_rows,
    g,
):
    """Insert ``n`` distinct synthetic IPv4 UDP flows (scale-mode benchmark)."""
    mask = np.int64(idx_row.shape[0] - 1)
    for k in range(n):
        x = np.uint64(k) + np.uint64(seed) * _GOLD
        a = np.uint64(0x0A000000) | (x & np.uint64(0xFFFFFF))
        b = np.uint64(0xC0A80000) | ((x >> np.uint64(24)) & np.uint64(0xFFFF))
        meta = (
            (np.uint64(1024 + (k % 50000)) << np.uint64(48))
            | (np.uint64(53) << np.uint64(32))
            | (np.uint64(IPPROTO_UDP) << np.uint64(8))
            | np.uint64(4)
        )
        h = flow_hash(np.uint64(0), a, np.uint64(0), b, meta)
        tag = np.uint32(h & np.uint64(0xFFFFFFFF))
        row = _find(keys, idx_row, idx_tag, mask, tag, np.uint64(0), a, np.uint64(0), b, meta)
        if row >= 0 or g[G_FREE_TOP] == 0:
            continue
        g[G_FREE_TOP] -= 1
        row = free_rows[g[G_FREE_TOP]]
        keys[row, K_A_HI] = 0
        keys[row, K_A_LO] = a
        keys[row, K_B_HI] = 0
        keys[row, K_B_LO] = b
        keys[row, K_META] = meta
        i64[row, :] = 0
        i64[row, I_FIRST_NS] = k
        i64[row, I_LAST_NS] = k
        i64[row, I_PKTS_AB] = 1
        i64[row, I_BYTES_AB] = 64
        u8[row, :] = 0
        u8[row, B_LIVE] = 1
        _index_insert(idx_row, idx_tag, mask, tag, row)
        list_append(links, L_PREV, L_NEXT, g, G_LRU_HEAD, G_LRU_TAIL, row)
        g[G_ACTIVE] += 1
        g[G_TOTAL_CREATED] += 1
    return g[G_ACTIVE]

"""Zeek connection kernel: per-connection state for a Zeek-compatible conn.log.

This is a second, separate table (only allocated when a conn.log export is requested),
not extra columns on the flow table, because Zeek's notion of a connection differs from
the flow table's (SPEC §6) in ways that would change the existing flow figures:

- Zeek splits a reused 4-tuple into separate connections (a new SYN after a close/reset,
  a connection attempt unanswered for ``tcp_attempt_delay``, a closed connection kept for
  ``tcp_close_delay``), and it has its own per-protocol inactivity timeouts;
- it tracks ICMP "connections" (ports = ICMP type and its counterpart or code);
- its originator is the side Zeek picks (first sender, flipped by its port heuristic or a
  SYN/SYN-ACK reversal), not the flow table's canonical endpoint A.

The flow table's kernel is therefore untouched, and the default path pays nothing. The
layout follows the flow table: open-addressing index (``flowtable._find`` & co.) over
row-stable numpy matrices. Per direction ``d`` (0 = canonical endpoint A sent, 1 = B)
each row keeps the Zeek TCP endpoint state, start/last/ack sequence positions (int64,
relative to the start sequence, so wrap-around is handled), the history letters seen, and
IP/payload byte and packet counts. A finished connection is copied into the ``out_*``
buffer with its payload sizes and ``conn_state`` computed; Python drains that buffer into
the conn.log writer.
"""

from __future__ import annotations

import numpy as np

from netscope.constants import (
    ERR_OK,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    L3_IPV4,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
)
from netscope.kernels._jit import inline_helper, kernel
from netscope.kernels.flowtable import _find, _index_delete, _index_insert, flow_hash

# ---- int64 columns (zi); "+ d" columns come in an A/B pair ----
# The columns every packet touches come first (3 cache lines of a 5-line, 64-byte
# aligned row); event-only ones (history bookkeeping, counters) after them.
Z_FIRST = 0
Z_LAST = 1
Z_CLOSE_AT = 2  # close/reset/partial-close removal time (ns), I64 max = none
Z_ATTEMPT_AT = 3  # tcp_attempt_delay check time (ns)
Z_PKTS = 4  # + d
Z_IPB = 6  # + d
Z_LAST_REL = 8  # + d: highest sequence end sent, relative to the start sequence
Z_ACK_REL = 10  # + d: highest ACK the peer sent for d's data (relative)
Z_HSEEN = 12  # + d: history letters already recorded (HB_* bits)
Z_ACKMISS = 14  # + d: relative position up to which acked-but-unseen data was counted
Z_HOLE_S = 16  # + d: pending gap in d's data (relative), empty when S >= E
Z_HOLE_E = 18  # + d
Z_START = 20  # + d: start sequence (a uint32 value)
Z_MISSED = 22  # + d
Z_PAY = 24  # + d: UDP/ICMP payload bytes
Z_HLS = 26  # + d: relative seq of the last SYN recorded in the history
Z_HLF = 28  # + d
Z_HLR = 30  # + d
Z_RX_CNT = 32  # + d: retransmissions (scaled 'T' letters)
Z_RX_THR = 34  # + d
Z_W0_CNT = 36  # + d: zero windows (scaled 'W' letters)
Z_W0_THR = 38  # + d
ZI_WIDTH = 40  # 320 bytes: rows start on a cache line

# ---- uint8 columns (zb) ----
ZB_LIVE = 0
ZB_ORIG = 1  # canonical side that is Zeek's originator (0 = A, 1 = B)
ZB_STATE = 2  # + d: EP_* endpoint state
ZB_PREV = 4  # + d: previous endpoint state
ZB_FIN = 6  # + d: FIN packets seen (capped)
ZB_CLOSED = 8  # some endpoint closed or reset (Zeek's IsClosed)
ZB_HLEN = 9  # history letters stored
ZB_WIDTH = 10

HIST_MAX = 48  # history letters kept per connection (Zeek keeps all; long ones are cut)

# TCP endpoint states (Zeek's TCP_ENDPOINT_*); UDP/ICMP use INACTIVE / ACTIVE (= PARTIAL)
EP_INACTIVE = 0
EP_SYN_SENT = 1
EP_SYN_ACK_SENT = 2
EP_PARTIAL = 3
EP_ESTABLISHED = 4
EP_CLOSED = 5
EP_RESET = 6

# history letter bits (per direction)
HB_SYN = 1  # S or H (one bit, as in Zeek)
HB_ACK = 2
HB_DATA = 4
HB_FIN = 8
HB_RST = 16
HB_FINRST = 32  # I
HB_MULTI = 64  # Q
HB_GAP = 128  # G

# conn_state codes (index into CONN_STATES)
CONN_STATES = (
    "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH",
)  # fmt: skip
CS_S0, CS_S1, CS_SF, CS_REJ, CS_S2, CS_S3 = 0, 1, 2, 3, 4, 5
CS_RSTO, CS_RSTR, CS_RSTOS0, CS_RSTRH, CS_SH, CS_SHR, CS_OTH = 6, 7, 8, 9, 10, 11, 12

# ---- output buffer extra columns (out_x int64) ----
X_BYTES = 0  # + d: payload bytes of side d (Zeek's endpoint size)
X_STATE = 2  # conn_state code
X_WIDTH = 3

# ---- globals (g) and parameters (p) ----
G_ACTIVE = 0
G_FREE_TOP = 1
G_OUT = 2  # finished connections waiting in the out buffer
G_NEXT_SWEEP = 3
G_CREATED = 4
G_WIDTH = 5

P_TCP_TIMEOUT = 0  # ns; Zeek: tcp_inactivity_timeout 5 min
P_UDP_TIMEOUT = 1  # udp_inactivity_timeout 1 min
P_ICMP_TIMEOUT = 2  # icmp_inactivity_timeout 1 min
P_ATTEMPT = 3  # tcp_attempt_delay 5 s
P_CLOSE = 4  # tcp_close_delay 5 s (and tcp_reset_delay 5 s)
P_PARTIAL_CLOSE = 5  # tcp_partial_close_delay 3 s
P_WIDTH = 6

ST_DONE = 0
ST_OUT_FULL = 1  # drain the out buffer, then call again from the returned index
ST_GROW = 2  # no free row: grow the table, then call again

SWEEP_EVERY_NS = 1_000_000_000
TOO_LARGE_SEQ_DELTA = 1048576  # Zeek's bound on believable SYN/RST sequence jumps
TSO_MIN_LEN = 1500  # an IP datagram longer than this was possibly segmentation-offloaded
NO_TIME = np.int64(np.iinfo(np.int64).max)

# ICMP request → reply type pairs (Zeek's ICMP4/6_counterpart); -1 = one-way type
ICMP4_PAIR = np.full(256, -1, dtype=np.int16)
for _a, _b in ((8, 0), (13, 14), (15, 16), (10, 9), (17, 18)):
    ICMP4_PAIR[_a] = _b
    ICMP4_PAIR[_b] = _a
ICMP6_PAIR = np.full(256, -1, dtype=np.int16)
for _a, _b in ((128, 129), (133, 134), (135, 136), (130, 131), (139, 140), (144, 145)):
    ICMP6_PAIR[_a] = _b
    ICMP6_PAIR[_b] = _a


@inline_helper
def _rel(start, pos_rel, value):  # type: ignore[no-untyped-def]
    """``value`` (a 32-bit sequence number) relative to ``start``, unwrapped near the
    known relative position ``pos_rel``."""
    base = np.uint32(np.uint32(start) + np.uint32(pos_rel & 0xFFFFFFFF))
    return pos_rel + np.int64(np.int32(np.uint32(value) - base))


@inline_helper
def _add_letter(zb, hist, row, code, is_orig):  # type: ignore[no-untyped-def]
    n = zb[row, ZB_HLEN]
    if n < HIST_MAX:
        hist[row, n] = code if is_orig else code + 32  # lower case for the responder
        zb[row, ZB_HLEN] = n + 1


@inline_helper
def _check_letter(zi, zb, hist, row, d, bit, code, is_orig):  # type: ignore[no-untyped-def]
    """Zeek's CheckHistory: record the letter the first time; True if already seen."""
    seen = zi[row, Z_HSEEN + d]
    if seen & bit:
        return True
    zi[row, Z_HSEEN + d] = seen | bit
    _add_letter(zb, hist, row, code, is_orig)
    return False


@inline_helper
def _scaled_letter(zi, zb, hist, row, cnt_col, thr_col, code, is_orig):  # type: ignore[no-untyped-def]
    """Zeek's ScaledHistoryEntry: the letter again at the 1st, 10th, 100th, ... event."""
    c = zi[row, cnt_col] + 1
    zi[row, cnt_col] = c
    thr = zi[row, thr_col]
    if thr == 0:
        thr = 1
    if c == thr:
        _add_letter(zb, hist, row, code, is_orig)
        zi[row, thr_col] = thr * 10
    else:
        zi[row, thr_col] = thr


@inline_helper
def _endpoint_size(zi, zb, row, d):  # type: ignore[no-untyped-def]
    """Zeek's TCP_Endpoint::Size: payload bytes from sequence numbers (SYN/FIN excluded)."""
    st = zb[row, ZB_STATE + d]
    if st == EP_INACTIVE:
        return np.int64(0)
    if (
        zb[row, ZB_PREV + d] == EP_SYN_SENT
        and st == EP_RESET
        and zb[row, ZB_STATE + 1 - d] == EP_INACTIVE
    ):
        return np.int64(0)  # a rejected half-open connection
    last = zi[row, Z_LAST_REL + d]
    acked = zi[row, Z_ACK_REL + d]
    size = last if last > acked else acked
    if size > 0:
        size -= 1
    if zb[row, ZB_FIN + d] > 0 and size > 0:
        size -= 1
    return size


@inline_helper
def _rstos0_history(zb, hist, row):  # type: ignore[no-untyped-def]
    """History matches Zeek's /^\\^?S[^HAFGIQ]*R.*/ (an originator SYN, then its RST)."""
    n = zb[row, ZB_HLEN]
    k = 0
    if k < n and hist[row, k] == 94:  # '^'
        k += 1
    if k >= n or hist[row, k] != 83:  # 'S'
        return False
    k += 1
    while k < n:
        c = hist[row, k]
        if c == 82:  # 'R'
            return True
        if c == 72 or c == 65 or c == 70 or c == 71 or c == 73 or c == 81:  # H A F G I Q
            return False
        k += 1
    return False


@inline_helper
def _conn_state(zb, hist, row, proto):  # type: ignore[no-untyped-def]
    """Zeek's conn_state() from the endpoint states (base/protocols/conn/main.zeek).

    The one case that needs payload sizes (both sides reset, nothing sent: REJ) is
    decided by the caller, ``_finish``."""
    o = zb[row, ZB_ORIG]
    os_ = zb[row, ZB_STATE + o]
    rs = zb[row, ZB_STATE + 1 - o]
    if proto == IPPROTO_UDP:
        if os_ != EP_INACTIVE:
            return CS_SF if rs != EP_INACTIVE else CS_S0
        return CS_SHR if rs != EP_INACTIVE else CS_OTH
    if proto != IPPROTO_TCP:
        return CS_OTH
    o_inactive = os_ == EP_INACTIVE or os_ == EP_PARTIAL
    r_inactive = rs == EP_INACTIVE or rs == EP_PARTIAL
    if rs == EP_RESET:
        if os_ == EP_SYN_SENT or os_ == EP_SYN_ACK_SENT:
            return CS_REJ
        if o_inactive:
            return CS_RSTRH
        return CS_RSTR
    if os_ == EP_RESET:
        if r_inactive:
            if _rstos0_history(zb, hist, row):
                return CS_RSTOS0
            return CS_OTH
        return CS_RSTO
    if rs == EP_CLOSED and os_ == EP_CLOSED:
        return CS_SF
    if os_ == EP_CLOSED:
        return CS_SH if r_inactive else CS_S2
    if rs == EP_CLOSED:
        return CS_SHR if o_inactive else CS_S3
    if os_ == EP_SYN_SENT and rs == EP_INACTIVE:
        return CS_S0
    if os_ == EP_ESTABLISHED and rs == EP_ESTABLISHED:
        return CS_S1
    return CS_OTH


@inline_helper
def _finish(  # type: ignore[no-untyped-def]
    keys, zi, zb, hist, idx_row, idx_tag, mask, free_rows, g,
    out_keys, out_i, out_b, out_hist, out_x, row,
):  # fmt: skip
    """Copy ``row`` to the out buffer (sizes and conn_state computed) and free it."""
    k = g[G_OUT]
    for c in range(keys.shape[1]):
        out_keys[k, c] = keys[row, c]
    for d in range(2):
        # a pending gap that was never filled is missed data
        hs = zi[row, Z_HOLE_S + d]
        he = zi[row, Z_HOLE_E + d]
        if he > hs:
            zi[row, Z_MISSED + d] += he - hs
            zi[row, Z_HOLE_E + d] = hs
    for c in range(zi.shape[1]):
        out_i[k, c] = zi[row, c]
    for c in range(zb.shape[1]):
        out_b[k, c] = zb[row, c]
    for c in range(hist.shape[1]):
        out_hist[k, c] = hist[row, c]
    proto = (keys[row, 4] >> np.uint64(8)) & np.uint64(0xFF)
    if proto == IPPROTO_TCP:
        s0 = _endpoint_size(zi, zb, row, 0)
        s1 = _endpoint_size(zi, zb, row, 1)
    else:
        s0 = zi[row, Z_PAY]
        s1 = zi[row, Z_PAY + 1]
    out_x[k, X_BYTES] = s0
    out_x[k, X_BYTES + 1] = s1
    cs = _conn_state(zb, hist, row, proto)
    o = zb[row, ZB_ORIG]
    if (
        proto == IPPROTO_TCP
        and zb[row, ZB_STATE + 1 - o] == EP_RESET
        and zb[row, ZB_STATE + o] == EP_RESET
        and s0 == 0
        and s1 == 0
    ):
        cs = CS_REJ
    out_x[k, X_STATE] = cs
    g[G_OUT] = k + 1
    _index_delete(keys, idx_row, idx_tag, mask, row)
    zb[row, ZB_LIVE] = 0
    free_rows[g[G_FREE_TOP]] = row
    g[G_FREE_TOP] += 1
    g[G_ACTIVE] -= 1


@inline_helper
def _expired(zi, zb, p, row, proto, ts):  # type: ignore[no-untyped-def]
    """Would Zeek have removed this connection by packet time ``ts`` (its timers)?"""
    if ts >= zi[row, Z_CLOSE_AT]:
        return True
    if proto == IPPROTO_TCP:
        timeout = p[P_TCP_TIMEOUT]
        if ts >= zi[row, Z_ATTEMPT_AT]:
            o = zb[row, ZB_ORIG]
            os_ = zb[row, ZB_STATE + o]
            if (os_ == EP_SYN_SENT or os_ == EP_SYN_ACK_SENT) and zb[
                row, ZB_STATE + 1 - o
            ] == EP_INACTIVE:
                return True
    elif proto == IPPROTO_UDP:
        timeout = p[P_UDP_TIMEOUT]
    else:
        timeout = p[P_ICMP_TIMEOUT]
    return timeout > 0 and ts - zi[row, Z_LAST] >= timeout


@kernel
def sweep(  # type: ignore[no-untyped-def]
    now, keys, zi, zb, hist, idx_row, idx_tag, free_rows, g, p,
    out_keys, out_i, out_b, out_hist, out_x, flush_all,
):  # fmt: skip
    """Finish every connection whose timers ran out by ``now`` (all when ``flush_all``).

    Returns ST_OUT_FULL when the out buffer filled first (drain, then sweep again)."""
    mask = np.int64(idx_row.shape[0] - 1)
    cap = out_x.shape[0]
    for row in range(keys.shape[0]):
        if zb[row, ZB_LIVE] == 0:
            continue
        proto = (keys[row, 4] >> np.uint64(8)) & np.uint64(0xFF)
        if flush_all or _expired(zi, zb, p, row, proto, now):
            if g[G_OUT] >= cap:
                return ST_OUT_FULL
            _finish(
                keys, zi, zb, hist, idx_row, idx_tag, mask, free_rows, g,
                out_keys, out_i, out_b, out_hist, out_x, row,
            )  # fmt: skip
    return ST_DONE


@kernel
def observe(  # type: ignore[no-untyped-def]
    start, count, buf, offsets, caplens, ts_ns, err, l3, l3_off, src_hi, src_lo, dst_hi,
    dst_lo, proto, l4_off, sport, dport, tcp_flags, seq, ack, win, icmp_type, icmp_code,
    payload_off, payload_len,
    keys, zi, zb, hist, idx_row, idx_tag, free_rows, g, p, likely_port,
    icmp4_pair, icmp6_pair, out_keys, out_i, out_b, out_hist, out_x,
):  # fmt: skip
    """Fold packets ``[start, count)`` into the Zeek connection table.

    Returns ``(i, status)``; every early return happens before packet ``i`` changed
    anything, so the caller resumes exactly at ``i``."""
    mask = np.int64(idx_row.shape[0] - 1)
    cap = out_x.shape[0]
    for i in range(start, count):
        ts = ts_ns[i]
        if ts >= g[G_NEXT_SWEEP]:
            st = sweep(
                ts, keys, zi, zb, hist, idx_row, idx_tag, free_rows, g, p,
                out_keys, out_i, out_b, out_hist, out_x, False,
            )  # fmt: skip
            if st != ST_DONE:
                return i, st
            g[G_NEXT_SWEEP] = ts + SWEEP_EVERY_NS
        pr = proto[i]
        if err[i] != ERR_OK or l3[i] == 0 or l4_off[i] < 0 or payload_off[i] < 0:
            continue
        is_tcp = pr == IPPROTO_TCP
        if pr == IPPROTO_TCP or pr == IPPROTO_UDP:
            sp = np.uint64(sport[i])
            dp = np.uint64(dport[i])
        elif pr == IPPROTO_ICMP or pr == IPPROTO_ICMPV6:
            t = icmp_type[i]
            pair = icmp4_pair[t] if pr == IPPROTO_ICMP else icmp6_pair[t]
            sp = np.uint64(t)
            dp = np.uint64(pair) if pair >= 0 else np.uint64(icmp_code[i])
        else:
            continue
        shi = src_hi[i]
        slo = src_lo[i]
        dhi = dst_hi[i]
        dlo = dst_lo[i]
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
        tag = np.uint32(flow_hash(k0, k1, k2, k3, k4) & np.uint64(0xFFFFFFFF))
        row = _find(keys, idx_row, idx_tag, mask, tag, k0, k1, k2, k3, k4)
        flags = np.int64(tcp_flags[i]) if is_tcp else np.int64(0)
        syn = (flags & TCP_SYN) != 0
        ackf = (flags & TCP_ACK) != 0
        fin = (flags & TCP_FIN) != 0
        rst = (flags & TCP_RST) != 0
        sq = np.uint32(seq[i])

        # ---- does this packet end the connection in the row (timers, reuse)? ----
        if row >= 0:
            done = _expired(zi, zb, p, row, pr, ts)
            if not done and is_tcp and syn:
                # Zeek's TCP IsReuse: a new initial SYN on a closed connection
                o = zb[row, ZB_ORIG]
                conn_orig = o
                reuse = True
                if ackf:
                    if zb[row, ZB_STATE + o] != EP_INACTIVE:
                        reuse = False
                    conn_orig = 1 - o
                if reuse and zb[row, ZB_CLOSED] == 0:
                    reuse = False
                rejected = (
                    zb[row, ZB_STATE + 1 - o] == EP_RESET and zb[row, ZB_STATE + o] == EP_SYN_SENT
                )
                if reuse and sq == np.uint32(zi[row, Z_START + conn_orig]) and not rejected:
                    # (a SYN retried after a reject is a new connection for Zeek even
                    # with the same initial sequence number)
                    reuse = False
                if (
                    reuse
                    and not ackf
                    and zb[row, ZB_STATE + conn_orig] == EP_SYN_ACK_SENT
                    and zb[row, ZB_STATE + 1 - o] == EP_INACTIVE
                    and sq == np.uint32(zi[row, Z_START + 1 - o])
                ):
                    reuse = False
                done = reuse
            if done:
                if g[G_OUT] >= cap:
                    return i, ST_OUT_FULL
                _finish(
                    keys, zi, zb, hist, idx_row, idx_tag, mask, free_rows, g,
                    out_keys, out_i, out_b, out_hist, out_x, row,
                )  # fmt: skip
                row = -1
        if row < 0:
            if g[G_FREE_TOP] == 0:
                return i, ST_GROW
            g[G_FREE_TOP] -= 1
            row = free_rows[g[G_FREE_TOP]]
            keys[row, 0] = k0
            keys[row, 1] = k1
            keys[row, 2] = k2
            keys[row, 3] = k3
            keys[row, 4] = k4
            for c in range(zi.shape[1]):
                zi[row, c] = 0
            for c in range(zb.shape[1]):
                zb[row, c] = 0
            for c in range(hist.shape[1]):
                hist[row, c] = 0  # readers take the letters up to the first NUL
            zi[row, Z_FIRST] = ts
            zi[row, Z_LAST] = ts
            zi[row, Z_CLOSE_AT] = NO_TIME
            zi[row, Z_ATTEMPT_AT] = NO_TIME
            zb[row, ZB_LIVE] = 1
            # Zeek's originator: the first sender, unless its port heuristic flips it
            # (likely_server_ports; a SYN-ACK or mid-stream packet from a server port)
            flip = False
            if is_tcp:
                if (not syn) or ackf:
                    if likely_port[sport[i]]:
                        if likely_port[dport[i]]:
                            flip = (not syn) and sport[i] < dport[i]
                        else:
                            flip = True
            elif pr == IPPROTO_UDP:
                flip = likely_port[sport[i]] != 0 and likely_port[dport[i]] == 0
            zb[row, ZB_ORIG] = 1 - d if flip else d
            if flip:
                _add_letter(zb, hist, row, 94, True)  # '^'
            _index_insert(idx_row, idx_tag, mask, tag, row)
            g[G_ACTIVE] += 1
            g[G_CREATED] += 1

        # ---- counts every protocol shares ----
        # Zeek stops moving a TCP connection's last time once both endpoints have
        # closed or reset (later packets still count)
        ended = is_tcp and zb[row, ZB_STATE] >= EP_CLOSED and zb[row, ZB_STATE + 1] >= EP_CLOSED
        if ts > zi[row, Z_LAST]:
            if not ended:
                zi[row, Z_LAST] = ts
        elif ts < zi[row, Z_FIRST]:
            zi[row, Z_FIRST] = ts
        plen = np.int64(payload_len[i])
        # IP bytes as Zeek counts them: the header's length field (IPv4 total length,
        # IPv6 payload length + 40). The decoder's lengths equal it except when the field
        # is 0 (a TSO capture: the decoder then trusts the captured length), which only a
        # datagram above the MTU reaching the capture's end can be; only those re-read the
        # field, so the packet bytes (long out of cache on big batches) are rarely touched.
        iplen = np.int64(payload_off[i] - l3_off[i]) + plen
        if iplen > TSO_MIN_LEN and l3_off[i] + iplen == caplens[i]:
            ip_at = offsets[i] + l3_off[i]
            if l3[i] == L3_IPV4:
                iplen = (np.int64(buf[ip_at + 2]) << 8) | np.int64(buf[ip_at + 3])
            else:
                iplen = ((np.int64(buf[ip_at + 4]) << 8) | np.int64(buf[ip_at + 5])) + 40
        zi[row, Z_PKTS + d] += 1
        zi[row, Z_IPB + d] += iplen
        is_orig = zb[row, ZB_ORIG] == d
        peer = 1 - d
        if not is_tcp:
            zi[row, Z_PAY + d] += plen
            if zb[row, ZB_STATE + d] == EP_INACTIVE:
                zb[row, ZB_STATE + d] = EP_PARTIAL  # UDP_ACTIVE / ICMP active
            if pr == IPPROTO_UDP:
                _check_letter(zi, zb, hist, row, d, HB_DATA, 68, is_orig)  # D
            continue

        # ---- TCP: Zeek's init_endpoint ----
        seglen = plen + (1 if syn else 0) + (1 if fin else 0)
        st = zb[row, ZB_STATE + d]
        if st == EP_INACTIVE:
            if syn:
                zi[row, Z_START + d] = np.int64(sq)
                zi[row, Z_LAST_REL + d] = seglen
            else:
                # a partial connection: number as though a SYN preceded this packet
                zi[row, Z_START + d] = np.int64(np.uint32(sq - np.uint32(1)))
                zi[row, Z_LAST_REL + d] = 1
            zi[row, Z_ACK_REL + d] = 0
            zi[row, Z_ACKMISS + d] = 0
        elif syn and st != EP_CLOSED and sq != np.uint32(zi[row, Z_START + d]):
            zi[row, Z_START + d] = np.int64(sq)  # SYN_seq_jump: a new start
            zi[row, Z_LAST_REL + d] = seglen
            zi[row, Z_ACK_REL + d] = 0
            zi[row, Z_ACKMISS + d] = 0
            zi[row, Z_HOLE_E + d] = zi[row, Z_HOLE_S + d]
        start_seq = np.uint32(zi[row, Z_START + d])
        last_rel = zi[row, Z_LAST_REL + d]
        rel_seq = _rel(start_seq, last_rel, sq)

        # ---- history letters (Zeek's update_history) ----
        nflag = (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0)
        if nflag > 1:
            if fin and rst:
                _check_letter(zi, zb, hist, row, d, HB_FINRST, 73, is_orig)  # I
            else:
                _check_letter(zi, zb, hist, row, d, HB_MULTI, 81, is_orig)  # Q
        elif nflag == 1:
            if syn:
                code = 72 if ackf else 83  # H / S
                if (
                    _check_letter(zi, zb, hist, row, d, HB_SYN, code, is_orig)
                    and rel_seq != zi[row, Z_HLS + d]
                ):
                    _add_letter(zb, hist, row, code, is_orig)
                zi[row, Z_HLS + d] = rel_seq
            if fin:
                if (
                    _check_letter(zi, zb, hist, row, d, HB_FIN, 70, is_orig)
                    and rel_seq + plen != zi[row, Z_HLF + d]
                ):
                    _add_letter(zb, hist, row, 70, is_orig)
                zi[row, Z_HLF + d] = rel_seq + plen
            if rst:
                if (
                    _check_letter(zi, zb, hist, row, d, HB_RST, 82, is_orig)
                    and rel_seq != zi[row, Z_HLR + d]
                ):
                    _add_letter(zb, hist, row, 82, is_orig)
                zi[row, Z_HLR + d] = rel_seq
        elif plen > 0:
            _check_letter(zi, zb, hist, row, d, HB_DATA, 68, is_orig)  # D
        elif ackf:
            _check_letter(zi, zb, hist, row, d, HB_ACK, 65, is_orig)  # A

        # ---- zero window (Zeek's update_window) ----
        if win[i] == 0 and not syn and not fin and not rst and st != EP_CLOSED and st != EP_RESET:
            _scaled_letter(zi, zb, hist, row, Z_W0_CNT + d, Z_W0_THR + d, 87, is_orig)  # W

        # ---- highest sequence sent, retransmissions, gaps (Zeek's update_last_seq) ----
        end_rel = rel_seq + seglen
        delta_last = end_rel - last_rel
        if (syn or rst) and (delta_last > TOO_LARGE_SEQ_DELTA or delta_last < -TOO_LARGE_SEQ_DELTA):
            pass
        elif fin and last_rel == 1:
            zi[row, Z_LAST_REL + d] = end_rel
        elif st == EP_RESET:
            pass
        elif delta_last > 0:
            if plen > 0 and rel_seq > last_rel:
                # data beyond the highest byte seen: a hole, missed unless filled later
                hs = zi[row, Z_HOLE_S + d]
                he = zi[row, Z_HOLE_E + d]
                if he > hs:  # an older hole is still open: it stays missed
                    zi[row, Z_MISSED + d] += he - hs
                    _check_letter(zi, zb, hist, row, d, HB_GAP, 71, is_orig)  # G
                zi[row, Z_HOLE_S + d] = last_rel
                zi[row, Z_HOLE_E + d] = rel_seq
            zi[row, Z_LAST_REL + d] = end_rel
        elif plen > 0:
            hs = zi[row, Z_HOLE_S + d]
            he = zi[row, Z_HOLE_E + d]
            if he > hs and rel_seq < he and end_rel > hs:
                # fills (part of) the open hole
                if rel_seq <= hs:
                    zi[row, Z_HOLE_S + d] = end_rel if end_rel < he else he
                elif end_rel >= he:
                    zi[row, Z_HOLE_E + d] = rel_seq
            # Zeek counts any data at or below the highest sequence sent as a
            # retransmission, hole fills included
            _scaled_letter(zi, zb, hist, row, Z_RX_CNT + d, Z_RX_THR + d, 84, is_orig)  # T

        # ---- the peer's view of acknowledged data (Zeek's update_ack_seq) ----
        pst = zb[row, ZB_STATE + peer]
        if ackf and pst != EP_INACTIVE:
            a_rel = _rel(
                np.uint32(zi[row, Z_START + peer]), zi[row, Z_ACK_REL + peer], np.uint32(ack[i])
            )
            delta_ack = a_rel - zi[row, Z_ACK_REL + peer]
            if not (np.uint32(ack[i]) == 0 and delta_ack > TOO_LARGE_SEQ_DELTA) and delta_ack > 0:
                zi[row, Z_ACK_REL + peer] = a_rel
                peer_orig = not is_orig
                hs = zi[row, Z_HOLE_S + peer]
                he = zi[row, Z_HOLE_E + peer]
                if he > hs and a_rel >= he:
                    # the hole was acknowledged: the data is gone for good
                    zi[row, Z_MISSED + peer] += he - hs
                    zi[row, Z_HOLE_E + peer] = hs
                    _check_letter(zi, zb, hist, row, peer, HB_GAP, 71, peer_orig)
                seen = zi[row, Z_LAST_REL + peer]
                counted = zi[row, Z_ACKMISS + peer]
                lo = seen if seen > counted else counted
                if a_rel > lo and zb[row, ZB_STATE + peer] != EP_RESET:
                    # acknowledged data that never passed the capture point
                    zi[row, Z_MISSED + peer] += a_rel - lo
                    zi[row, Z_ACKMISS + peer] = a_rel
                    _check_letter(zi, zb, hist, row, peer, HB_GAP, 71, peer_orig)

        # ---- Zeek's TCP endpoint state machine ----
        new_st = st
        closing = False
        if fin and zb[row, ZB_FIN + d] < 255:
            zb[row, ZB_FIN + d] += 1
        if st == EP_INACTIVE:
            if syn:
                if is_orig:
                    new_st = EP_SYN_ACK_SENT if ackf else EP_SYN_SENT
                    if zi[row, Z_ATTEMPT_AT] == NO_TIME:
                        zi[row, Z_ATTEMPT_AT] = ts + p[P_ATTEMPT]
                else:
                    if not ackf and pst == EP_SYN_ACK_SENT:
                        # SYN/SYN-ACK reversal: the SYN's sender is the real originator
                        zb[row, ZB_ORIG] = d
                        _add_letter(zb, hist, row, 94, True)  # '^'
                        is_orig = True
                        zb[row, ZB_PREV + peer] = pst
                        zb[row, ZB_STATE + peer] = EP_ESTABLISHED
                        pst = EP_ESTABLISHED
                    if pst == EP_SYN_SENT:
                        zb[row, ZB_PREV + peer] = pst
                        zb[row, ZB_STATE + peer] = EP_ESTABLISHED
                        pst = EP_ESTABLISHED
                    new_st = EP_ESTABLISHED
            if fin:
                new_st = EP_CLOSED
                closing = True
            if rst:
                new_st = EP_RESET
            if new_st == EP_INACTIVE:
                new_st = EP_PARTIAL
        elif st == EP_SYN_SENT or st == EP_SYN_ACK_SENT:
            if fin:
                new_st = EP_CLOSED
                closing = True
            if rst:
                new_st = EP_RESET
        elif st == EP_ESTABLISHED or st == EP_PARTIAL:
            if syn and st == EP_PARTIAL and pst == EP_INACTIVE and not ackf:
                new_st = EP_SYN_SENT
            if fin and not rst:
                new_st = EP_CLOSED
                closing = True
            if rst:
                new_st = EP_RESET
        elif st == EP_CLOSED:
            if rst:
                new_st = EP_RESET
        if new_st != st:
            zb[row, ZB_PREV + d] = st
            zb[row, ZB_STATE + d] = new_st
        # ---- removal timers (Zeek's tcp_close_delay / tcp_reset_delay / partial close) ----
        when = NO_TIME
        if new_st == EP_RESET and st != EP_RESET:
            zb[row, ZB_CLOSED] = 1
            when = ts + p[P_CLOSE]
        elif closing and new_st == EP_CLOSED and st != EP_CLOSED:
            zb[row, ZB_CLOSED] = 1
            if pst == EP_CLOSED or pst == EP_RESET:
                when = ts + p[P_CLOSE]
            elif pst == EP_INACTIVE:
                when = ts + p[P_PARTIAL_CLOSE]
        elif new_st == EP_CLOSED and (pst == EP_CLOSED or pst == EP_RESET):
            when = ts + p[P_CLOSE]
        if when < zi[row, Z_CLOSE_AT]:
            zi[row, Z_CLOSE_AT] = when
    return count, ST_DONE


@kernel
def rebuild_index(keys, zb, idx_row, idx_tag):  # type: ignore[no-untyped-def]
    """Re-insert every live row into a fresh (all -1) index after the table grew."""
    mask = np.int64(idx_row.shape[0] - 1)
    for row in range(keys.shape[0]):
        if zb[row, ZB_LIVE]:
            h = flow_hash(keys[row, 0], keys[row, 1], keys[row, 2], keys[row, 3], keys[row, 4])
            _index_insert(idx_row, idx_tag, mask, np.uint32(h & np.uint64(0xFFFFFFFF)), row)

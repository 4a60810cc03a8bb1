"""Anomaly-detector kernels: exact sliding windows for SYN floods and port scans.

The Python side (``netscope.anomaly.detector``) allocates every array below and turns the
alert buffer into alert objects; this module only does arithmetic over plain arrays.

Events (SPEC §6, refined in docs/anomaly-detection.md): a packet counts only when it
decoded (``err == 0``), is IPv4/IPv6, is not a non-initial fragment, has a transport header,
and is either a TCP segment with SYN set and ACK clear, or a UDP datagram that is not a
service's reply (source port < 1024 and destination port >= 1024). SYN flood uses the TCP
ones, port scan both.

Time. ``now`` is the largest packet timestamp seen so far (a timestamp that goes backwards
counts as ``now``), so every queue below stays sorted. An event at ``ts`` is inside the
window at time ``now`` iff ``now - window < ts <= now``. A key's counts are brought up to
date before its condition is evaluated, so alerts see the exact window.

SYN flood, key = (ip version, dst ip, dst port). Every SYN goes onto a FIFO ring
(``q_ts``/``q_key``/``q_mem``) and into its key's count; its source is a member row
(key row, src) whose reference count is the number of its SYNs in the window. Popping the
FIFO head (before each event) decrements both, so ``count`` and ``sources`` are exact.
Members <= FIFO entries <= capacity. When the FIFO is full the oldest SYN is forgotten
early (``G_SF_FORGOTTEN``): the window then holds the newest ``capacity`` SYNs.

Port scan, key = (ip version, src ip); distinct dst ports and dst hosts. Built so that a
source seen once (every spoofed SYN of a flood) costs one key insert and, later, one key
delete: each key row holds its first port and first host inline, with their last-seen
times, and expires them lazily when the key is next touched. Further ports/hosts are member
rows (key, kind, value) on one global LRU list by last-seen, expired eagerly from its head
before each event. Keys are on their own LRU list by last event; a key whose last event
left the window has nothing left in it and is freed. Full member table: the LRU member is
forgotten early; full key table: the least recently active source is forgotten early (both
``G_PS_FORGOTTEN``). A freed key row gets a new generation, which orphans any member rows
it still had (their key word carries the generation), so they are reclaimed without a walk.

Cooldown. A key whose window empties while in cooldown is "parked" (kept, so the cooldown
survives); the sweep, every ``P_SWEEP_EVERY_NS`` of packet time, expires both windows and
frees parked keys whose cooldown has passed. A SYN-flood key that cannot get a row because
every row is held drops its event (``G_SF_DROPPED``; same for a port-scan key when every
row is parked). Nothing here ever allocates or grows.

Hash indexes are open-addressing arrays of uint64 words ``tag << 32 | (row + 1)``
(0 = empty), power-of-two sized with at least two slots per row, linear probing,
backward-shift deletion (no tombstones), hashed with ``flowtable``'s splitmix finaliser.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from netscope.constants import (
    ERR_OK,
    FRAG_NONINITIAL,
    IPPROTO_TCP,
    IPPROTO_UDP,
    L3_IPV4,
    L3_IPV6,
    TCP_ACK,
    TCP_SYN,
)
from netscope.kernels._jit import NO_RUNTIME_OPTIONS, inline_helper, kernel, large_helper
from netscope.kernels.flowtable import _mix
from netscope.kernels.lists import list_append, list_unlink

# Entry points are ordinary ``kernel``s (no NRT, see ``_jit``: with numba's runtime every
# array handed to a helper cost an atomic incref/decref pair, and threading ~13 arrays
# through the helpers cost ~300 ns per SYN, 15x the real work — measured here first).
# IR-inlined helpers (``inline_helper``) take the caller's flags; the cold helpers below
# are compiled separately (``_helper``), which keeps first-run compilation to seconds.
_kernel = kernel


def _helper(fn: Any) -> Any:
    """A cold helper compiled once and called (not inlined at the IR level), no NRT."""
    return numba.njit(**NO_RUNTIME_OPTIONS)(fn)


# ---- parameter vector p (int64) ----
P_SF_ON = 0
P_SF_WINDOW_NS = 1
P_SF_SYNS = 2  # syn_threshold
P_SF_SOURCES = 3  # unique_src_threshold
P_SF_COOLDOWN_NS = 4
P_PS_ON = 5
P_PS_WINDOW_NS = 6
P_PS_PORTS = 7  # unique_ports_threshold
P_PS_HOSTS = 8  # unique_hosts_threshold
P_PS_COOLDOWN_NS = 9
P_SWEEP_EVERY_NS = 10
P_WIDTH = 11

# ---- global state / counters g (int64) ----
G_NOW = 0  # monotone packet clock (NO_TIME before the first event)
G_NEXT_SWEEP = 1
G_SWEEPS = 2
G_ALERTS = 3  # entries waiting in the alert buffer
G_SF_EVENTS = 4
G_SF_ALERTS = 5
G_SF_KEYS = 6
G_SF_KEYS_PEAK = 7
G_SF_KEY_TOP = 8  # free-stack top (key rows)
G_SF_KEY_HWM = 9  # rows ever handed out (rows >= this were never touched)
G_SF_MEM_TOP = 10
G_SF_MEM_HWM = 11
G_SF_Q_HEAD = 12
G_SF_Q_LEN = 13
G_SF_Q_PEAK = 14
G_SF_FORGOTTEN = 15  # SYNs dropped from the window early because the FIFO was full
G_SF_DROPPED = 16  # SYNs not counted because no key row was free
G_PS_EVENTS = 17
G_PS_ALERTS = 18
G_PS_KEYS = 19
G_PS_KEYS_PEAK = 20
G_PS_KEY_TOP = 21
G_PS_KEY_HWM = 22
G_PS_MEM_TOP = 23
G_PS_MEM_HWM = 24
G_PS_MEMBERS = 25  # member rows in use (inline ports/hosts are not counted here)
G_PS_MEMBERS_PEAK = 26
G_PS_MLRU_HEAD = 27
G_PS_MLRU_TAIL = 28
G_PS_KLRU_HEAD = 29
G_PS_KLRU_TAIL = 30
G_PS_FORGOTTEN = 31  # members / sources dropped early because a table was full
G_PS_DROPPED = 32  # probes not counted: every key row was parked
G_WIDTH = 33

# ---- table rows ----
# Each table is one C-ordered uint64 matrix, one row per entry, so touching an entry costs
# one or two cache lines. The kernel receives it together with int64 (and int32) views of
# the same memory, and uses whichever type a column holds. Words 0..2 of every row are the
# hashed key.
#
# SYN flood key row (8 words, uint64 sf_u / int64 sf_i):
SFK_META = 0  # ip version | dst port << 8 (0 marks a free row)
SFK_HI = 1
SFK_LO = 2
SFK_TAG = 3  # index tag (deletion needs no rehash)
SF_COUNT = 4  # SYNs in the window
SF_SOURCES = 5  # distinct sources in the window
SF_SINCE = 6  # first event since the window was last empty
SF_COOL_UNTIL = 7  # no alert before this time (NO_TIME: never alerted)
SF_WORDS = 8
# SYN flood member row (4 words, uint64 sm_u / int64 sm_i): (key row | tag << 32, src)
SMK_OWNER = 0  # owner key row | index tag << 32
SM_REF = 3  # this source's SYNs in the window
SM_WORDS = 4

# Port scan key row (16 words, uint64 ps_u / int64 ps_i; int32 view ps_h has 32 columns):
PSK_META = 0  # ip version (0 marks a free row)
PSK_HI = 1
PSK_LO = 2
PSK_IN_PORT = 3  # inline (first) port
PSK_IN_HOST_HI = 4  # inline (first) host
PSK_IN_HOST_LO = 5
PS_IN_PORT_TS = 6  # last seen of the inline port (NO_TIME: empty); == PS_IN_PORT_TS + kind
PS_IN_HOST_TS = 7  # last seen of the inline host
PS_LAST = 8  # last event (key LRU order)
PS_SINCE = 9
PS_COOL_UNTIL = 10
PSK_TAG = 11
PS_WORDS = 16
# int32 columns of the same row (word w holds int32 columns 2w and 2w + 1)
PH_PORTS = 24  # distinct ports in the window (inline + members); == PH_PORTS + KIND_PORT
PH_HOSTS = 25  # distinct hosts in the window; == PH_PORTS + KIND_HOST
PH_TABLE = 26  # member rows held (0: no need to probe the member index)
PH_STATE = 27  # KS_*
PH_PREV = 28  # key LRU list
PH_NEXT = 29
PH_GEN = 30  # bumped when the row is freed; member rows carry it
KS_FREE = 0
KS_ACTIVE = 1  # on the key LRU list
KS_PARKED = 2  # window empty, cooldown running: off the list, freed by the sweep

# Port scan member row (6 words, uint64 pm_u / int64 pm_i; int32 view pm_h has 12 columns):
PMK_WORD0 = 0  # owner key row | kind << 32 | owner generation << 33
PM_TS = 3  # last seen
PMK_TAG = 4
PMH_PREV = 10  # global member LRU list
PMH_NEXT = 11
PM_WORDS = 6

KIND_PORT = 0
KIND_HOST = 1
_GEN_MASK = 0x7FFFFFFF  # generation bits kept in a member's key word (bits 33..63)

# ---- alert buffer (al_i64 rows; addresses in al_addr[:, 0 hi / 1 lo]) ----
AL_TS = 0
AL_KIND = 1  # ALERT_SYN_FLOOD / ALERT_PORT_SCAN
AL_L3 = 2
AL_PORT = 3  # target port (SYN flood), 0 otherwise
AL_N1 = 4  # SYNs (SYN flood) / distinct ports (port scan)
AL_N2 = 5  # distinct sources (SYN flood) / distinct hosts (port scan)
AL_SPAN_NS = 6  # time the counted events span (at most the window)
AL_WIDTH = 7
ALERT_SYN_FLOOD = 1
ALERT_PORT_SCAN = 2
ALERTS_PER_PACKET = 2  # one per detector: the kernel stops when fewer slots are free

# ---- status ----
ST_DONE = 0
ST_ALERTS_FULL = 1

NO_TIME = np.iinfo(np.int64).min
UDP_SERVICE_PORT_LIMIT = 1024  # UDP from below this to at/above it is a service's reply
INDEX_SLOTS_PER_ROW = 4  # load <= 0.25: probing 0.5-loaded indexes cost ~30% more

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_LOW32 = np.uint64(0xFFFFFFFF)
_SH8 = np.uint64(8)
_SH32 = np.uint64(32)
_SH33 = np.uint64(33)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


# ------------------------------------------------------------------ hash index


@inline_helper
def _hash3(a, b, c):  # type: ignore[no-untyped-def]
    """64-bit hash of a 3-word key (IPv4 keys have b == 0 and pay one mix)."""
    h = _mix(c ^ (a * _GOLD))
    if b != _U0:
        h = _mix(h ^ b)
    return h


@inline_helper
def _idx_probe(idx, rows, tag, k0, k1, k2):  # type: ignore[no-untyped-def]
    """``(row, slot)`` holding key (k0, k1, k2), or ``(-1, empty slot where it would go)``."""
    mask = np.uint64(idx.shape[0] - 1)
    slot = tag & mask
    while True:
        w = idx[slot]
        if w == _U0:
            return np.int64(-1), slot
        if (w >> _SH32) == tag:
            row = np.int64(w & _LOW32) - 1
            if rows[row, 2] == k2 and rows[row, 0] == k0 and rows[row, 1] == k1:
                return row, slot
        slot = (slot + _U1) & mask


@inline_helper
def _idx_put(idx, slot, tag, row):  # type: ignore[no-untyped-def]
    idx[slot] = (tag << _SH32) | np.uint64(row + 1)


@inline_helper
def _idx_insert(idx, tag, row):  # type: ignore[no-untyped-def]
    mask = np.uint64(idx.shape[0] - 1)
    slot = tag & mask
    while idx[slot] != _U0:
        slot = (slot + _U1) & mask
    idx[slot] = (tag << _SH32) | np.uint64(row + 1)


@inline_helper
def _idx_delete(idx, tag, row):  # type: ignore[no-untyped-def]
    """Remove ``row`` (hashed to ``tag``) with backward-shift deletion."""
    mask = np.uint64(idx.shape[0] - 1)
    want = (tag << _SH32) | np.uint64(row + 1)
    slot = tag & mask
    while idx[slot] != want:
        slot = (slot + _U1) & mask
    hole = slot
    j = slot
    while True:
        j = (j + _U1) & mask
        w = idx[j]
        if w == _U0:
            break
        home = (w >> _SH32) & mask
        # the entry at j may fill the hole unless its home lies cyclically in (hole, j]
        if hole <= j:
            stays = hole < home and home <= j
        else:
            stays = home > hole or home <= j
        if not stays:
            idx[hole] = w
            hole = j
    idx[hole] = _U0


@inline_helper
def _alloc(free, g, top_i, hwm_i):  # type: ignore[no-untyped-def]
    """A free row: recycled (LIFO, so still in cache) or never used; -1 if none."""
    top = g[top_i]
    if top > 0:
        g[top_i] = top - 1
        return np.int64(free[top - 1])
    hwm = g[hwm_i]
    if hwm < free.shape[0]:
        g[hwm_i] = hwm + 1
        return hwm
    return np.int64(-1)


@inline_helper
def _release(free, g, top_i, row):  # type: ignore[no-untyped-def]
    free[g[top_i]] = row
    g[top_i] += 1


@_helper
def _emit(al_i64, al_addr, g, kind, now, l3, hi, lo, port, n1, n2, since, window):  # type: ignore[no-untyped-def]
    k = g[G_ALERTS]
    span = now - since
    if span > window:
        span = window
    al_i64[k, AL_TS] = now
    al_i64[k, AL_KIND] = kind
    al_i64[k, AL_L3] = l3
    al_i64[k, AL_PORT] = port
    al_i64[k, AL_N1] = n1
    al_i64[k, AL_N2] = n2
    al_i64[k, AL_SPAN_NS] = span
    al_addr[k, 0] = hi
    al_addr[k, 1] = lo
    g[G_ALERTS] = k + 1


# ------------------------------------------------------------------ SYN flood


@_helper
def _sf_free_key(sf_u, sf_idx, sf_free, g, row):  # type: ignore[no-untyped-def]
    _idx_delete(sf_idx, sf_u[row, SFK_TAG], row)
    sf_u[row, SFK_META] = _U0
    _release(sf_free, g, G_SF_KEY_TOP, row)
    g[G_SF_KEYS] -= 1


@large_helper
def _sf_pop(  # type: ignore[no-untyped-def]
    now,
    g,
    sf_u,
    sf_i,
    sf_idx,
    sf_free,
    sm_u,
    sm_i,
    sm_idx,
    sm_free,
    q_key,
    q_mem,
):
    """Remove the oldest SYN from the window (FIFO head)."""
    h = g[G_SF_Q_HEAD]
    row = np.int64(q_key[h])
    m = np.int64(q_mem[h])
    h += 1
    if h == q_key.shape[0]:
        h = 0
    g[G_SF_Q_HEAD] = h
    g[G_SF_Q_LEN] -= 1
    ref = sm_i[m, SM_REF] - 1
    sm_i[m, SM_REF] = ref
    if ref == 0:
        _idx_delete(sm_idx, sm_u[m, SMK_OWNER] >> _SH32, m)
        _release(sm_free, g, G_SF_MEM_TOP, m)
        sf_i[row, SF_SOURCES] -= 1
    n = sf_i[row, SF_COUNT] - 1
    sf_i[row, SF_COUNT] = n
    if n == 0 and sf_i[row, SF_COOL_UNTIL] <= now:
        _sf_free_key(sf_u, sf_idx, sf_free, g, row)


@large_helper
def _sf_expire(  # type: ignore[no-untyped-def]
    now, p, g, sf_u, sf_i, sf_idx, sf_free, sm_u, sm_i, sm_idx, sm_free, q_ts, q_key, q_mem
):
    cutoff = now - p[P_SF_WINDOW_NS]
    while g[G_SF_Q_LEN] > 0 and q_ts[g[G_SF_Q_HEAD]] <= cutoff:
        _sf_pop(now, g, sf_u, sf_i, sf_idx, sf_free, sm_u, sm_i, sm_idx, sm_free, q_key, q_mem)


@large_helper
def _sf_event(  # type: ignore[no-untyped-def]
    now,
    l3v,
    s_hi,
    s_lo,
    d_hi,
    d_lo,
    dport,
    p,
    g,
    sf_u,
    sf_i,
    sf_idx,
    sf_free,
    sm_u,
    sm_i,
    sm_idx,
    sm_free,
    q_ts,
    q_key,
    q_mem,
    al_i64,
    al_addr,
):
    """Count one SYN towards (d, dport) from s; alert if the window now qualifies."""
    g[G_SF_EVENTS] += 1
    _sf_expire(now, p, g, sf_u, sf_i, sf_idx, sf_free, sm_u, sm_i, sm_idx, sm_free, q_ts,
               q_key, q_mem)  # fmt: skip
    cap = q_ts.shape[0]
    if g[G_SF_Q_LEN] == cap:
        _sf_pop(now, g, sf_u, sf_i, sf_idx, sf_free, sm_u, sm_i, sm_idx, sm_free, q_key, q_mem)
        g[G_SF_FORGOTTEN] += 1
    meta = np.uint64(l3v) | (np.uint64(dport) << _SH8)
    tag = _hash3(meta, d_hi, d_lo) >> _SH32
    row, slot = _idx_probe(sf_idx, sf_u, tag, meta, d_hi, d_lo)
    if row < 0:
        row = _alloc(sf_free, g, G_SF_KEY_TOP, G_SF_KEY_HWM)
        if row < 0:
            g[G_SF_DROPPED] += 1
            return
        sf_u[row, SFK_META] = meta
        sf_u[row, SFK_HI] = d_hi
        sf_u[row, SFK_LO] = d_lo
        sf_u[row, SFK_TAG] = tag
        sf_i[row, SF_COUNT] = 0
        sf_i[row, SF_SOURCES] = 0
        sf_i[row, SF_SINCE] = now
        sf_i[row, SF_COOL_UNTIL] = NO_TIME
        _idx_put(sf_idx, slot, tag, row)
        g[G_SF_KEYS] += 1
        if g[G_SF_KEYS] > g[G_SF_KEYS_PEAK]:
            g[G_SF_KEYS_PEAK] = g[G_SF_KEYS]
    elif sf_i[row, SF_COUNT] == 0:
        sf_i[row, SF_SINCE] = now  # a parked key starts a new burst
    mtag = _hash3(np.uint64(row), s_hi, s_lo) >> _SH32
    owner = np.uint64(row) | (mtag << _SH32)
    m, mslot = _idx_probe(sm_idx, sm_u, mtag, owner, s_hi, s_lo)
    if m < 0:
        # cannot fail: members <= FIFO entries < FIFO capacity == member rows
        m = _alloc(sm_free, g, G_SF_MEM_TOP, G_SF_MEM_HWM)
        sm_u[m, SMK_OWNER] = owner
        sm_u[m, 1] = s_hi
        sm_u[m, 2] = s_lo
        sm_i[m, SM_REF] = 0
        _idx_put(sm_idx, mslot, mtag, m)
        sf_i[row, SF_SOURCES] += 1
    sm_i[m, SM_REF] += 1
    t = g[G_SF_Q_HEAD] + g[G_SF_Q_LEN]
    if t >= cap:
        t -= cap
    q_ts[t] = now
    q_key[t] = row
    q_mem[t] = m
    g[G_SF_Q_LEN] += 1
    if g[G_SF_Q_LEN] > g[G_SF_Q_PEAK]:
        g[G_SF_Q_PEAK] = g[G_SF_Q_LEN]
    n = sf_i[row, SF_COUNT] + 1
    sf_i[row, SF_COUNT] = n
    if (
        n >= p[P_SF_SYNS]
        and sf_i[row, SF_SOURCES] >= p[P_SF_SOURCES]
        and now >= sf_i[row, SF_COOL_UNTIL]
    ):
        sf_i[row, SF_COOL_UNTIL] = now + p[P_SF_COOLDOWN_NS]
        g[G_SF_ALERTS] += 1
        _emit(al_i64, al_addr, g, ALERT_SYN_FLOOD, now, l3v, d_hi, d_lo, dport, n,
              sf_i[row, SF_SOURCES], sf_i[row, SF_SINCE], p[P_SF_WINDOW_NS])  # fmt: skip


# ------------------------------------------------------------------ port scan


@large_helper
def _ps_free_key(ps_u, ps_h, ps_idx, ps_free, g, row):  # type: ignore[no-untyped-def]
    """Free a key row; its generation moves on, orphaning any member rows it still has."""
    _idx_delete(ps_idx, ps_u[row, PSK_TAG], row)
    ps_u[row, PSK_META] = _U0
    ps_h[row, PH_STATE] = KS_FREE
    ps_h[row, PH_GEN] = (ps_h[row, PH_GEN] + 1) & _GEN_MASK
    _release(ps_free, g, G_PS_KEY_TOP, row)
    g[G_PS_KEYS] -= 1


@large_helper
def _ps_member_pop(g, ps_h, pm_u, pm_h, pm_idx, pm_free, m):  # type: ignore[no-untyped-def]
    """Drop member ``m`` (expired or forgotten) and uncount it from its key, if still its."""
    w0 = pm_u[m, PMK_WORD0]
    owner = np.int64(w0 & _LOW32)
    kind = np.int64((w0 >> _SH32) & _U1)
    gen = np.int64(w0 >> _SH33)
    list_unlink(pm_h, PMH_PREV, PMH_NEXT, g, G_PS_MLRU_HEAD, G_PS_MLRU_TAIL, m)
    _idx_delete(pm_idx, pm_u[m, PMK_TAG], m)
    _release(pm_free, g, G_PS_MEM_TOP, m)
    g[G_PS_MEMBERS] -= 1
    if ps_h[owner, PH_STATE] == KS_ACTIVE and ps_h[owner, PH_GEN] == gen:
        ps_h[owner, PH_PORTS + kind] -= 1
        ps_h[owner, PH_TABLE] -= 1


@_helper
def _ps_retire(now, row, g, ps_u, ps_i, ps_h, ps_idx, ps_free):  # type: ignore[no-untyped-def]
    """Take ``row`` off the key LRU list: its whole window has passed (or it is being
    forgotten). Parked if its cooldown is still running, else freed."""
    list_unlink(ps_h, PH_PREV, PH_NEXT, g, G_PS_KLRU_HEAD, G_PS_KLRU_TAIL, row)
    if ps_i[row, PS_COOL_UNTIL] > now:
        ps_h[row, PH_PORTS] = 0
        ps_h[row, PH_HOSTS] = 0
        ps_h[row, PH_TABLE] = 0
        ps_i[row, PS_IN_PORT_TS] = NO_TIME
        ps_i[row, PS_IN_HOST_TS] = NO_TIME
        ps_h[row, PH_STATE] = KS_PARKED
    else:
        _ps_free_key(ps_u, ps_h, ps_idx, ps_free, g, row)


@large_helper
def _ps_expire(  # type: ignore[no-untyped-def]
    now, cutoff, g, ps_u, ps_i, ps_h, ps_idx, ps_free, pm_u, pm_i, pm_h, pm_idx, pm_free
):
    """Expire members, then keys, whose last sighting is at or before ``cutoff``.

    Members first: a key whose last event is that old has every member at least as old,
    so retiring it afterwards finds nothing left to uncount.
    """
    while g[G_PS_MLRU_HEAD] >= 0 and pm_i[g[G_PS_MLRU_HEAD], PM_TS] <= cutoff:
        _ps_member_pop(g, ps_h, pm_u, pm_h, pm_idx, pm_free, g[G_PS_MLRU_HEAD])
    while g[G_PS_KLRU_HEAD] >= 0 and ps_i[g[G_PS_KLRU_HEAD], PS_LAST] <= cutoff:
        _ps_retire(now, g[G_PS_KLRU_HEAD], g, ps_u, ps_i, ps_h, ps_idx, ps_free)


@large_helper
def _ps_touch(  # type: ignore[no-untyped-def]
    now,
    row,
    kind,
    hi,
    lo,
    g,
    ps_u,
    ps_i,
    ps_h,
    pm_u,
    pm_i,
    pm_h,
    pm_idx,
    pm_free,
):
    """Count (or refresh) port/host ``hi:lo`` for key ``row`` at ``now``."""
    its = PS_IN_PORT_TS + kind
    inline_live = ps_i[row, its] != NO_TIME
    if inline_live:
        if kind == KIND_PORT:
            same = ps_u[row, PSK_IN_PORT] == lo
        else:
            same = ps_u[row, PSK_IN_HOST_LO] == lo and ps_u[row, PSK_IN_HOST_HI] == hi
        if same:
            ps_i[row, its] = now
            return
    has_members = ps_h[row, PH_TABLE] > 0
    if not has_members and not inline_live:
        # the common case (a source's first port / host): no hashing at all
        if kind == KIND_PORT:
            ps_u[row, PSK_IN_PORT] = lo
        else:
            ps_u[row, PSK_IN_HOST_HI] = hi
            ps_u[row, PSK_IN_HOST_LO] = lo
        ps_i[row, its] = now
        ps_h[row, PH_PORTS + kind] += 1
        return
    w0 = np.uint64(row) | (np.uint64(kind) << _SH32) | (np.uint64(ps_h[row, PH_GEN]) << _SH33)
    tag = _hash3(w0, hi, lo) >> _SH32
    if has_members:
        m, _slot = _idx_probe(pm_idx, pm_u, tag, w0, hi, lo)
        if m >= 0:
            pm_i[m, PM_TS] = now
            if g[G_PS_MLRU_TAIL] != m:
                list_unlink(pm_h, PMH_PREV, PMH_NEXT, g, G_PS_MLRU_HEAD, G_PS_MLRU_TAIL, m)
                list_append(pm_h, PMH_PREV, PMH_NEXT, g, G_PS_MLRU_HEAD, G_PS_MLRU_TAIL, m)
            return
    ps_h[row, PH_PORTS + kind] += 1
    if not inline_live:
        if kind == KIND_PORT:
            ps_u[row, PSK_IN_PORT] = lo
        else:
            ps_u[row, PSK_IN_HOST_HI] = hi
            ps_u[row, PSK_IN_HOST_LO] = lo
        ps_i[row, its] = now
        return
    m = _alloc(pm_free, g, G_PS_MEM_TOP, G_PS_MEM_HWM)
    if m < 0:
        # member table full: forget the least recently seen member early
        _ps_member_pop(g, ps_h, pm_u, pm_h, pm_idx, pm_free, g[G_PS_MLRU_HEAD])
        g[G_PS_FORGOTTEN] += 1
        m = _alloc(pm_free, g, G_PS_MEM_TOP, G_PS_MEM_HWM)
    pm_u[m, PMK_WORD0] = w0
    pm_u[m, 1] = hi
    pm_u[m, 2] = lo
    pm_i[m, PM_TS] = now
    pm_u[m, PMK_TAG] = tag
    list_append(pm_h, PMH_PREV, PMH_NEXT, g, G_PS_MLRU_HEAD, G_PS_MLRU_TAIL, m)
    _idx_insert(pm_idx, tag, m)
    ps_h[row, PH_TABLE] += 1
    g[G_PS_MEMBERS] += 1
    if g[G_PS_MEMBERS] > g[G_PS_MEMBERS_PEAK]:
        g[G_PS_MEMBERS_PEAK] = g[G_PS_MEMBERS]


@large_helper
def _ps_event(  # type: ignore[no-untyped-def]
    now,
    l3v,
    s_hi,
    s_lo,
    d_hi,
    d_lo,
    dport,
    p,
    g,
    ps_u,
    ps_i,
    ps_h,
    ps_idx,
    ps_free,
    pm_u,
    pm_i,
    pm_h,
    pm_idx,
    pm_free,
    al_i64,
    al_addr,
):
    """Count one probe from s to d:dport; alert if the window now qualifies."""
    g[G_PS_EVENTS] += 1
    cutoff = now - p[P_PS_WINDOW_NS]
    _ps_expire(now, cutoff, g, ps_u, ps_i, ps_h, ps_idx, ps_free, pm_u, pm_i, pm_h, pm_idx,
               pm_free)  # fmt: skip
    meta = np.uint64(l3v)
    tag = _hash3(meta, s_hi, s_lo) >> _SH32
    row, slot = _idx_probe(ps_idx, ps_u, tag, meta, s_hi, s_lo)
    if row < 0:
        row = _alloc(ps_free, g, G_PS_KEY_TOP, G_PS_KEY_HWM)
        if row >= 0:
            _idx_put(ps_idx, slot, tag, row)
        else:
            victim = g[G_PS_KLRU_HEAD]
            if victim < 0:
                g[G_PS_DROPPED] += 1  # every row is parked in a cooldown
                return
            # key table full: forget the least recently active source early
            ps_i[victim, PS_COOL_UNTIL] = NO_TIME
            _ps_retire(now, victim, g, ps_u, ps_i, ps_h, ps_idx, ps_free)
            g[G_PS_FORGOTTEN] += 1
            row = _alloc(ps_free, g, G_PS_KEY_TOP, G_PS_KEY_HWM)
            _idx_insert(ps_idx, tag, row)
        ps_u[row, PSK_META] = meta
        ps_u[row, PSK_HI] = s_hi
        ps_u[row, PSK_LO] = s_lo
        ps_u[row, PSK_TAG] = tag
        ps_i[row, PS_IN_PORT_TS] = NO_TIME
        ps_i[row, PS_IN_HOST_TS] = NO_TIME
        ps_i[row, PS_SINCE] = now
        ps_i[row, PS_COOL_UNTIL] = NO_TIME
        ps_h[row, PH_PORTS] = 0
        ps_h[row, PH_HOSTS] = 0
        ps_h[row, PH_TABLE] = 0
        ps_h[row, PH_STATE] = KS_ACTIVE
        list_append(ps_h, PH_PREV, PH_NEXT, g, G_PS_KLRU_HEAD, G_PS_KLRU_TAIL, row)
        g[G_PS_KEYS] += 1
        if g[G_PS_KEYS] > g[G_PS_KEYS_PEAK]:
            g[G_PS_KEYS_PEAK] = g[G_PS_KEYS]
    else:
        if ps_h[row, PH_STATE] == KS_PARKED:
            ps_h[row, PH_STATE] = KS_ACTIVE
            list_append(ps_h, PH_PREV, PH_NEXT, g, G_PS_KLRU_HEAD, G_PS_KLRU_TAIL, row)
        elif g[G_PS_KLRU_TAIL] != row:
            list_unlink(ps_h, PH_PREV, PH_NEXT, g, G_PS_KLRU_HEAD, G_PS_KLRU_TAIL, row)
            list_append(ps_h, PH_PREV, PH_NEXT, g, G_PS_KLRU_HEAD, G_PS_KLRU_TAIL, row)
        # inline port/host expire lazily, here, before the key is evaluated
        t = ps_i[row, PS_IN_PORT_TS]
        if t != NO_TIME and t <= cutoff:
            ps_i[row, PS_IN_PORT_TS] = NO_TIME
            ps_h[row, PH_PORTS] -= 1
        t = ps_i[row, PS_IN_HOST_TS]
        if t != NO_TIME and t <= cutoff:
            ps_i[row, PS_IN_HOST_TS] = NO_TIME
            ps_h[row, PH_HOSTS] -= 1
        if ps_h[row, PH_PORTS] == 0 and ps_h[row, PH_HOSTS] == 0:
            ps_i[row, PS_SINCE] = now
    ps_i[row, PS_LAST] = now
    _ps_touch(now, row, KIND_PORT, _U0, np.uint64(dport), g, ps_u, ps_i, ps_h, pm_u, pm_i,
              pm_h, pm_idx, pm_free)  # fmt: skip
    _ps_touch(now, row, KIND_HOST, d_hi, d_lo, g, ps_u, ps_i, ps_h, pm_u, pm_i, pm_h, pm_idx,
              pm_free)  # fmt: skip
    ports = np.int64(ps_h[row, PH_PORTS])
    hosts = np.int64(ps_h[row, PH_HOSTS])
    if (ports >= p[P_PS_PORTS] or hosts >= p[P_PS_HOSTS]) and now >= ps_i[row, PS_COOL_UNTIL]:
        ps_i[row, PS_COOL_UNTIL] = now + p[P_PS_COOLDOWN_NS]
        g[G_PS_ALERTS] += 1
        _emit(al_i64, al_addr, g, ALERT_PORT_SCAN, now, l3v, s_hi, s_lo, 0, ports, hosts,
              ps_i[row, PS_SINCE], p[P_PS_WINDOW_NS])  # fmt: skip


# ------------------------------------------------------------------ sweep


@_helper
def _sweep(  # type: ignore[no-untyped-def]
    now,
    p,
    g,
    sf_u,
    sf_i,
    sf_idx,
    sf_free,
    sm_u,
    sm_i,
    sm_idx,
    sm_free,
    q_ts,
    q_key,
    q_mem,
    ps_u,
    ps_i,
    ps_h,
    ps_idx,
    ps_free,
    pm_u,
    pm_i,
    pm_h,
    pm_idx,
    pm_free,
):
    """Expire both windows at ``now`` and free parked keys whose cooldown has passed."""
    g[G_SWEEPS] += 1
    _sf_expire(now, p, g, sf_u, sf_i, sf_idx, sf_free, sm_u, sm_i, sm_idx, sm_free, q_ts,
               q_key, q_mem)  # fmt: skip
    for row in range(g[G_SF_KEY_HWM]):
        if (
            sf_u[row, SFK_META] != _U0
            and sf_i[row, SF_COUNT] == 0
            and sf_i[row, SF_COOL_UNTIL] <= now
        ):
            _sf_free_key(sf_u, sf_idx, sf_free, g, row)
    _ps_expire(now, now - p[P_PS_WINDOW_NS], g, ps_u, ps_i, ps_h, ps_idx, ps_free, pm_u, pm_i,
               pm_h, pm_idx, pm_free)  # fmt: skip
    for row in range(g[G_PS_KEY_HWM]):
        if ps_h[row, PH_STATE] == KS_PARKED and ps_i[row, PS_COOL_UNTIL] <= now:
            _ps_free_key(ps_u, ps_h, ps_idx, ps_free, g, row)


# ------------------------------------------------------------------ entry point


@_kernel
def detect(  # type: ignore[no-untyped-def]
    start,
    count,
    ts_ns,
    err,
    l3,
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
    p,
    g,
    sf_u,
    sf_i,
    sf_idx,
    sf_free,
    sm_u,
    sm_i,
    sm_idx,
    sm_free,
    q_ts,
    q_key,
    q_mem,
    ps_u,
    ps_i,
    ps_h,
    ps_idx,
    ps_free,
    pm_u,
    pm_i,
    pm_h,
    pm_idx,
    pm_free,
    al_i64,
    al_addr,
    sweep_at,
):
    """Fold packets ``[start, count)`` of a decoded batch into both detectors.

    Tables (R key rows, M member rows per detector; ``*_u`` uint64, ``*_i`` the int64 view
    and ``*_h`` the int32 view of the same C-ordered matrix):
    ``sf_u``/``sf_i`` [Rs, SF_WORDS]; ``sm_u``/``sm_i`` [Ms, SM_WORDS]; FIFO ``q_ts`` int64,
    ``q_key``/``q_mem`` int32, all [Ms] (FIFO capacity == member rows);
    ``ps_u``/``ps_i`` [Rp, PS_WORDS], ``ps_h`` [Rp, 2 PS_WORDS]; ``pm_u``/``pm_i``
    [Mp, PM_WORDS], ``pm_h`` [Mp, 2 PM_WORDS]. Indexes ``*_idx`` uint64, power-of-two sized
    with >= INDEX_SLOTS_PER_ROW slots per row; free stacks ``*_free`` int32 [rows].
    ``p`` int64[P_WIDTH], ``g`` int64[G_WIDTH]. Alerts: ``al_i64`` int64[A, AL_WIDTH],
    ``al_addr`` uint64[A, 2], appended at ``g[G_ALERTS]`` (the caller empties the buffer).
    ``sweep_at`` != NO_TIME runs a sweep at that time after the packets.

    Returns ``(i, status)``: ST_DONE with i == count, or ST_ALERTS_FULL with i the first
    packet not yet looked at (nothing of it has been counted), to resume from.
    """
    sf_on = p[P_SF_ON] != 0
    ps_on = p[P_PS_ON] != 0
    alert_cap = al_i64.shape[0]
    for i in range(start, count):
        if err[i] != ERR_OK:
            continue
        v = l3[i]
        if v != L3_IPV4 and v != L3_IPV6:
            continue
        if (frag[i] & FRAG_NONINITIAL) != 0 or l4_off[i] < 0:
            continue
        pr = proto[i]
        if pr == IPPROTO_TCP:
            f = tcp_flags[i]
            if (f & TCP_SYN) == 0 or (f & TCP_ACK) != 0:
                continue
            syn = True
        elif pr == IPPROTO_UDP:
            if sport[i] < UDP_SERVICE_PORT_LIMIT and dport[i] >= UDP_SERVICE_PORT_LIMIT:
                continue
            syn = False
        else:
            continue
        if not ps_on and not (sf_on and syn):
            continue
        if g[G_ALERTS] + ALERTS_PER_PACKET > alert_cap:
            return i, ST_ALERTS_FULL
        now = ts_ns[i]
        if now < g[G_NOW]:
            now = g[G_NOW]
        g[G_NOW] = now
        if now >= g[G_NEXT_SWEEP]:
            if g[G_NEXT_SWEEP] != NO_TIME:
                _sweep(now, p, g, sf_u, sf_i, sf_idx, sf_free, sm_u, sm_i, sm_idx, sm_free,
                       q_ts, q_key, q_mem, ps_u, ps_i, ps_h, ps_idx, ps_free, pm_u, pm_i,
                       pm_h, pm_idx, pm_free)  # fmt: skip
            g[G_NEXT_SWEEP] = now + p[P_SWEEP_EVERY_NS]
        s_hi = src_hi[i]
        s_lo = src_lo[i]
        d_hi = dst_hi[i]
        d_lo = dst_lo[i]
        dp = np.int64(dport[i])
        if sf_on and syn:
            _sf_event(now, np.int64(v), s_hi, s_lo, d_hi, d_lo, dp, p, g, sf_u, sf_i, sf_idx,
                      sf_free, sm_u, sm_i, sm_idx, sm_free, q_ts, q_key, q_mem, al_i64,
                      al_addr)  # fmt: skip
        if ps_on:
            _ps_event(now, np.int64(v), s_hi, s_lo, d_hi, d_lo, dp, p, g, ps_u, ps_i, ps_h,
                      ps_idx, ps_free, pm_u, pm_i, pm_h, pm_idx, pm_free, al_i64,
                      al_addr)  # fmt: skip
    if sweep_at != NO_TIME:
        now = sweep_at
        if now < g[G_NOW]:
            now = g[G_NOW]
        g[G_NOW] = now
        _sweep(now, p, g, sf_u, sf_i, sf_idx, sf_free, sm_u, sm_i, sm_idx, sm_free, q_ts,
               q_key, q_mem, ps_u, ps_i, ps_h, ps_idx, ps_free, pm_u, pm_i, pm_h, pm_idx,
               pm_free)  # fmt: skip
        g[G_NEXT_SWEEP] = now + p[P_SWEEP_EVERY_NS]
    return count, ST_DONE

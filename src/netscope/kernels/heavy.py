"""SpaceSaving heavy hitters over a shard's packet stream (SPEC §6 "Pipeline").

A pipeline shard keeps a fixed number of candidate flows (capacity max(4·N, 16),
N = the longest top list anyone shows). ``offer`` folds a decoded batch in: a flow
already monitored adds its bytes; an unmonitored flow replaces the entry with the
smallest count and inherits that count as its error bound (Metwally et al.'s
SpaceSaving). Any flow whose true weight exceeds total/capacity is guaranteed to be
monitored, so the exact top N by byte delta is among the candidates whenever the
top flows stand out, and memory never grows with the number of flows.

Counts are estimates; ``resolve`` replaces them with the flow table's exact byte
deltas (looked up by canonical key), which is what the stats line reports. Only
entries that were reported get their count reset, mirroring ``reset_delta``.

Layout: ``ss_key`` uint64[C, 5] (the flow table's canonical key, KEY layout),
``ss_hash`` uint64[C], ``ss_cnt`` int64[C], ``ss_used`` int64[1].
Capacity is small (tens), so lookups are a linear scan of ``ss_hash``: branch-free
enough to vectorise and far cheaper than maintaining an index for so few entries.
"""

from __future__ import annotations

import numpy as np

from netscope.constants import ERR_OK, IPPROTO_TCP, IPPROTO_UDP
from netscope.flows.layout import B_LIVE, I_DELTA_BYTES, KEY_WIDTH
from netscope.kernels._jit import kernel
from netscope.kernels.flowtable import _find, flow_hash

__all__ = ["KEY_WIDTH", "offer", "resolve"]


@kernel
def offer(  # type: ignore[no-untyped-def]
    count, wirelens, err, l3, src_hi, src_lo, dst_hi, dst_lo, proto, l4_off, sport, dport,
    ss_key, ss_hash, ss_cnt, ss_used,
):  # fmt: skip
    """Fold ``count`` decoded packets (trackable TCP/UDP only) into the summary."""
    cap = ss_hash.shape[0]
    used = ss_used[0]
    for i in range(count):
        pr = proto[i]
        if not (
            err[i] == ERR_OK
            and l3[i] != 0
            and l4_off[i] >= 0
            and (pr == IPPROTO_TCP or pr == IPPROTO_UDP)
        ):
            continue
        shi = src_hi[i]
        slo = src_lo[i]
        dhi = dst_hi[i]
        dlo = dst_lo[i]
        sp = np.uint64(sport[i])
        dp = np.uint64(dport[i])
        if shi < dhi or (shi == dhi and (slo < dlo or (slo == dlo and sp <= dp))):
            k0, k1, k2, k3 = shi, slo, dhi, dlo
            pa, pb = sp, dp
        else:
            k0, k1, k2, k3 = dhi, dlo, shi, slo
            pa, pb = dp, sp
        k4 = (
            (pa << np.uint64(48))
            | (pb << np.uint64(32))
            | (np.uint64(pr) << np.uint64(8))
            | np.uint64(l3[i])
        )
        h = flow_hash(k0, k1, k2, k3, k4)
        w = np.int64(wirelens[i])
        slot = -1
        for e in range(used):
            if (
                ss_hash[e] == h
                and ss_key[e, 4] == k4
                and ss_key[e, 1] == k1
                and ss_key[e, 3] == k3
                and ss_key[e, 0] == k0
                and ss_key[e, 2] == k2
            ):
                slot = e
                break
        if slot >= 0:
            ss_cnt[slot] += w
            continue
        if used < cap:
            slot = used
            used += 1
            base = np.int64(0)
        else:
            slot = 0
            base = ss_cnt[0]
            for e in range(1, cap):
                if ss_cnt[e] < base:
                    base = ss_cnt[e]
                    slot = e
        ss_hash[slot] = h
        ss_key[slot, 0] = k0
        ss_key[slot, 1] = k1
        ss_key[slot, 2] = k2
        ss_key[slot, 3] = k3
        ss_key[slot, 4] = k4
        ss_cnt[slot] = base + w
    ss_used[0] = used


@kernel
def resolve(ss_key, ss_hash, ss_used, keys, i64, u8, idx_row, idx_tag, out_rows, out_ent):  # type: ignore[no-untyped-def]
    """Flow-table rows of the monitored flows that are live and have a byte delta.

    Writes them to ``out_rows`` (their summary entries to ``out_ent``) and returns
    how many; their exact deltas are then read from the table."""
    mask = np.int64(idx_row.shape[0] - 1)
    n = 0
    for e in range(ss_used[0]):
        tag = np.uint32(ss_hash[e] & np.uint64(0xFFFFFFFF))
        row = _find(
            keys, idx_row, idx_tag, mask, tag,
            ss_key[e, 0], ss_key[e, 1], ss_key[e, 2], ss_key[e, 3], ss_key[e, 4],
        )  # fmt: skip
        if row >= 0 and u8[row, B_LIVE] and i64[row, I_DELTA_BYTES] > 0:
            out_rows[n] = row
            out_ent[n] = e
            n += 1
    return n

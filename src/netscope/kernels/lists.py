"""Doubly linked lists threaded through two int32 columns of a row matrix.

The flow table keeps its flows on an LRU list and the anomaly detector its keys and
members; each list's head and tail live in the caller's int64 globals array ``g`` at
indexes ``head_i`` / ``tail_i``, and -1 ends a list. Both kernels use these two helpers.
"""

from __future__ import annotations

from netscope.kernels._jit import inline_helper


@inline_helper
def list_unlink(links, pc, nc, g, head_i, tail_i, row):  # type: ignore[no-untyped-def]
    """Take ``row`` out of the list whose prev/next columns are ``pc`` / ``nc``."""
    prv = links[row, pc]
    nxt = links[row, nc]
    if prv >= 0:
        links[prv, nc] = nxt
    else:
        g[head_i] = nxt
    if nxt >= 0:
        links[nxt, pc] = prv
    else:
        g[tail_i] = prv


@inline_helper
def list_append(links, pc, nc, g, head_i, tail_i, row):  # type: ignore[no-untyped-def]
    """Put ``row`` at the tail of the list."""
    tail = g[tail_i]
    links[row, pc] = tail
    links[row, nc] = -1
    if tail >= 0:
        links[tail, nc] = row
    else:
        g[head_i] = row
    g[tail_i] = row

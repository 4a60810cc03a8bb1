"""Community ID v1 hashes for many flows in one compiled loop (SHA-1 + base64).

The hash input of a Community ID is at most 40 bytes (IPv6), so it always fits one
64-byte SHA-1 block: each flow costs one compression function, written here with plain
integer arithmetic. The alternative, ``hashlib.sha1`` per flow, is a per-flow Python
loop (about 1 µs a flow before the base64 and string work); this kernel does the whole
thing, tuple ordering and ICMP type mapping included, in a few hundred nanoseconds.

All arithmetic is on int64 values kept below 2**32 by masks: mixing numba's uint64 with
integer literals promotes to float, int64 never does. Addresses arrive as the flow
table's big-endian (hi, lo) halves viewed as int64; shifts are masked, so the sign bit
does not matter.

``flows.community_id`` is the Python face (argument checks, scalar helper, Arrow/str
conversions); tests check every output against ``hashlib`` and the ``communityid``
package, and against tshark on the corpus.
"""

from __future__ import annotations

import numpy as np

from netscope.kernels._jit import inline_helper, kernel

ID_WIDTH = 30  # "1:" + 28 base64 characters (20-byte digest, one "=" of padding)
BLOCK = 64
SCHEDULE = 80

# 0 = no counterpart (one-way message); else the reply/request type paired with it
_ICMP4_PAIRS = np.zeros(256, dtype=np.int64) - 1
for _a, _b in ((8, 0), (13, 14), (15, 16), (10, 9), (17, 18)):
    _ICMP4_PAIRS[_a] = _b
    _ICMP4_PAIRS[_b] = _a
_ICMP6_PAIRS = np.zeros(256, dtype=np.int64) - 1
for _a, _b in ((128, 129), (133, 134), (135, 136), (130, 131), (139, 140), (144, 145)):
    _ICMP6_PAIRS[_a] = _b
    _ICMP6_PAIRS[_b] = _a
ICMP_PAIRS = np.stack([_ICMP4_PAIRS, _ICMP6_PAIRS])  # row 0 ICMP, row 1 ICMPv6

B64_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8
).copy()

M32 = 0xFFFFFFFF


@inline_helper
def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


@inline_helper
def _put_addr(block: np.ndarray, at: int, version: int, hi: int, lo: int) -> int:
    """Write an address's network-order bytes at ``at``; returns the next offset."""
    if version == 4:
        for k in range(4):
            block[at + k] = (lo >> (24 - 8 * k)) & 0xFF
        return at + 4
    for k in range(8):
        block[at + k] = (hi >> (56 - 8 * k)) & 0xFF
    for k in range(8):
        block[at + 8 + k] = (lo >> (56 - 8 * k)) & 0xFF
    return at + 16


@kernel
def community_ids(
    version: np.ndarray,  # uint8[n]: 4 or 6
    src_hi: np.ndarray,  # int64[n] (the flow table's uint64 halves, viewed)
    src_lo: np.ndarray,
    dst_hi: np.ndarray,
    dst_lo: np.ndarray,
    proto: np.ndarray,  # uint8[n]
    src_port: np.ndarray,  # int64[n]: port, or ICMP type
    dst_port: np.ndarray,  # int64[n]: port, or ICMP code
    seed: int,
    pairs: np.ndarray,  # ICMP_PAIRS
    alphabet: np.ndarray,  # B64_ALPHABET
    block: np.ndarray,  # uint8[64] scratch
    w: np.ndarray,  # int64[80] scratch
    digest: np.ndarray,  # uint8[20] scratch
    out: np.ndarray,  # uint8[n, ID_WIDTH]
) -> None:
    """Fill ``out[i]`` with the Community ID v1 text of flow i (ASCII bytes)."""
    for i in range(version.shape[0]):
        ver = np.int64(version[i])
        p = np.int64(proto[i])
        s_hi = src_hi[i]
        s_lo = src_lo[i]
        d_hi = dst_hi[i]
        d_lo = dst_lo[i]
        sp = src_port[i] & 0xFFFF
        dp = dst_port[i] & 0xFFFF
        one_way = False
        if p == 1 or p == 58:
            # ICMP: type/code become "ports"; a type with a counterpart pairs with it
            row = 0 if p == 1 else 1
            icmp_type = sp & 0xFF
            other = pairs[row, icmp_type]
            if other >= 0:
                sp = icmp_type
                dp = other
            else:
                sp = icmp_type
                dp = dp & 0xFF
                one_way = True
        # order endpoints: smaller (address, port) first, unless a one-way ICMP message
        swap = False
        if not one_way:
            if ver == 4:
                a = s_lo & M32
                b = d_lo & M32
                swap = a > b or (a == b and sp > dp)
            else:
                # unsigned comparison of the big-endian halves (flip the sign bit)
                ah = s_hi ^ np.int64(-0x8000000000000000)
                bh = d_hi ^ np.int64(-0x8000000000000000)
                al = s_lo ^ np.int64(-0x8000000000000000)
                bl = d_lo ^ np.int64(-0x8000000000000000)
                if ah != bh:
                    swap = ah > bh
                elif al != bl:
                    swap = al > bl
                else:
                    swap = sp > dp
        if swap:
            s_hi, d_hi = d_hi, s_hi
            s_lo, d_lo = d_lo, s_lo
            sp, dp = dp, sp

        # the message: seed(2) src dst proto(1) pad(1) sport(2) dport(2)
        for k in range(BLOCK):
            block[k] = 0
        block[0] = (seed >> 8) & 0xFF
        block[1] = seed & 0xFF
        at = _put_addr(block, 2, ver, s_hi, s_lo)
        at = _put_addr(block, at, ver, d_hi, d_lo)
        block[at] = p & 0xFF
        block[at + 1] = 0
        at += 2
        has_ports = p == 6 or p == 17 or p == 132 or p == 1 or p == 58
        if has_ports:
            block[at] = (sp >> 8) & 0xFF
            block[at + 1] = sp & 0xFF
            block[at + 2] = (dp >> 8) & 0xFF
            block[at + 3] = dp & 0xFF
            at += 4
        # SHA-1 padding: 0x80, zeros, 64-bit big-endian bit length (fits in the last 2 bytes)
        block[at] = 0x80
        bits = at * 8
        block[62] = (bits >> 8) & 0xFF
        block[63] = bits & 0xFF

        for t in range(16):
            w[t] = (
                (np.int64(block[4 * t]) << 24)
                | (np.int64(block[4 * t + 1]) << 16)
                | (np.int64(block[4 * t + 2]) << 8)
                | np.int64(block[4 * t + 3])
            )
        for t in range(16, SCHEDULE):
            w[t] = _rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1)
        h0 = np.int64(0x67452301)
        h1 = np.int64(0xEFCDAB89)
        h2 = np.int64(0x98BADCFE)
        h3 = np.int64(0x10325476)
        h4 = np.int64(0xC3D2E1F0)
        a0, b0, c0, d0, e0 = h0, h1, h2, h3, h4
        # four loops of 20 rounds (one round function each): no per-round branch
        for t in range(20):
            f = (b0 & c0) | ((~b0 & M32) & d0)
            tmp = (_rotl(a0, 5) + f + e0 + 0x5A827999 + w[t]) & M32
            e0, d0, c0, b0, a0 = d0, c0, _rotl(b0, 30), a0, tmp
        for t in range(20, 40):
            f = b0 ^ c0 ^ d0
            tmp = (_rotl(a0, 5) + f + e0 + 0x6ED9EBA1 + w[t]) & M32
            e0, d0, c0, b0, a0 = d0, c0, _rotl(b0, 30), a0, tmp
        for t in range(40, 60):
            f = (b0 & c0) | (b0 & d0) | (c0 & d0)
            tmp = (_rotl(a0, 5) + f + e0 + 0x8F1BBCDC + w[t]) & M32
            e0, d0, c0, b0, a0 = d0, c0, _rotl(b0, 30), a0, tmp
        for t in range(60, 80):
            f = b0 ^ c0 ^ d0
            tmp = (_rotl(a0, 5) + f + e0 + 0xCA62C1D6 + w[t]) & M32
            e0, d0, c0, b0, a0 = d0, c0, _rotl(b0, 30), a0, tmp
        h0 = (h0 + a0) & M32
        h1 = (h1 + b0) & M32
        h2 = (h2 + c0) & M32
        h3 = (h3 + d0) & M32
        h4 = (h4 + e0) & M32
        for k in range(4):
            shift = 24 - 8 * k
            digest[k] = (h0 >> shift) & 0xFF
            digest[4 + k] = (h1 >> shift) & 0xFF
            digest[8 + k] = (h2 >> shift) & 0xFF
            digest[12 + k] = (h3 >> shift) & 0xFF
            digest[16 + k] = (h4 >> shift) & 0xFF

        # "1:" + base64 of the 20-byte digest (6 full groups, then 2 bytes + "=")
        out[i, 0] = 49  # "1"
        out[i, 1] = 58  # ":"
        o = 2
        for g in range(6):
            x = (
                (np.int64(digest[3 * g]) << 16)
                | (np.int64(digest[3 * g + 1]) << 8)
                | np.int64(digest[3 * g + 2])
            )
            out[i, o] = alphabet[(x >> 18) & 63]
            out[i, o + 1] = alphabet[(x >> 12) & 63]
            out[i, o + 2] = alphabet[(x >> 6) & 63]
            out[i, o + 3] = alphabet[x & 63]
            o += 4
        x = (np.int64(digest[18]) << 16) | (np.int64(digest[19]) << 8)
        out[i, o] = alphabet[(x >> 18) & 63]
        out[i, o + 1] = alphabet[(x >> 12) & 63]
        out[i, o + 2] = alphabet[(x >> 6) & 63]
        out[i, o + 3] = 61  # "="

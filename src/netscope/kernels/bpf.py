"""Classic BPF, interpreted over a whole batch at native speed (offline ``-f`` filters).

libpcap compiles a filter expression to classic BPF; for live capture the kernel runs it,
for capture files this kernel does, with libpcap's userland semantics (``pcap_filter``):

- loads past the captured length reject the packet (return 0), as do division/modulo by
  a zero X register;
- ``len`` is the packet's wire length;
- a non-zero return value keeps the packet (offline input is never truncated by it).

Programs arrive pre-decoded (``netscope.bpf.decode_program``): each instruction's opcode is
turned into one dense ``kind`` number so the interpreter dispatches with a short compare
chain, most frequent kinds first (loads, ``jeq``, ``jset``, ``ret``), instead of masking the
opcode into class/size/mode on every step. Several programs (one per link type) are
concatenated in one table; ``lt_prog[linktype]`` is the index of that link type's first
instruction, NO_PROGRAM if none has been compiled for it yet, or REJECT_ALL.
"""

from __future__ import annotations

import numpy as np

from netscope.kernels._jit import inline_helper, runtime_kernel
from netscope.kernels.byteorder import u16be, u32be

# instruction kinds (see netscope.bpf.decode_program)
K_LD_ABS_H = 0
K_JEQ_K = 1
K_LD_ABS_B = 2
K_RET_K = 3
K_JSET_K = 4
K_LDX_MSH = 5
K_LD_IND_H = 6
K_LD_ABS_W = 7
K_JGT_K = 8
K_JGE_K = 9
K_LD_IND_B = 10
K_LD_IND_W = 11
K_LD_LEN = 12
K_LD_IMM = 13
K_LD_MEM = 14
K_LDX_IMM = 15
K_LDX_MEM = 16
K_LDX_LEN = 17
K_ST = 18
K_STX = 19
K_JA = 20
K_JEQ_X = 21
K_JGT_X = 22
K_JGE_X = 23
K_JSET_X = 24
K_RET_A = 25
K_TAX = 26
K_TXA = 27
K_NEG = 28
K_ALU_K = 29  # operation in ``alu`` (BPF_OP >> 4)
K_ALU_X = 30

# BPF_OP >> 4
ALU_ADD = 0
ALU_SUB = 1
ALU_MUL = 2
ALU_DIV = 3
ALU_OR = 4
ALU_AND = 5
ALU_LSH = 6
ALU_RSH = 7
ALU_MOD = 9
ALU_XOR = 10

# lt_prog entries that are not instruction indices
NO_PROGRAM = -1  # not compiled yet
REJECT_ALL = -2  # the expression does not apply to this link type: drop its packets

# status returned by filter_batch
DONE = 0
NEED_PROGRAM = 1  # packet ``pos`` has a link type with no program: compile one, resume

M32 = 0xFFFFFFFF


@inline_helper
def _alu(op, a, v):  # type: ignore[no-untyped-def]
    """One 32-bit ALU operation; returns (result, ok) where ok=False means "reject"."""
    if op == ALU_ADD:
        return (a + v) & M32, True
    if op == ALU_SUB:
        return (a - v) & M32, True
    if op == ALU_AND:
        return a & v, True
    if op == ALU_OR:
        return a | v, True
    if op == ALU_XOR:
        return a ^ v, True
    if op == ALU_LSH:
        if v >= 32:
            return 0, True
        return (a << v) & M32, True
    if op == ALU_RSH:
        if v >= 32:
            return 0, True
        return a >> v, True
    if op == ALU_MUL:
        # split so the int64 product cannot overflow
        lo = (a * (v & 0xFFFF)) & M32
        hi = ((a * (v >> 16)) & 0xFFFF) << 16
        return (lo + hi) & M32, True
    if op == ALU_DIV:
        if v == 0:
            return 0, False
        return a // v, True
    if op == ALU_MOD:
        if v == 0:
            return 0, False
        return a % v, True
    return 0, False


@inline_helper
def run_program(kind, alu, jt, jf, k, start, buf, p, caplen, wirelen, mem):  # type: ignore[no-untyped-def]
    """Run the program starting at instruction ``start`` on ``buf[p : p + caplen]``.

    ``mem`` is the 16-word scratch memory (int64[16]). Returns the BPF return value.
    """
    a = 0
    x = 0
    pc = start
    while True:
        op = kind[pc]
        kk = k[pc]
        if op == K_LD_ABS_H:
            if kk + 2 > caplen:
                return 0
            a = u16be(buf, p + kk)
        elif op == K_JEQ_K:
            if a == kk:
                pc += jt[pc]
            else:
                pc += jf[pc]
        elif op == K_LD_ABS_B:
            if kk >= caplen:
                return 0
            a = np.int64(buf[p + kk])
        elif op == K_RET_K:
            return kk
        elif op == K_JSET_K:
            if (a & kk) != 0:
                pc += jt[pc]
            else:
                pc += jf[pc]
        elif op == K_LDX_MSH:
            if kk >= caplen:
                return 0
            x = (np.int64(buf[p + kk]) & 0xF) << 2
        elif op == K_LD_IND_H:
            o = x + kk
            if o + 2 > caplen:
                return 0
            a = u16be(buf, p + o)
        elif op == K_LD_ABS_W:
            if kk + 4 > caplen:
                return 0
            a = u32be(buf, p + kk)
        elif op == K_JGT_K:
            if a > kk:
                pc += jt[pc]
            else:
                pc += jf[pc]
        elif op == K_JGE_K:
            if a >= kk:
                pc += jt[pc]
            else:
                pc += jf[pc]
        elif op == K_LD_IND_B:
            o = x + kk
            if o >= caplen:
                return 0
            a = np.int64(buf[p + o])
        elif op == K_LD_IND_W:
            o = x + kk
            if o + 4 > caplen:
                return 0
            a = u32be(buf, p + o)
        elif op == K_LD_LEN:
            a = wirelen
        elif op == K_LD_IMM:
            a = kk
        elif op == K_LD_MEM:
            a = mem[kk]
        elif op == K_LDX_IMM:
            x = kk
        elif op == K_LDX_MEM:
            x = mem[kk]
        elif op == K_LDX_LEN:
            x = wirelen
        elif op == K_ST:
            mem[kk] = a
        elif op == K_STX:
            mem[kk] = x
        elif op == K_JA:
            pc += kk
        elif op == K_JEQ_X:
            if a == x:
                pc += jt[pc]
            else:
                pc += jf[pc]
        elif op == K_JGT_X:
            if a > x:
                pc += jt[pc]
            else:
                pc += jf[pc]
        elif op == K_JGE_X:
            if a >= x:
                pc += jt[pc]
            else:
                pc += jf[pc]
        elif op == K_JSET_X:
            if (a & x) != 0:
                pc += jt[pc]
            else:
                pc += jf[pc]
        elif op == K_RET_A:
            return a
        elif op == K_TAX:
            x = a
        elif op == K_TXA:
            a = x
        elif op == K_NEG:
            a = (-a) & M32
        elif op == K_ALU_K:
            a, ok = _alu(alu[pc], a, kk)
            if not ok:
                return 0
        elif op == K_ALU_X:
            a, ok = _alu(alu[pc], a, x)
            if not ok:
                return 0
        else:
            return 0
        pc += 1


@runtime_kernel
def filter_batch(  # type: ignore[no-untyped-def]
    kind,
    alu,
    jt,
    jf,
    k,
    lt_prog,
    buf,
    offsets,
    caplens,
    wirelens,
    ts_ns,
    linktypes,
    pos,
    count,
    kept,
    out_offsets,
    out_caplens,
    out_wirelens,
    out_ts_ns,
    out_linktypes,
):
    """Filter packets ``[pos, count)`` of a batch, appending the kept ones to ``out_*``.

    ``kept`` is how many entries ``out_*`` already hold (a resumed call continues there).
    The output arrays describe packets in the same ``buf`` (no packet bytes are copied).
    Returns ``(kept, pos, status)``: DONE, or NEED_PROGRAM with ``pos`` at the first packet
    whose link type (``linktypes[pos]``) has no program in ``lt_prog``.
    """
    mem = np.zeros(16, dtype=np.int64)
    nlt = lt_prog.shape[0]
    i = pos
    while i < count:
        lt = linktypes[i]
        start = -1
        if lt >= 0 and lt < nlt:
            start = lt_prog[lt]
        if start == NO_PROGRAM:
            return kept, i, NEED_PROGRAM
        if start < 0:  # REJECT_ALL: the filter cannot apply to this link type
            i += 1
            continue
        r = run_program(
            kind,
            alu,
            jt,
            jf,
            k,
            start,
            buf,
            offsets[i],
            np.int64(caplens[i]),
            np.int64(wirelens[i]),
            mem,
        )
        if r != 0:
            out_offsets[kept] = offsets[i]
            out_caplens[kept] = caplens[i]
            out_wirelens[kept] = wirelens[i]
            out_ts_ns[kept] = ts_ns[i]
            out_linktypes[kept] = lt
            kept += 1
        i += 1
    return kept, i, DONE

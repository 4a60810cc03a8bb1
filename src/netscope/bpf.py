"""BPF filters (``-f EXPR``): libpcap's compiler, our program form, and the offline filter.

Compiling uses libpcap itself (the copy bundled in the ``cypcap`` wheel), so an expression
means exactly what it means to tcpdump. The compiled program is kept as a plain
``(n, 4)`` array of ``(code, jt, jf, k)``; from there it is either

- packed into a ``struct sock_filter`` array and attached to an AF_PACKET socket
  (:meth:`BpfProgram.sock_fprog_bytes`), so the kernel drops unwanted packets before they
  reach the ring, or
- decoded for :mod:`netscope.kernels.bpf` and run over batches read from files
  (:class:`OfflineFilter`), producing a filtered batch that shares the original buffer.

A capture file may mix link types (pcapng with several interfaces); the offline filter
compiles one program per link type the first time a packet of that type shows up.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from netscope.batch import PacketBatch
from netscope.errors import UsageError

# libpcap's MAXIMUM_SNAPLEN; a program compiled for it returns a non-zero length for
# every accepted packet, whatever its size.
MAX_SNAPLEN = 262144

# Opcode fields (linux/filter.h, pcap/bpf.h).
_CLASS = 0x07
_LD, _LDX, _ST, _STX, _ALU, _JMP, _RET, _MISC = range(8)
_SIZE = 0x18
_W, _H, _B = 0x00, 0x08, 0x10
_MODE = 0xE0
_IMM, _ABS, _IND, _MEM, _LEN, _MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
_SRC_X = 0x08
_RVAL = 0x18
_RET_A = 0x10
_MEMWORDS = 16


def linktype_to_dlt(linktype: int) -> int:
    """The DLT_* value libpcap compiles for a file's LINKTYPE_* (as pcap_open does).

    Only a handful of link types below 104 differ between the two numbering spaces;
    LINKTYPE_RAW (101) is the one that matters in practice (DLT_RAW is 12 on Linux).
    """
    return {100: 11, 101: 12, 102: 15, 103: 16}.get(linktype, linktype)


@dataclass(frozen=True)
class BpfProgram:
    """A compiled filter: ``insns`` is an ``(n, 4)`` uint32 array of (code, jt, jf, k)."""

    expression: str
    linktype: int
    snaplen: int
    insns: npt.NDArray[np.uint32]
    _keepalive: list[object] = field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.insns.shape[0])

    def sock_filter_array(self) -> ctypes.Array[ctypes.c_uint64]:
        """The program as a C ``struct sock_filter[]`` (8 bytes per instruction)."""
        packed = b"".join(
            struct.pack("=HBBI", int(c), int(t), int(f), int(k)) for c, t, f, k in self.insns
        )
        arr = (ctypes.c_uint64 * len(self)).from_buffer_copy(packed)
        return arr

    def sock_fprog_bytes(self) -> bytes:
        """``struct sock_fprog`` for ``setsockopt(SO_ATTACH_FILTER)``.

        The struct holds a pointer to the instructions; the array is kept alive by this
        program object, so the bytes stay valid as long as the program does.
        """
        arr = self.sock_filter_array()
        self._keepalive.append(arr)
        return struct.pack("@HP", len(self), ctypes.addressof(arr))


# Lists this long take a second or more to compile: say so on stderr.
ANNOUNCE_TERMS = 500


def compile_filter(
    expression: str,
    linktype: int,
    snaplen: int = MAX_SNAPLEN,
    savefile_big_endian: bool | None = None,
) -> BpfProgram:
    """Compile ``expression`` for ``linktype`` (LINKTYPE_* number) with libpcap's compiler.

    ``savefile_big_endian`` is None for live capture. For a capture file it gives the file's
    byte order, and the program is compiled against a savefile exactly as tcpdump's would
    be: libpcap generates different code for files than for live capture (a BSD loopback
    (NULL) header in a file may carry any OS's AF_INET6 value, in the writer's byte order).

    A long top-level ``or`` list is compiled in groups and chained (see
    :mod:`netscope.bpf_split`: libpcap's optimizer is super-linear in the program size);
    everything else compiles whole. The compile runs in a thread without the GIL, so
    Ctrl-C interrupts it (:mod:`netscope.bpf_libpcap`).
    Raises UsageError (exit 2) ``invalid filter 'EXPR': <libpcap's message>``.
    """
    from netscope.bpf_libpcap import CompileError, compile_programs
    from netscope.bpf_split import (
        SPLIT_ABOVE_TERMS,
        chunk_expressions,
        join_programs,
        split_disjunction,
    )

    snaplen = snaplen if 0 < snaplen <= MAX_SNAPLEN else MAX_SNAPLEN
    target = (linktype_to_dlt(linktype), linktype, snaplen, savefile_big_endian)
    insns = None
    terms = split_disjunction(expression)
    if terms is not None and len(terms) > SPLIT_ABOVE_TERMS:
        import sys

        if len(terms) >= ANNOUNCE_TERMS:
            print(f"compiling a long filter ({len(terms)} terms)…", file=sys.stderr, flush=True)
        try:
            insns = join_programs(compile_programs(chunk_expressions(terms), *target))
        except CompileError:
            insns = None  # the whole expression's compile gives libpcap's own message
    if insns is None:
        try:
            insns = compile_programs([expression], *target)[0]
        except CompileError as exc:
            raise UsageError(f"invalid filter '{expression}': {exc}") from None
    return BpfProgram(expression, linktype, snaplen, insns)


def return_snaplen_program(snaplen: int) -> BpfProgram:
    """``ret #snaplen``: accepts everything, and makes the kernel truncate to snaplen."""
    insns = np.array([[0x06, 0, 0, snaplen]], dtype=np.uint32)
    return BpfProgram("", 0, snaplen, insns)


# --------------------------------------------------------------------------------------
# Decoding for the interpreter kernel
# --------------------------------------------------------------------------------------


@dataclass
class DecodedProgram:
    """Per-instruction arrays for :func:`netscope.kernels.bpf.run_program`."""

    kind: npt.NDArray[np.int32]
    alu: npt.NDArray[np.int32]
    jt: npt.NDArray[np.int32]
    jf: npt.NDArray[np.int32]
    k: npt.NDArray[np.int64]


def _kind(code: int) -> tuple[int, int]:
    """(kind, alu op) of one opcode; ValueError for opcodes the interpreter refuses."""
    from netscope.kernels import bpf as kb

    cls = code & _CLASS
    if cls == _LD:
        size, mode = code & _SIZE, code & _MODE
        table = {
            (_W, _ABS): kb.K_LD_ABS_W,
            (_H, _ABS): kb.K_LD_ABS_H,
            (_B, _ABS): kb.K_LD_ABS_B,
            (_W, _IND): kb.K_LD_IND_W,
            (_H, _IND): kb.K_LD_IND_H,
            (_B, _IND): kb.K_LD_IND_B,
            (_W, _LEN): kb.K_LD_LEN,
            (_W, _IMM): kb.K_LD_IMM,
            (_W, _MEM): kb.K_LD_MEM,
        }
        if (size, mode) in table:
            return table[(size, mode)], 0
    elif cls == _LDX:
        size, mode = code & _SIZE, code & _MODE
        table = {
            (_W, _IMM): kb.K_LDX_IMM,
            (_W, _MEM): kb.K_LDX_MEM,
            (_W, _LEN): kb.K_LDX_LEN,
            (_B, _MSH): kb.K_LDX_MSH,
        }
        if (size, mode) in table:
            return table[(size, mode)], 0
    elif cls == _ST:
        return kb.K_ST, 0
    elif cls == _STX:
        return kb.K_STX, 0
    elif cls == _ALU:
        op = (code & 0xF0) >> 4
        if op == 8:
            return kb.K_NEG, 0
        if op in (0, 1, 2, 3, 4, 5, 6, 7, 9, 10):
            return (kb.K_ALU_X if code & _SRC_X else kb.K_ALU_K), op
    elif cls == _JMP:
        op = code & 0xF0
        x = bool(code & _SRC_X)
        jumps = {
            0x10: (kb.K_JEQ_K, kb.K_JEQ_X),
            0x20: (kb.K_JGT_K, kb.K_JGT_X),
            0x30: (kb.K_JGE_K, kb.K_JGE_X),
            0x40: (kb.K_JSET_K, kb.K_JSET_X),
        }
        if op == 0x00:
            return kb.K_JA, 0
        if op in jumps:
            return jumps[op][1 if x else 0], 0
    elif cls == _RET:
        return (kb.K_RET_A if (code & _RVAL) == _RET_A else kb.K_RET_K), 0
    elif cls == _MISC:
        return (kb.K_TXA if code & 0x80 else kb.K_TAX), 0
    raise ValueError(f"unsupported BPF opcode 0x{code:04x}")


def decode_program(program: BpfProgram) -> DecodedProgram:
    """Validate ``program`` (as the kernel's ``sk_chk_filter`` would) and decode it.

    Runs once per program (a few dozen instructions), never per packet.
    """
    n = len(program)
    if n == 0:
        raise ValueError("empty BPF program")
    kind = np.empty(n, dtype=np.int32)
    alu = np.zeros(n, dtype=np.int32)
    jt = program.insns[:, 1].astype(np.int32)
    jf = program.insns[:, 2].astype(np.int32)
    k = program.insns[:, 3].astype(np.int64)
    from netscope.kernels import bpf as kb

    for pc, code in enumerate(program.insns[:, 0].tolist()):
        kind[pc], alu[pc] = _kind(int(code))
        kv = int(k[pc])
        if kind[pc] in (kb.K_LD_MEM, kb.K_LDX_MEM, kb.K_ST, kb.K_STX) and kv >= _MEMWORDS:
            raise ValueError(f"BPF instruction {pc}: scratch memory index {kv} out of range")
        if kind[pc] == kb.K_JA:
            if pc + 1 + kv >= n:
                raise ValueError(f"BPF instruction {pc}: jump out of range")
        elif (int(code) & _CLASS) == _JMP and pc + 1 + max(int(jt[pc]), int(jf[pc])) >= n:
            raise ValueError(f"BPF instruction {pc}: jump out of range")
    if kind[n - 1] not in (kb.K_RET_K, kb.K_RET_A) and kind[n - 1] != kb.K_JA:
        raise ValueError("BPF program does not end with a return")
    return DecodedProgram(kind, alu, jt, jf, k)


# --------------------------------------------------------------------------------------
# Specialised kernels: a program translated to straight-line numba code
# --------------------------------------------------------------------------------------

# Programs whose unfolded decision tree is larger than this run in the interpreter. numba's
# compile time grows faster than linearly with the generated code: measured on 2 busy
# cores, 'tcp port 443' (28 nodes) 1.9 s, an 8-port list (236 nodes) 4-5 s, a 99-port
# list (~2,700 lines) 155 s. The interpreter is compiled once for every program and costs
# ~20 ns/packet more (25 vs 4-5 ns on 'tcp port 443'), which a few seconds of compile only
# repay after ~10^8 packets: the everyday filters (a protocol, a port or two, a host or
# net, flags) stay specialised, longer programs are interpreted.
MAX_GENERATED_NODES = 200
# Python's tokenizer refuses more than 100 indentation levels.
MAX_GENERATED_DEPTH = 80
_M32 = "0xFFFFFFFF"


class _TooLarge(Exception):
    pass


def _is_ret(dp: DecodedProgram, pc: int) -> bool:
    from netscope.kernels import bpf as kb

    return int(dp.kind[pc]) in (kb.K_RET_K, kb.K_RET_A)


def _program_source(name: str, dp: DecodedProgram) -> str:
    """Python source of ``def name(buf, p, caplen, wirelen)`` equivalent to ``dp``.

    BPF jumps only go forward, so the program is a DAG; it is unfolded into nested ``if``
    statements (a branch that just returns becomes an early ``return``, keeping nesting
    shallow). Registers and scratch words are locals, constants are literals: LLVM then
    sees ordinary integer code and the per-packet cost is a handful of compares and loads.
    Raises _TooLarge when the unfolded tree is too big; the interpreter takes over then.
    """
    from netscope.kernels import bpf as kb

    lines: list[str] = []
    nodes = [0]

    def load(width: int, off: str) -> list[str]:
        if width == 1:
            return [f"a = np.int64(buf[p + {off}])"]
        if width == 2:
            return [f"a = u16be(buf, p + {off})"]
        return [f"a = u32be(buf, p + {off})"]

    def alu(op: int, v: str, const: bool) -> list[str]:
        if op == kb.ALU_ADD:
            return [f"a = (a + {v}) & {_M32}"]
        if op == kb.ALU_SUB:
            return [f"a = (a - {v}) & {_M32}"]
        if op == kb.ALU_AND:
            return [f"a = a & {v}"]
        if op == kb.ALU_OR:
            return [f"a = a | {v}"]
        if op == kb.ALU_XOR:
            return [f"a = a ^ {v}"]
        if op == kb.ALU_MUL:
            lo = f"(a * ({v} & 0xFFFF)) & {_M32}"
            hi = f"((a * ({v} >> 16)) & 0xFFFF) << 16"
            return [f"a = (({lo}) + ({hi})) & {_M32}"]
        if op in (kb.ALU_DIV, kb.ALU_MOD):
            sym = "//" if op == kb.ALU_DIV else "%"
            if const:
                return ["return 0"] if int(v) == 0 else [f"a = a {sym} {v}"]
            return [f"if {v} == 0:", "    return 0", f"a = a {sym} {v}"]
        if op in (kb.ALU_LSH, kb.ALU_RSH):
            expr = f"(a << {v}) & {_M32}" if op == kb.ALU_LSH else f"a >> {v}"
            if const:
                return ["a = np.int64(0)"] if int(v) >= 32 else [f"a = {expr}"]
            return [f"if {v} >= 32:", "    a = np.int64(0)", "else:", f"    a = {expr}"]
        return ["return 0"]

    def emit(pc: int, depth: int) -> None:
        if depth > MAX_GENERATED_DEPTH:
            raise _TooLarge
        pad = "    " * (depth + 1)
        while True:
            nodes[0] += 1
            if nodes[0] > MAX_GENERATED_NODES:
                raise _TooLarge
            kind, k = int(dp.kind[pc]), int(dp.k[pc])
            out: list[str] = []
            if kind in (kb.K_LD_ABS_B, kb.K_LD_ABS_H, kb.K_LD_ABS_W):
                width = {kb.K_LD_ABS_B: 1, kb.K_LD_ABS_H: 2, kb.K_LD_ABS_W: 4}[kind]
                out = [f"if {k + width} > caplen:", "    return 0", *load(width, str(k))]
            elif kind in (kb.K_LD_IND_B, kb.K_LD_IND_H, kb.K_LD_IND_W):
                width = {kb.K_LD_IND_B: 1, kb.K_LD_IND_H: 2, kb.K_LD_IND_W: 4}[kind]
                out = [f"o = x + {k}", f"if o + {width} > caplen:", "    return 0"]
                out += load(width, "o")
            elif kind == kb.K_LDX_MSH:
                msh = f"x = (np.int64(buf[p + {k}]) & 15) << 2"
                out = [f"if {k} >= caplen:", "    return 0", msh]
            elif kind == kb.K_LD_LEN:
                out = ["a = wirelen"]
            elif kind == kb.K_LDX_LEN:
                out = ["x = wirelen"]
            elif kind == kb.K_LD_IMM:
                out = [f"a = np.int64({k})"]
            elif kind == kb.K_LDX_IMM:
                out = [f"x = np.int64({k})"]
            elif kind == kb.K_LD_MEM:
                out = [f"a = m{k}"]
            elif kind == kb.K_LDX_MEM:
                out = [f"x = m{k}"]
            elif kind == kb.K_ST:
                out = [f"m{k} = a"]
            elif kind == kb.K_STX:
                out = [f"m{k} = x"]
            elif kind == kb.K_TAX:
                out = ["x = a"]
            elif kind == kb.K_TXA:
                out = ["a = x"]
            elif kind == kb.K_NEG:
                out = [f"a = (-a) & {_M32}"]
            elif kind == kb.K_ALU_K:
                out = alu(int(dp.alu[pc]), str(k), True)
            elif kind == kb.K_ALU_X:
                out = alu(int(dp.alu[pc]), "x", False)
            elif kind == kb.K_RET_K:
                lines.append(f"{pad}return {k}")
                return
            elif kind == kb.K_RET_A:
                lines.append(f"{pad}return a")
                return
            elif kind == kb.K_JA:
                pc = pc + 1 + k
                continue
            else:
                cond = {
                    kb.K_JEQ_K: f"a == {k}",
                    kb.K_JGT_K: f"a > {k}",
                    kb.K_JGE_K: f"a >= {k}",
                    kb.K_JSET_K: f"(a & {k}) != 0",
                    kb.K_JEQ_X: "a == x",
                    kb.K_JGT_X: "a > x",
                    kb.K_JGE_X: "a >= x",
                    kb.K_JSET_X: "(a & x) != 0",
                }[kind]
                t = pc + 1 + int(dp.jt[pc])
                f = pc + 1 + int(dp.jf[pc])
                if t == f:
                    pc = t
                    continue
                if _is_ret(dp, t):
                    lines.append(f"{pad}if {cond}:")
                    emit(t, depth + 1)
                    pc = f
                    continue
                if _is_ret(dp, f):
                    lines.append(f"{pad}if not ({cond}):")
                    emit(f, depth + 1)
                    pc = t
                    continue
                lines.append(f"{pad}if {cond}:")
                emit(t, depth + 1)
                lines.append(f"{pad}else:")
                emit(f, depth + 1)
                return
            lines.extend(pad + line for line in out)
            if out and out[-1] == "return 0":
                return
            pc += 1

    emit(0, 0)
    head = [
        "@inline_helper",
        f"def {name}(buf, p, caplen, wirelen):  # type: ignore[no-untyped-def]",
        "    a = np.int64(0)",
        "    x = np.int64(0)",
        "    o = np.int64(0)",
        *[f"    m{i} = np.int64(0)" for i in range(_MEMWORDS)],
    ]
    return "\n".join(head + lines) + "\n"


def _batch_source(linktypes: list[tuple[int, str | None]]) -> str:
    """The batch loop: dispatch on link type to each program (None = reject all)."""
    body = [
        "@kernel",
        "def filter_batch(buf, offsets, caplens, wirelens, ts_ns, linktypes, pos, count, kept,"
        " out_offsets, out_caplens, out_wirelens, out_ts_ns, out_linktypes):"
        "  # type: ignore[no-untyped-def]",
        "    i = pos",
        "    while i < count:",
        "        lt = linktypes[i]",
        "        p = offsets[i]",
        "        caplen = np.int64(caplens[i])",
        "        wirelen = np.int64(wirelens[i])",
    ]
    word = "if"
    for lt, fn in linktypes:
        body.append(f"        {word} lt == {lt}:")
        body.append(f"            r = {fn}(buf, p, caplen, wirelen)" if fn else "            r = 0")
        word = "elif"
    body += [
        "        else:",
        "            return kept, i, 1",
        "        if r != 0:",
        "            out_offsets[kept] = p",
        "            out_caplens[kept] = caplens[i]",
        "            out_wirelens[kept] = wirelens[i]",
        "            out_ts_ns[kept] = ts_ns[i]",
        "            out_linktypes[kept] = lt",
        "            kept += 1",
        "        i += 1",
        "    return kept, i, 0",
    ]
    return "\n".join(body) + "\n"


def generated_filter_source(programs: dict[int, DecodedProgram | None]) -> str:
    """A whole module: one function per link type's program and the batch loop."""
    parts = [
        '"""Generated by netscope.bpf from compiled BPF programs; do not edit."""',
        "import numpy as np",
        "from netscope.kernels._jit import inline_helper, kernel",
        "from netscope.kernels.byteorder import u16be, u32be",
        "",
    ]
    entries: list[tuple[int, str | None]] = []
    for lt, dp in sorted(programs.items()):
        if dp is None:
            entries.append((lt, None))
            continue
        name = f"prog_{lt}"
        parts.append(_program_source(name, dp))
        entries.append((lt, name))
    parts.append(_batch_source(entries))
    return "\n".join(parts)


def _generated_dir() -> str:
    import os

    from netscope.kernels._jit import _default_cache_dir

    return os.path.join(os.environ.get("NUMBA_CACHE_DIR") or _default_cache_dir(), "bpf")


def load_generated_filter(programs: dict[int, DecodedProgram | None]) -> object | None:
    """Compile (or load from the numba cache) the specialised kernel for ``programs``.

    The module is written once under the kernel cache directory, named by a hash of its
    source, so the next run with the same filter loads machine code from numba's cache
    instead of compiling again. Returns the kernel, or None if a program is too large to
    unfold or the cache directory is not writable (the interpreter is used then).
    """
    import hashlib
    import importlib.util
    import os
    import sys

    try:
        source = generated_filter_source(programs)
    except _TooLarge:
        return None
    digest = hashlib.sha1(source.encode()).hexdigest()[:20]
    name = f"netscope_bpf_{digest}"
    if name in sys.modules:
        return sys.modules[name].filter_batch
    directory = _generated_dir()
    path = os.path.join(directory, f"{name}.py")
    marker = path + ".compiled"
    try:
        os.makedirs(directory, exist_ok=True)
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(source)
            os.replace(tmp, path)
    except OSError:
        return None
    first = not os.path.exists(marker)
    if first:
        print("compiling filter (first use only)…", file=sys.stderr, flush=True)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    fn = module.filter_batch
    if first:
        try:
            with open(marker, "w"):
                pass
        except OSError:
            pass
    return fn


# --------------------------------------------------------------------------------------
# Offline filtering
# --------------------------------------------------------------------------------------


class OfflineFilter:
    """Applies one expression to batches from a file, compiling per link type on demand.

    :meth:`apply` returns a batch holding only the kept packets. It shares the input's
    byte buffer; its per-packet arrays are this filter's own (reused on the next call), so
    it is valid exactly as long as the input batch is.

    Programs run as a specialised kernel generated from the BPF code (see
    :func:`load_generated_filter`); ``specialise=False`` (or a program too large to unfold)
    uses the general interpreter in :mod:`netscope.kernels.bpf` instead. Both follow
    libpcap's ``pcap_filter`` semantics.
    """

    def __init__(
        self,
        expression: str,
        snaplen: int = MAX_SNAPLEN,
        specialise: bool = True,
        big_endian: bool = False,
        savefile: bool = True,
    ) -> None:
        self.expression = expression
        self.snaplen = snaplen
        self.big_endian = big_endian  # the capture file's byte order (see compile_filter)
        self.savefile = savefile  # False: frames from a live capture (see compile_filter)
        self._source: object | None = None
        self.specialise = specialise
        self.programs: dict[int, BpfProgram | None] = {}  # None: rejects the whole link type
        self.kept = 0  # packets kept so far (numbers the filtered batches)
        self._lt_prog = np.full(1, -1, dtype=np.int64)
        self._tables: DecodedProgram | None = None
        self._generated: Any = None
        self._cap = 0
        self._alloc(4096)

    @classmethod
    def for_source(cls, expression: str, source: object, **kwargs: Any) -> OfflineFilter:
        """A filter for batches from ``source`` (a PcapReader or PcapngReader).

        The file's byte order matters to libpcap's compiler; a pcapng reader only knows it
        once it has read the section header, so it is looked up when a program is compiled.
        """
        flt = cls(expression, **kwargs)
        flt._source = source
        return flt

    def _file_big_endian(self) -> bool:
        src = self._source
        if src is None:
            return self.big_endian
        header = getattr(src, "header", None)
        if header is not None:
            return bool(header.big_endian)
        return bool(getattr(src, "big_endian", False))

    @property
    def specialised(self) -> bool:
        """True when the generated kernel (not the interpreter) runs the programs."""
        return self._generated is not None

    def _alloc(self, cap: int) -> None:
        self._cap = cap
        self._offsets = np.empty(cap, dtype=np.int64)
        self._caplens = np.empty(cap, dtype=np.int32)
        self._wirelens = np.empty(cap, dtype=np.int32)
        self._ts = np.empty(cap, dtype=np.int64)
        self._linktypes = np.empty(cap, dtype=np.int32)

    def prepare(self, linktype: int) -> BpfProgram | None:
        """Compile (once) for ``linktype``; UsageError if the expression is invalid for it."""
        if linktype not in self.programs:
            self.programs[linktype] = compile_filter(
                self.expression,
                linktype,
                self.snaplen,
                self._file_big_endian() if self.savefile else None,
            )
            self._rebuild()
        return self.programs[linktype]

    def reject_linktype(self, linktype: int) -> None:
        """Drop every packet of ``linktype`` (the expression cannot apply to it)."""
        self.programs[linktype] = None
        self._rebuild()

    def _rebuild(self) -> None:
        decoded = {
            lt: (decode_program(p) if p is not None else None) for lt, p in self.programs.items()
        }
        self._generated = load_generated_filter(decoded) if self.specialise else None
        parts = [d for d in decoded.values() if d is not None]
        size = max(max(self.programs) + 1, 1)
        self._lt_prog = np.full(size, -1, dtype=np.int64)
        start = 0
        for lt, d in decoded.items():
            if d is None:
                self._lt_prog[lt] = -2
            else:
                self._lt_prog[lt] = start
                start += len(d.kind)
        if not parts:
            parts = [decode_program(return_snaplen_program(1))]
        self._tables = DecodedProgram(
            np.concatenate([p.kind for p in parts]),
            np.concatenate([p.alu for p in parts]),
            np.concatenate([p.jt for p in parts]),
            np.concatenate([p.jf for p in parts]),
            np.concatenate([p.k for p in parts]),
        )

    def _run(self, batch: PacketBatch, pos: int, kept: int) -> tuple[int, int, int]:
        from netscope.kernels.bpf import NEED_PROGRAM, filter_batch

        if self._tables is None:
            return kept, pos, NEED_PROGRAM
        out = (self._offsets, self._caplens, self._wirelens, self._ts, self._linktypes)
        b = batch
        if self._generated is not None:
            kept, pos, status = self._generated(
                b.buf, b.offsets, b.caplens, b.wirelens, b.ts_ns, b.linktypes,
                pos, b.count, kept, *out,
            )  # fmt: skip
        else:
            t = self._tables
            kept, pos, status = filter_batch(
                t.kind, t.alu, t.jt, t.jf, t.k, self._lt_prog,
                b.buf, b.offsets, b.caplens, b.wirelens, b.ts_ns, b.linktypes,
                pos, b.count, kept, *out,
            )  # fmt: skip
        return int(kept), int(pos), int(status)

    def apply(self, batch: PacketBatch) -> PacketBatch:
        """The packets of ``batch`` the filter accepts (views over the same buffer)."""
        from netscope.kernels.bpf import NEED_PROGRAM

        n = batch.count
        if n > self._cap:
            self._alloc(max(n, 2 * self._cap))
        kept, pos = 0, 0
        while n:
            kept, pos, status = self._run(batch, pos, kept)
            if status != NEED_PROGRAM or pos >= n:
                break
            self.prepare(int(batch.linktypes[pos]))
        first = self.kept + 1
        self.kept += kept
        return PacketBatch(
            batch.buf,
            self._offsets,
            self._caplens,
            self._wirelens,
            self._ts,
            self._linktypes,
            kept,
            first,
        )

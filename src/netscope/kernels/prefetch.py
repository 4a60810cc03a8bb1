"""Software prefetch for kernels that walk a buffer faster than the hardware can guess.

The record scanners follow a chain — each record's length says where the next one
starts — so every header read waits for the previous one. When a chunk has just been
filled by the reader thread on the other core, those reads come from L3 or DRAM and the
chain serialises their latency (~30 ns per record measured on small packets). Asking for
the bytes a few kilobytes ahead turns the chain into streaming reads.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx: Any, buf: Any, off: Any) -> Any:
    """Hint that ``buf[off]`` will be read soon (no effect on results; any ``off`` is safe:
    a prefetch never faults, so ``off`` may lie past the end of the buffer)."""
    if not isinstance(buf, types.Array) or not isinstance(off, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array = context.make_array(signature.args[0])(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        byte_ptr = builder.bitcast(array.data, ir.IntType(8).as_pointer())
        # no 'inbounds': the address may be past the end, which a prefetch tolerates
        address = builder.gep(byte_ptr, [index])
        fn_type = ir.FunctionType(
            ir.VoidType(),
            [ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(32), ir.IntType(32)],
        )
        fn = cgutils.get_or_insert_function(builder.module, fn_type, "llvm.prefetch.p0i8")
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(
            fn,
            [
                address,
                ir.Constant(ir.IntType(32), 0),
                ir.Constant(ir.IntType(32), 3),
                ir.Constant(ir.IntType(32), 1),
            ],
        )
        return context.get_dummy_value()

    return types.none(buf, off), codegen

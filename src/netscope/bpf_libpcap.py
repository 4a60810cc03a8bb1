"""libpcap's filter compiler, called so that Ctrl-C and SIGTERM are honoured while it runs.

libpcap's optimizer is super-linear in the program size: a 300-clause ``port`` list takes
~20 s in ``pcap_compile`` and a 1,000-clause one over two minutes (tcpdump pays the same).
cypcap's ``compile`` holds the GIL for the whole call, so the main thread could not run its
signal handlers: a Ctrl-C was only seen after the compile finished. Here the bundled
libpcap is called through ctypes, which releases the GIL, in a daemon thread; the main
thread waits in short, interruptible joins, so a KeyboardInterrupt is raised within
~0.1 s. An abandoned compile finishes (or dies with the process) on its own.

The long expressions themselves are kept away from the optimizer by :mod:`netscope.bpf_split`.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import tempfile
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from netscope.pcaplib import bundled_library_path

NETMASK_UNKNOWN = 0xFFFFFFFF
_POLL_S = 0.1


class CompileError(Exception):
    """libpcap refused the expression; ``str(exc)`` is libpcap's message."""


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


@functools.cache
def _lib() -> ctypes.CDLL:
    """Our own handle on the bundled libpcap (the prototypes set here stay local)."""
    import cypcap  # noqa: F401  (loads the library and its libnl dependencies first)

    lib = ctypes.CDLL(str(bundled_library_path()))
    vp, ip, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "pcap_open_dead": (vp, [ip, ip]),
        "pcap_open_offline": (vp, [cp, cp]),
        "pcap_compile": (ip, [vp, ctypes.POINTER(_BpfProgram), cp, ip, ctypes.c_uint32]),
        "pcap_geterr": (cp, [vp]),
        "pcap_freecode": (None, [ctypes.POINTER(_BpfProgram)]),
        "pcap_close": (None, [vp]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def _compile_on(handle: int, expression: str, optimize: bool) -> npt.NDArray[np.uint32]:
    """``pcap_compile`` on an open handle: the ``(n, 4)`` program, or CompileError."""
    lib = _lib()
    prog = _BpfProgram()
    status = lib.pcap_compile(
        handle, ctypes.byref(prog), expression.encode(), int(optimize), NETMASK_UNKNOWN
    )
    if status < 0:
        message = lib.pcap_geterr(handle) or b"compile failed"
        raise CompileError(message.decode(errors="replace"))
    try:
        raw = ctypes.string_at(prog.bf_insns, 8 * prog.bf_len)
    finally:
        lib.pcap_freecode(ctypes.byref(prog))
    rows = np.frombuffer(
        raw, dtype=np.dtype([("c", "=u2"), ("t", "u1"), ("f", "u1"), ("k", "=u4")])
    )
    out = np.empty((len(rows), 4), dtype=np.uint32)
    for col, name in enumerate(("c", "t", "f", "k")):
        out[:, col] = rows[name]
    return out


def _compile_blocking(
    expressions: list[str],
    dlt: int,
    linktype: int,
    snaplen: int,
    big_endian: bool | None,
    optimize: bool,
) -> list[npt.NDArray[np.uint32]]:
    """Compile every expression on one handle (a dead one, or a header-only savefile)."""
    lib = _lib()
    name = None
    if big_endian is None:
        handle = lib.pcap_open_dead(dlt, snaplen)
    else:
        # libpcap generates different code for a savefile than for live capture (e.g. a
        # BSD loopback header's AF value in the writer's byte order): compile against a
        # header-only file with the capture's link type and byte order, as tcpdump does.
        order = ">" if big_endian else "<"
        header = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)
        fd, name = tempfile.mkstemp(prefix="netscope-bpf-", suffix=".pcap")
        with os.fdopen(fd, "wb") as fh:
            fh.write(header)
        errbuf = ctypes.create_string_buffer(512)
        handle = lib.pcap_open_offline(name.encode(), errbuf)
        if not handle:
            os.unlink(name)
            raise CompileError(errbuf.value.decode(errors="replace"))
    if not handle:
        raise CompileError("cannot open a libpcap handle")
    try:
        return [_compile_on(handle, e, optimize) for e in expressions]
    finally:
        lib.pcap_close(handle)
        if name is not None:
            os.unlink(name)


def compile_programs(
    expressions: list[str],
    dlt: int,
    linktype: int,
    snaplen: int,
    big_endian: bool | None = None,
    optimize: bool = True,
) -> list[npt.NDArray[np.uint32]]:
    """Compile ``expressions`` (in one worker thread) and wait for them interruptibly.

    ``dlt`` is used for a live handle (``big_endian`` None), ``linktype`` for the savefile
    header otherwise. Raises CompileError with libpcap's message for an invalid expression;
    a KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one) while waiting propagates at
    once.
    """
    result: list[list[npt.NDArray[np.uint32]]] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.append(
                _compile_blocking(expressions, dlt, linktype, snaplen, big_endian, optimize)
            )
        except BaseException as exc:  # handed to the waiting thread
            error.append(exc)

    worker = threading.Thread(target=work, name="netscope-bpf-compile", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(_POLL_S)
    if error:
        raise error[0]
    return result[0]

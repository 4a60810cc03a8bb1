"""Live capture through libpcap — the copy bundled in the ``cypcap`` wheel.

Used where AF_PACKET is not available (not Linux, or an interface type the ring backend
does not handle) and selectable for comparison (``NETSCOPE_CAPTURE_BACKEND=libpcap``).

cypcap's own read API returns a Python object per packet, which the hot path cannot
afford; so this module calls the same bundled ``libpcap.so`` through ctypes and hands
``pcap_dispatch`` a numba-compiled C callback (:func:`_make_callback`). libpcap calls it for
each packet with a pointer into its own buffer; the callback copies the packet into a batch
arena (one numpy array: a small header, the per-packet arrays, then packet bytes). The
only Python work is one ctypes call per ``pcap_dispatch`` (hundreds of packets), and
ctypes releases the GIL for it. libpcap's buffer is reused after the call returns, so this
backend copies each packet once — the price of portability; AF_PACKET is zero-copy.

Filters are compiled by libpcap on the live handle (``pcap_compile``), so libpcap's Linux
specifics (VLAN tags stripped by the kernel, cooked headers) are handled as tcpdump does.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import select
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from netscope.batch import PacketBatch
from netscope.config import CaptureConfig
from netscope.errors import CaptureError, UsageError
from netscope.pcaplib import bundled_library_path
from netscope.sources.base import SourceReport

log = logging.getLogger(__name__)

PCAP_ERRBUF_SIZE = 256
PCAP_ERROR = -1
PCAP_ERROR_NO_SUCH_DEVICE = -5
PCAP_ERROR_PERM_DENIED = -8
PCAP_ERROR_IFACE_NOT_UP = -9
PCAP_ERROR_PROMISC_PERM_DENIED = -11
PCAP_TSTAMP_PRECISION_NANO = 1
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF

# arena header words (int64)
H_TOTAL, H_CAP, H_COUNT, H_DATA_START, H_DATA_POS, H_DATA_END, H_SNAPLEN, H_OVERFLOW = range(8)
HEADER_BYTES = 64
DATA_BYTES = 32 * 1024 * 1024
MAX_BATCH_PACKETS = 32768
POLL_SLICE_MS = 100


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _PcapStat(ctypes.Structure):
    _fields_ = [
        ("ps_recv", ctypes.c_uint),
        ("ps_drop", ctypes.c_uint),
        ("ps_ifdrop", ctypes.c_uint),
    ]


@functools.cache
def libpcap() -> ctypes.CDLL:
    """The bundled libpcap, with the prototypes this module uses."""
    import cypcap  # noqa: F401  (loads the same library first, under its own soname)

    lib = ctypes.CDLL(str(bundled_library_path()))
    vp, ip, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "pcap_create": (vp, [cp, cp]),
        "pcap_set_snaplen": (ip, [vp, ip]),
        "pcap_set_promisc": (ip, [vp, ip]),
        "pcap_set_timeout": (ip, [vp, ip]),
        "pcap_set_buffer_size": (ip, [vp, ip]),
        "pcap_set_immediate_mode": (ip, [vp, ip]),
        "pcap_set_tstamp_precision": (ip, [vp, ip]),
        "pcap_activate": (ip, [vp]),
        "pcap_geterr": (cp, [vp]),
        "pcap_statustostr": (cp, [ip]),
        "pcap_datalink": (ip, [vp]),
        "pcap_snapshot": (ip, [vp]),
        "pcap_compile": (ip, [vp, ctypes.POINTER(_BpfProgram), cp, ip, ctypes.c_uint32]),
        "pcap_setfilter": (ip, [vp, ctypes.POINTER(_BpfProgram)]),
        "pcap_freecode": (None, [ctypes.POINTER(_BpfProgram)]),
        "pcap_setnonblock": (ip, [vp, ip, cp]),
        "pcap_get_selectable_fd": (ip, [vp]),
        "pcap_dispatch": (ip, [vp, ip, vp, vp]),
        "pcap_stats": (ip, [vp, ctypes.POINTER(_PcapStat)]),
        "pcap_close": (None, [vp]),
        "pcap_lib_version": (cp, []),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


@functools.cache
def _make_callback() -> Any:
    """The compiled ``pcap_handler``: append one packet to the arena behind ``user``."""
    import numba
    from numba import types

    from netscope.kernels import _jit  # noqa: F401  (sets the numba cache dir first)

    sig = types.void(types.voidptr, types.voidptr, types.voidptr)

    @numba.cfunc(sig, cache=True)
    def on_packet(user, hdr, data):  # type: ignore[no-untyped-def]
        head = numba.carray(user, (8,), np.int64)
        arena = numba.carray(user, (head[H_TOTAL],), np.uint8)
        cap = head[H_CAP]
        n = head[H_COUNT]
        h64 = numba.carray(hdr, (2,), np.int64)
        h32 = numba.carray(hdr, (6,), np.uint32)
        caplen = np.int64(h32[4])
        if caplen > head[H_SNAPLEN]:
            caplen = head[H_SNAPLEN]
        pos = head[H_DATA_POS]
        if n >= cap or pos + caplen > head[H_DATA_END]:
            head[H_OVERFLOW] += 1
            return
        o = HEADER_BYTES
        offsets = arena[o : o + 8 * cap].view(np.int64)
        o += 8 * cap
        caplens = arena[o : o + 4 * cap].view(np.int32)
        o += 4 * cap
        wirelens = arena[o : o + 4 * cap].view(np.int32)
        o += 4 * cap
        ts_ns = arena[o : o + 8 * cap].view(np.int64)
        src = numba.carray(data, (caplen,), np.uint8)
        arena[pos : pos + caplen] = src
        offsets[n] = pos
        caplens[n] = caplen
        wirelens[n] = np.int32(h32[5])
        ts_ns[n] = h64[0] * 1_000_000_000 + h64[1]  # nanosecond precision was requested
        head[H_COUNT] = n + 1
        head[H_DATA_POS] = pos + caplen

    return on_packet


def dlt_to_linktype(dlt: int) -> int:
    """LINKTYPE_* for a DLT_* from pcap_datalink (only DLT_RAW differs on Linux)."""
    return {12: 101, 14: 101}.get(dlt, dlt)


class LibpcapSource:
    """A live interface read through the bundled libpcap."""

    backend = "libpcap"

    def __init__(self, capture: CaptureConfig, interface: str) -> None:
        from netscope.sources.afpacket import permission_hint

        self.interface = interface
        self.report = SourceReport(kind="live")
        self.user_space_filter: object | None = None
        self._lib = libpcap()
        lib = self._lib
        errbuf = ctypes.create_string_buffer(PCAP_ERRBUF_SIZE)
        handle = lib.pcap_create(interface.encode(), errbuf)
        if not handle:
            raise CaptureError(f"cannot capture on {interface}: {errbuf.value.decode()}")
        self._p: int | None = handle
        try:
            lib.pcap_set_snaplen(handle, capture.snaplen)
            lib.pcap_set_promisc(handle, int(capture.promiscuous))
            lib.pcap_set_timeout(handle, capture.timeout_ms)
            if capture.buffer_size_mb:
                lib.pcap_set_buffer_size(handle, capture.buffer_size_mb * (1 << 20))
            lib.pcap_set_immediate_mode(handle, int(capture.immediate_mode))
            lib.pcap_set_tstamp_precision(handle, PCAP_TSTAMP_PRECISION_NANO)
            status = lib.pcap_activate(handle)
            if status < 0:
                message = self._error(status)
                if status in (PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED):
                    raise CaptureError(
                        f"cannot capture on {interface}: permission denied",
                        hint=permission_hint(),
                    )
                if status == PCAP_ERROR_NO_SUCH_DEVICE:
                    raise CaptureError(
                        f"no such interface '{interface}'", hint="list them with 'netscope -l'"
                    )
                raise CaptureError(f"cannot capture on {interface}: {message}")
            if status > 0:
                log.warning("libpcap on %s: %s", interface, self._error(status))
            self.linktype = dlt_to_linktype(lib.pcap_datalink(handle))
            self.snaplen = int(lib.pcap_snapshot(handle))
            self.report.link_types.add(self.linktype)
            if capture.filter is not None:
                self._set_filter(capture.filter)
            if lib.pcap_setnonblock(handle, 1, errbuf) < 0:
                raise CaptureError(f"cannot set non-blocking mode: {errbuf.value.decode()}")
            self._fd = lib.pcap_get_selectable_fd(handle)
        except BaseException:
            self.close()
            raise
        self._arena, self._views = _allocate_arena(MAX_BATCH_PACKETS, DATA_BYTES, self.snaplen)
        self._callback = _make_callback()

    def _error(self, status: int) -> str:
        assert self._p is not None
        text = self._lib.pcap_geterr(self._p) or b""
        if not text:
            text = self._lib.pcap_statustostr(status) or b""
        return str(text.decode(errors="replace"))

    def _set_filter(self, expression: str) -> None:
        """Compile on the live handle (libpcap's Linux specifics apply) and install."""
        assert self._p is not None
        prog = _BpfProgram()
        lib = self._lib
        status = lib.pcap_compile(
            self._p, ctypes.byref(prog), expression.encode(), 1, PCAP_NETMASK_UNKNOWN
        )
        if status < 0:
            raise UsageError(f"invalid filter '{expression}': {self._error(PCAP_ERROR)}")
        try:
            if lib.pcap_setfilter(self._p, ctypes.byref(prog)) < 0:
                raise CaptureError(f"cannot set the filter: {self._error(PCAP_ERROR)}")
        finally:
            lib.pcap_freecode(ctypes.byref(prog))

    def batches(self, stop: Callable[[], bool] = lambda: False) -> Iterator[PacketBatch]:
        """Batches copied out of libpcap's buffer; empty ones after a wait with no packet."""
        assert self._p is not None
        lib, p = self._lib, self._p
        head, offsets, caplens, wirelens, ts_ns = self._views
        linktypes = np.full(MAX_BATCH_PACKETS, self.linktype, dtype=np.int32)
        user = self._arena.ctypes.data
        callback = self._callback.address
        snaplen = max(self.snaplen, 1)
        poller = select.poll()
        if self._fd >= 0:
            poller.register(self._fd, select.POLLIN | select.POLLERR)
        index = 1
        while not stop():
            head[H_COUNT] = 0
            head[H_DATA_POS] = head[H_DATA_START]
            waited = False
            while True:
                room_pkts = int(head[H_CAP] - head[H_COUNT])
                room_data = int(head[H_DATA_END] - head[H_DATA_POS]) // snaplen
                want = min(room_pkts, room_data)
                if want <= 0:
                    break
                got = lib.pcap_dispatch(p, want, callback, user)
                if got < 0:
                    if got == -2:  # pcap_breakloop
                        break
                    raise CaptureError(f"capture on {self.interface} failed: {self._error(got)}")
                if got < want:
                    if got == 0 and head[H_COUNT] == 0 and not waited:
                        poller.poll(POLL_SLICE_MS)
                        waited = True
                        continue
                    break
            n = int(head[H_COUNT])
            self.report.packets_read += n
            yield PacketBatch(self._arena, offsets, caplens, wirelens, ts_ns, linktypes, n, index)
            index += n

    def stats(self) -> tuple[int, int, int]:
        """``(received, kernel dropped, interface dropped)`` from ``pcap_stats``."""
        if self._p is None:
            raise OSError("capture closed")
        st = _PcapStat()
        if self._lib.pcap_stats(self._p, ctypes.byref(st)) < 0:
            raise OSError(self._error(PCAP_ERROR))
        return int(st.ps_recv), int(st.ps_drop), int(st.ps_ifdrop)

    def close(self) -> None:
        p, self._p = self._p, None
        if p:
            self._lib.pcap_close(p)


def _allocate_arena(
    cap: int, data_bytes: int, snaplen: int
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One array for header, per-packet arrays and packet bytes (see the cfunc)."""
    data_start = HEADER_BYTES + cap * (8 + 4 + 4 + 8)
    total = data_start + max(data_bytes, 4 * max(snaplen, 1))
    arena = np.zeros(total, dtype=np.uint8)
    head = arena[:HEADER_BYTES].view(np.int64)
    head[H_TOTAL] = total
    head[H_CAP] = cap
    head[H_DATA_START] = data_start
    head[H_DATA_POS] = data_start
    head[H_DATA_END] = total
    head[H_SNAPLEN] = snaplen
    o = HEADER_BYTES
    offsets = arena[o : o + 8 * cap].view(np.int64)
    o += 8 * cap
    caplens = arena[o : o + 4 * cap].view(np.int32)
    o += 4 * cap
    wirelens = arena[o : o + 4 * cap].view(np.int32)
    o += 4 * cap
    ts_ns = arena[o : o + 8 * cap].view(np.int64)
    return arena, (head, offsets, caplens, wirelens, ts_ns)


def lib_version() -> str:
    """``libpcap version 1.10.x (...)`` of the bundled library."""
    return str(libpcap().pcap_lib_version().decode())

"""Linux AF_PACKET capture through a TPACKET_V3 memory-mapped ring (zero copy).

The kernel writes packets into blocks of a ring shared with us by ``mmap``; a block
becomes ours when it is full or its retire timeout (``capture.timeout_ms``) expires. A
compiled kernel (:func:`netscope.kernels.ring.scan_blocks`) walks the ready blocks and
fills batch arrays whose buffer *is* the ring: decoding reads packet bytes where the kernel
put them. The blocks go back to the kernel (``tp_status = TP_STATUS_KERNEL``) only when the
batch has been processed, i.e. when the next batch is requested.

Set-up follows libpcap's order so no unfiltered packet slips in: socket with protocol 0
(receives nothing), ring, filter, then ``bind`` to the interface with ETH_P_ALL.

Link types come from the interface's ARPHRD type: Ethernet and loopback (Linux fakes an
Ethernet header on ``lo``) capture raw frames as LINKTYPE_ETHERNET; interfaces without a
link header (tun, ARPHRD_NONE) as LINKTYPE_RAW; anything else, and ``any``, in cooked mode
(SOCK_DGRAM) with a Linux SLL header built in the ring in front of each packet.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
import select
import socket
import struct
import sys
from collections.abc import Callable, Iterator

import numpy as np

from netscope.batch import PacketBatch
from netscope.config import CaptureConfig
from netscope.errors import CaptureError
from netscope.sources.base import SourceReport

log = logging.getLogger(__name__)

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_RESERVE = 12
TPACKET_V3 = 2
PACKET_MR_PROMISC = 1
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003

ARPHRD_ETHER = 1
ARPHRD_IEEE802 = 6
ARPHRD_LOOPBACK = 772
ARPHRD_IEEE80211_RADIOTAP = 803
ARPHRD_NONE = 0xFFFE

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IEEE802_11_RADIOTAP = 127

DEFAULT_RING_MB = 32
BLOCK_SIZE = 1 << 20
FRAME_OVERHEAD = 128  # tpacket3_hdr + sockaddr_ll + alignment + VLAN headroom
MAX_BATCH_PACKETS = 32768
POLL_SLICE_MS = 100  # longest wait before the stop flag and wall clock are checked again


def permission_hint() -> str:
    """How to get the right to capture (the one-line hint of SPEC §4)."""
    exe = os.path.realpath(sys.executable)
    return f"run as root or grant CAP_NET_RAW: sudo setcap cap_net_raw,cap_net_admin=eip {exe}"


def arphrd(interface: str) -> int:
    """The interface's ARPHRD_* type (from sysfs)."""
    try:
        with open(f"/sys/class/net/{interface}/type", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return ARPHRD_ETHER


def link_mode(interface: str) -> tuple[int, int]:
    """``(linktype, mode)`` for an interface; see the module docstring."""
    from netscope.kernels.ring import MODE_COOKED, MODE_RAW

    if interface == "any":
        return LINKTYPE_LINUX_SLL, MODE_COOKED
    kind = arphrd(interface)
    if kind in (ARPHRD_ETHER, ARPHRD_LOOPBACK, ARPHRD_IEEE802):
        return LINKTYPE_ETHERNET, MODE_RAW
    if kind == ARPHRD_NONE:
        return LINKTYPE_RAW, MODE_RAW
    if kind == ARPHRD_IEEE80211_RADIOTAP:
        return LINKTYPE_IEEE802_11_RADIOTAP, MODE_RAW
    return LINKTYPE_LINUX_SLL, MODE_COOKED


def read_rx_dropped(interface: str) -> int:
    """The interface's receive drop counter (``/sys/class/net/IF/statistics/rx_dropped``)."""
    try:
        with open(f"/sys/class/net/{interface}/statistics/rx_dropped", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 0


def _uses_vlan(expression: str) -> bool:
    return re.search(r"\bvlan\b", expression) is not None


class AfPacketSource:
    """A live interface read through a TPACKET_V3 ring."""

    backend = "afpacket"

    def __init__(self, capture: CaptureConfig, interface: str) -> None:
        from netscope.kernels.ring import MODE_COOKED

        self.interface = interface
        self.snaplen = capture.snaplen
        self.report = SourceReport(kind="live")
        self.linktype, self._mode = link_mode(interface)
        self.report.link_types.add(self.linktype)
        self.user_space_filter: object | None = None
        self._sock: socket.socket | None = None
        self._mm: mmap.mmap | None = None
        self._ring: np.ndarray | None = None
        self._received = 0
        self._dropped = 0
        self._skipped = np.zeros(1, dtype=np.int64)
        self._ifdrop_start = read_rx_dropped(interface) if interface != "any" else 0
        any_dev = interface == "any"
        if any_dev:
            self._ifindex = 0
        else:
            try:
                self._ifindex = socket.if_nametoindex(interface)
            except OSError:
                raise CaptureError(
                    f"no such interface '{interface}'", hint="list them with 'netscope -l'"
                ) from None
        if any_dev:
            self._skip_ifindex = _lo_ifindex()
        elif arphrd(interface) == ARPHRD_LOOPBACK:
            self._skip_ifindex = self._ifindex
        else:
            self._skip_ifindex = -1
        kind = socket.SOCK_DGRAM if self._mode == MODE_COOKED else socket.SOCK_RAW
        proto = socket.htons(ETH_P_ALL) if any_dev else 0
        try:
            self._sock = socket.socket(socket.AF_PACKET, kind, proto)
        except PermissionError:
            raise CaptureError(
                f"cannot capture on {interface}: permission denied", hint=permission_hint()
            ) from None
        except OSError as exc:
            raise CaptureError(f"cannot open an AF_PACKET socket: {exc.strerror}") from None
        try:
            if any_dev:
                self._attach_filter(capture.filter)  # before the ring: see the docstring
            self._setup_ring(capture)
            if not any_dev:
                self._attach_filter(capture.filter)
                if capture.promiscuous:
                    self._promiscuous()
                self._sock.bind((interface, ETH_P_ALL))
        except BaseException:
            self.close()
            raise
        # the counters start now, not when the socket was created
        self._read_statistics()
        self._received = self._dropped = 0

    # ------------------------------------------------------------------ set-up

    def _setup_ring(self, capture: CaptureConfig) -> None:
        assert self._sock is not None
        sock = self._sock
        frame = self.snaplen + FRAME_OVERHEAD
        block = BLOCK_SIZE
        while block < frame:
            block <<= 1
        ring_bytes = (capture.buffer_size_mb or DEFAULT_RING_MB) * (1 << 20)
        n_blocks = max(4, ring_bytes // block)
        frame_size = 2048
        timeout_ms = 1 if capture.immediate_mode else capture.timeout_ms
        req = struct.pack(
            "=IIIIIII",
            block,
            n_blocks,
            frame_size,
            (block // frame_size) * n_blocks,
            timeout_ms,
            0,
            0,
        )
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            sock.setsockopt(SOL_PACKET, PACKET_RESERVE, 4)  # headroom to re-insert VLAN tags
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        except OSError as exc:
            raise CaptureError(
                f"cannot set up the capture ring on {self.interface} "
                f"({n_blocks} x {block} bytes): {exc.strerror}",
                hint="lower capture.buffer_size_mb, or try NETSCOPE_CAPTURE_BACKEND=libpcap",
            ) from None
        self._block_size = block
        self._n_blocks = n_blocks
        self._mm = mmap.mmap(
            sock.fileno(),
            block * n_blocks,
            flags=mmap.MAP_SHARED,
            prot=mmap.PROT_READ | mmap.PROT_WRITE,
        )
        self._ring = np.frombuffer(self._mm, dtype=np.uint8)
        log.debug(
            "AF_PACKET ring on %s: %d blocks x %d bytes, retire timeout %d ms",
            self.interface,
            n_blocks,
            block,
            timeout_ms,
        )

    def _attach_filter(self, expression: str | None) -> None:
        """Kernel filter (or ``ret #snaplen`` to truncate in the kernel)."""
        from netscope.bpf import OfflineFilter, compile_filter, return_snaplen_program
        from netscope.kernels.ring import MODE_COOKED

        assert self._sock is not None
        program = return_snaplen_program(self.snaplen)
        if expression is not None:
            # Always compile here, so an invalid filter fails before capture starts.
            compiled = compile_filter(expression, self.linktype, self.snaplen)
            if self._mode == MODE_COOKED or _uses_vlan(expression):
                # The kernel runs filters on the frame as it sees it: without the SLL header
                # we build (cooked mode) and without the VLAN tags it strips. Those filters
                # run in user space on the frames we deliver instead.
                flt = OfflineFilter(expression, self.snaplen, savefile=False)
                flt.prepare(self.linktype)
                self.user_space_filter = flt
            else:
                program = compiled
        fprog = program.sock_fprog_bytes()
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        except OSError as exc:
            raise CaptureError(f"cannot attach the BPF filter: {exc.strerror}") from None

    def _promiscuous(self) -> None:
        assert self._sock is not None
        mreq = struct.pack("iHH8s", self._ifindex, PACKET_MR_PROMISC, 0, b"")
        try:
            self._sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except OSError as exc:
            log.warning("cannot enable promiscuous mode on %s: %s", self.interface, exc.strerror)

    # ------------------------------------------------------------------ reading

    def batches(self, stop: Callable[[], bool] = lambda: False) -> Iterator[PacketBatch]:
        """Batches of ready blocks; an empty batch after each wait with nothing ready.

        Each batch is a view of the ring, valid until the next one is requested: its
        blocks are released to the kernel at that point.
        """
        from netscope.kernels.ring import release_blocks, scan_blocks

        assert self._sock is not None and self._ring is not None
        ring = self._ring
        cap = MAX_BATCH_PACKETS
        offsets = np.empty(cap, dtype=np.int64)
        caplens = np.empty(cap, dtype=np.int32)
        wirelens = np.empty(cap, dtype=np.int32)
        ts_ns = np.empty(cap, dtype=np.int64)
        linktypes = np.full(cap, self.linktype, dtype=np.int32)
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLERR)
        block_size, n_blocks = self._block_size, self._n_blocks
        max_blocks = max(1, n_blocks // 2)
        wait_ms = POLL_SLICE_MS
        cur = 0
        index = 1
        held = 0
        try:
            while not stop():
                n, used = scan_blocks(
                    ring, block_size, n_blocks, cur, max_blocks, self.snaplen, self._mode,
                    self.linktype, self.linktype == LINKTYPE_ETHERNET, self._skip_ifindex,
                    cap, offsets, caplens, wirelens, ts_ns, linktypes, self._skipped,
                )  # fmt: skip
                if used == 0:
                    poller.poll(wait_ms)
                    n, used = scan_blocks(
                        ring, block_size, n_blocks, cur, max_blocks, self.snaplen, self._mode,
                        self.linktype, self.linktype == LINKTYPE_ETHERNET, self._skip_ifindex,
                        cap, offsets, caplens, wirelens, ts_ns, linktypes, self._skipped,
                    )  # fmt: skip
                held = used
                self.report.packets_read += n
                yield PacketBatch(ring, offsets, caplens, wirelens, ts_ns, linktypes, n, index)
                index += n
                if used:
                    release_blocks(ring, block_size, n_blocks, cur, used)
                    cur = (cur + used) % n_blocks
                held = 0
        finally:
            if held and self._ring is not None:
                release_blocks(ring, block_size, n_blocks, cur, held)

    # ------------------------------------------------------------------ counters

    def _read_statistics(self) -> None:
        """Fold PACKET_STATISTICS (which resets on every read) into the run totals."""
        if self._sock is None:
            return
        raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        packets, drops, _freeze = struct.unpack("=III", raw)
        self._received += packets  # includes the dropped ones (as libpcap's ps_recv)
        self._dropped += drops

    def stats(self) -> tuple[int, int, int]:
        """``(kernel received, kernel dropped, interface dropped)`` since the start."""
        self._read_statistics()
        ifdrop = 0
        if self.interface != "any":
            ifdrop = max(0, read_rx_dropped(self.interface) - self._ifdrop_start)
        return self._received, self._dropped, ifdrop

    @property
    def loopback_duplicates(self) -> int:
        """Outgoing copies skipped on loopback (each packet is seen twice there)."""
        return int(self._skipped[0])

    def close(self) -> None:
        ring, self._ring = self._ring, None
        del ring
        if self._mm is not None:
            # a batch may still reference the ring; the mapping then goes with it
            with contextlib.suppress(BufferError):
                self._mm.close()
            self._mm = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _lo_ifindex() -> int:
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        return -1

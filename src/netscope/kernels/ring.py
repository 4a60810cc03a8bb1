"""Capture-side kernels: TPACKET_V3 ring blocks in, pcap records out.

``scan_blocks`` walks the memory-mapped AF_PACKET ring the kernel fills and writes the
batch arrays (offsets into the ring itself: the batch's buffer *is* the mmap, so packet
bytes are never copied between the kernel's ring and decoding). ``pack_pcap_records``
does the opposite trip for ``--write-pcap``: batch arrays to contiguous pcap records in an
output buffer, which Python writes with one large ``write``.

Layouts (linux/if_packet.h, 64-bit):

- ``struct tpacket_block_desc``: version u32 @0, offset_to_priv u32 @4, then
  ``tpacket_hdr_v1``: block_status u32 @8, num_pkts u32 @12, offset_to_first_pkt u32 @16,
  blk_len u32 @20, seq_num u64 @24, ts_first_pkt @32, ts_last_pkt @40.
- ``struct tpacket3_hdr``: tp_next_offset u32 @0, tp_sec @4, tp_nsec @8, tp_snaplen @12,
  tp_len @16, tp_status @20, tp_mac u16 @24, tp_net u16 @26, tp_rxhash @28,
  tp_vlan_tci u32 @32, tp_vlan_tpid u16 @36; then ``struct sockaddr_ll`` at @48:
  sll_family u16, sll_protocol be16 @+2, sll_ifindex i32 @+4, sll_hatype u16 @+8,
  sll_pkttype u8 @+10, sll_halen u8 @+11, sll_addr[8] @+12.
"""

from __future__ import annotations

import numpy as np

from netscope.kernels._jit import kernel, runtime_kernel
from netscope.kernels.byteorder import u16le, u32le

TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
PACKET_OUTGOING = 4
SLL_OFFSET = 48  # TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
SLL_HEADER_LEN = 16

# how the ring's packets become link-layer frames (see netscope.sources.afpacket)
MODE_RAW = 0  # data starts at the MAC header as captured (Ethernet, loopback, raw IP)
MODE_COOKED = 1  # SOCK_DGRAM: build a Linux SLL header in front of the network header


@kernel
def scan_blocks(  # type: ignore[no-untyped-def]
    ring,
    block_size,
    n_blocks,
    first_block,
    max_blocks,
    snaplen,
    mode,
    linktype,
    vlan_reinsert,
    skip_ifindex,
    max_packets,
    offsets,
    caplens,
    wirelens,
    ts_ns,
    linktypes,
    stats,
):
    """Scan consecutive ready blocks starting at ``first_block`` into batch arrays.

    Stops at the first block the kernel still owns, after ``max_blocks`` blocks, or before
    a block whose packets would not fit in ``max_packets``. Blocks are *not* released here:
    the caller hands them back (``release_blocks``) once the batch has been processed.

    - Captured length is cut to ``snaplen``.
    - ``vlan_reinsert``: the kernel strips 802.1Q tags on receive and reports them in the
      header; as libpcap does, the tag is written back into the frame in place (the 12 MAC
      bytes move 4 bytes down into the headroom PACKET_RESERVE keeps free).
    - ``skip_ifindex`` >= 0: outgoing copies (PACKET_OUTGOING) on that interface are
      skipped — on loopback every packet is seen twice, and libpcap keeps the incoming one.
    - MODE_COOKED writes a 16-byte SLL header in front of the network header.

    ``stats[0]`` += packets skipped as loopback duplicates. Returns ``(count, blocks)``.
    """
    n = 0
    blocks = 0
    b = first_block
    while blocks < max_blocks:
        base = b * block_size
        status = u32le(ring, base + 8)
        if (status & TP_STATUS_USER) == 0:
            break
        num = u32le(ring, base + 12)
        if n + num > max_packets:
            break
        pos = base + u32le(ring, base + 16)
        for _ in range(num):
            nxt = u32le(ring, pos)
            tp_snap = u32le(ring, pos + 12)
            tp_len = u32le(ring, pos + 16)
            tp_status = u32le(ring, pos + 20)
            mac = pos + u16le(ring, pos + 24)
            net = pos + u16le(ring, pos + 26)
            sll = pos + SLL_OFFSET
            pkttype = np.int64(ring[sll + 10])
            ifindex = u32le(ring, sll + 4)
            if skip_ifindex >= 0 and pkttype == PACKET_OUTGOING and ifindex == skip_ifindex:
                stats[0] += 1
            else:
                start = mac
                cap = tp_snap
                wire = tp_len
                if mode == MODE_COOKED:
                    start = net - SLL_HEADER_LEN
                    ring[start] = 0
                    ring[start + 1] = pkttype
                    ring[start + 2] = ring[sll + 9]
                    ring[start + 3] = ring[sll + 8]
                    halen = np.int64(ring[sll + 11])
                    ring[start + 4] = 0
                    ring[start + 5] = halen
                    for j in range(8):
                        ring[start + 6 + j] = ring[sll + 12 + j] if j < halen else 0
                    ring[start + 14] = ring[sll + 2]
                    ring[start + 15] = ring[sll + 3]
                    cap = tp_snap - (net - mac) + SLL_HEADER_LEN
                    wire = tp_len - (net - mac) + SLL_HEADER_LEN
                elif vlan_reinsert and cap >= 12:
                    tci = u32le(ring, pos + 32) & 0xFFFF
                    if tci != 0 or (tp_status & TP_STATUS_VLAN_VALID) != 0:
                        tpid = 0x8100
                        if (tp_status & TP_STATUS_VLAN_TPID_VALID) != 0:
                            tpid = u16le(ring, pos + 36)
                        for j in range(12):
                            ring[mac - 4 + j] = ring[mac + j]
                        ring[mac + 8] = (tpid >> 8) & 0xFF
                        ring[mac + 9] = tpid & 0xFF
                        ring[mac + 10] = (tci >> 8) & 0xFF
                        ring[mac + 11] = tci & 0xFF
                        start = mac - 4
                        cap += 4
                        wire += 4
                if cap > snaplen:
                    cap = snaplen
                offsets[n] = start
                caplens[n] = cap
                wirelens[n] = wire
                ts_ns[n] = u32le(ring, pos + 4) * 1_000_000_000 + u32le(ring, pos + 8)
                linktypes[n] = linktype
                n += 1
            if nxt == 0:
                break
            pos += nxt
        blocks += 1
        b += 1
        if b == n_blocks:
            b = 0
    return n, blocks


@kernel
def release_blocks(ring, block_size, n_blocks, first_block, count):  # type: ignore[no-untyped-def]
    """Hand ``count`` blocks from ``first_block`` back to the kernel (TP_STATUS_KERNEL)."""
    b = first_block
    for _ in range(count):
        base = b * block_size
        ring[base + 8] = 0
        ring[base + 9] = 0
        ring[base + 10] = 0
        ring[base + 11] = 0
        b += 1
        if b == n_blocks:
            b = 0


@runtime_kernel
def pack_pcap_records(  # type: ignore[no-untyped-def]
    buf, offsets, caplens, wirelens, ts_ns, start, count, out, out_pos, limit
):
    """Append packets ``[start, count)`` as nanosecond pcap records to ``out[out_pos:]``.

    Each record is a 16-byte little-endian header (seconds, nanoseconds, captured length,
    wire length) followed by the packet bytes. Stops before the first record that would
    end past ``limit``. Returns ``(packed, new_out_pos)``.
    """
    i = start
    pos = out_pos
    while i < count:
        cap = np.int64(caplens[i])
        if pos + 16 + cap > limit:
            break
        ts = ts_ns[i]
        sec = ts // 1_000_000_000
        nsec = ts - sec * 1_000_000_000
        sec = sec & 0xFFFFFFFF
        wire = np.int64(wirelens[i]) & 0xFFFFFFFF
        for j in range(4):
            out[pos + j] = (sec >> (8 * j)) & 0xFF
            out[pos + 4 + j] = (nsec >> (8 * j)) & 0xFF
            out[pos + 8 + j] = (cap >> (8 * j)) & 0xFF
            out[pos + 12 + j] = (wire >> (8 * j)) & 0xFF
        src = offsets[i]
        dst = pos + 16
        out[dst : dst + cap] = buf[src : src + cap]
        pos = dst + cap
        i += 1
    return i - start, pos

"""Per-packet console output: one summary line, or the detailed per-layer view.

This is an edge (SPEC §2): it builds Python objects per packet on purpose, using the
readable decoders. ``--quiet`` skips it entirely, leaving only compiled work.
"""

from __future__ import annotations

from typing import TextIO

from netscope.batch import PacketBatch


class PacketPrinter:
    """Writes each packet of a batch to ``out`` (summary lines or detail blocks)."""

    def __init__(self, out: TextIO, detailed: bool) -> None:
        self._out = out
        self._detailed = detailed

    def print_batch(self, batch: PacketBatch, start_index: int) -> None:
        """Print ``batch``'s packets numbered from ``start_index`` (1-based)."""
        from netscope.decode import decode_packet
        from netscope.display import format_detail, format_summary

        lines: list[str] = []
        for i in range(batch.count):
            data = batch.packet_bytes(i)
            linktype = int(batch.linktypes[i])
            ts_ns = int(batch.ts_ns[i])
            pkt = decode_packet(data, linktype)
            index = start_index + i
            if self._detailed:
                lines.append(
                    format_detail(
                        index,
                        ts_ns,
                        linktype,
                        int(batch.caplens[i]),
                        int(batch.wirelens[i]),
                        pkt,
                        data,
                    )
                )
            else:
                lines.append(format_summary(index, ts_ns, linktype, pkt))
            if len(lines) >= 4096:
                self._flush(lines)
        self._flush(lines)

    def _flush(self, lines: list[str]) -> None:
        if lines:
            self._out.write("\n".join(lines))
            self._out.write("\n")
            lines.clear()

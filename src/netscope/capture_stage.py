"""The capture side of a run: what happens to a batch before analysis.

SPEC §6: "pcap writing happens on the capture side before dispatch". :class:`CaptureStage`
applies the BPF filter for file input (live capture filters in the kernel), then
``--write-pcap``. Every run source (file, file set, live) builds one; the run loop
(:mod:`netscope.run_loop`) calls it per batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netscope.batch import PacketBatch
from netscope.config import Config
from netscope.errors import NetScopeError, OutputError

MAX_SNAPLEN = 262144


class CaptureStage:
    """Capture-side filter and pcap writer for one run.

    ``filter(batch)`` returns the packets the ``-f`` expression keeps (the input batch
    itself when there is nothing to filter); ``write(batch)`` appends to the pcap output;
    ``close()`` flushes and reports. Failures of the pcap output raise OutputError.
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.offline_filter: Any = None  # netscope.bpf.OfflineFilter when filtering batches
        self.writer: Any = None  # netscope.sinks.pcap_writer.PcapSink once opened
        self._linktype: int | None = None
        self._snaplen = MAX_SNAPLEN
        self._source: Any = None  # the capture-file reader (for pcapng interface snaplens)
        self._failed = False
        self.failure: OutputError | None = None  # a pcap write failure not yet raised

    # ------------------------------------------------------------------ set-up

    @classmethod
    def for_file(cls, cfg: Config, source: object) -> CaptureStage:
        """Stage for a capture-file source (PcapReader / PcapngReader).

        A classic pcap's link type is known up front, so an invalid filter fails here
        (exit 2) before any packet is read; a pcapng's link types come with its interface
        blocks, so its programs are compiled as they appear.
        """
        from netscope.bpf import OfflineFilter

        stage = cls(cfg)
        stage._source = source
        header = getattr(source, "header", None)
        snaplen = int(header.snaplen) if header is not None else 0
        stage._snaplen = snaplen if 0 < snaplen <= MAX_SNAPLEN else MAX_SNAPLEN
        if cfg.capture.filter is not None:
            stage.offline_filter = OfflineFilter.for_source(
                cfg.capture.filter, source, snaplen=stage._snaplen
            )
            if header is not None:
                stage.offline_filter.prepare(int(header.linktype))
        if header is not None and cfg.output.write_pcap is not None:
            stage._open_writer(int(header.linktype))
        return stage

    @classmethod
    def for_live(
        cls, cfg: Config, linktype: int, snaplen: int, offline_filter: Any = None
    ) -> CaptureStage:
        """Stage for a live source (its filter, if any, already runs in the kernel).

        ``offline_filter`` is set when a backend has to filter in user space instead.
        """
        stage = cls(cfg)
        stage._snaplen = snaplen
        stage.offline_filter = offline_filter
        if cfg.output.write_pcap is not None:
            stage._open_writer(linktype)
        return stage

    def _open_writer(self, linktype: int) -> None:
        from netscope.sinks.pcap_writer import PcapSink, source_has_nanoseconds

        out = self.cfg.output
        assert out.write_pcap is not None
        self._linktype = linktype
        # live captures carry nanoseconds; a file says (pcapng: its interfaces seen so far)
        input_nanos = self._source is None or source_has_nanoseconds(self._source)
        self.writer = PcapSink(
            out.write_pcap,
            linktype,
            self._snaplen,
            out.write_pcap_rotate_mb,
            out.write_pcap_max_files,
            nanos=out.write_pcap_nanos and input_nanos,
        )

    # ------------------------------------------------------------------ per batch

    def filter(self, batch: PacketBatch) -> PacketBatch:
        """The packets of ``batch`` that pass the user-space filter (if there is one)."""
        if self.offline_filter is None or batch.count == 0:
            return batch
        result: PacketBatch = self.offline_filter.apply(batch)
        return result

    def write(self, batch: PacketBatch) -> None:
        """Append ``batch`` to the pcap output (no-op without ``--write-pcap``)."""
        if self.cfg.output.write_pcap is None or batch.count == 0 or self._failed:
            return
        lts = batch.linktypes[: batch.count]
        try:
            if self.writer is None:
                self._snaplen = self._interfaces_snaplen(int(lts[0]))
                self._open_writer(int(lts[0]))
            if self._linktype is not None and bool(np.any(lts != self._linktype)):
                other = int(lts[lts != self._linktype][0])
                raise OutputError(
                    f"cannot write pcap {self.cfg.output.write_pcap}: the capture mixes link "
                    f"types {self._linktype} and {other}, and a pcap file holds one",
                    hint="add a filter that selects one interface's packets, or convert the file",
                )
            self.writer.write(batch)
            self.writer.maybe_flush()
        except OutputError as exc:
            # Recorded, not raised: the runner still analyses this batch, so the summary
            # counts every packet read, then stops at raise_failure().
            self._failed = True
            self.failure = exc

    def raise_failure(self) -> None:
        """Raise the pcap write failure recorded by :meth:`write`, if any."""
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure

    def _interfaces_snaplen(self, linktype: int) -> int:
        """The snaplen for the output header of a pcapng source: the largest of its
        interfaces with ``linktype`` (0, "no limit", and unknown mean MAX_SNAPLEN), so the
        written file declares what the capture declared rather than the maximum."""
        interfaces = getattr(self._source, "interfaces", None)
        if not interfaces:
            return self._snaplen
        lengths = [int(i.snaplen) for i in interfaces if int(i.linktype) == linktype]
        if not lengths or min(lengths) <= 0:
            return MAX_SNAPLEN
        return min(max(lengths), MAX_SNAPLEN)

    def idle(self) -> None:
        """Called when no packet came (live timeouts): keeps the periodic flush going."""
        if self.writer is not None and not self._failed:
            try:
                self.writer.maybe_flush()
            except OutputError:
                self._failed = True
                raise

    def close(self, linktype_hint: int = 1) -> tuple[list[tuple[str, str]], NetScopeError | None]:
        """Final flush; returns summary rows and the failure (if any) to report."""
        rows: list[tuple[str, str]] = []
        if self.cfg.output.write_pcap is None:
            return rows, None
        if self._failed:
            if self.writer is not None:
                self.writer.abandon()
            return rows, None
        try:
            if self.writer is None:  # no packet at all: still leave a valid (empty) file
                self._open_writer(linktype_hint)
            self.writer.close()
        except OutputError as exc:
            return rows, exc
        rows.append(("Pcap written", self.writer.summary()))
        return rows, None

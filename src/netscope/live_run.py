"""Live capture runs, and the capture-side stage both kinds of run share.

:class:`CaptureStage` is what happens to a batch on the capture side, before analysis
(SPEC §6: "pcap writing happens on the capture side before dispatch"): the BPF filter for
file input (live capture filters in the kernel), then ``--write-pcap``. The offline runner
(:mod:`netscope.runner`) and :class:`LiveRun` both use it.

:class:`LiveRun` reads an interface through a live source (:mod:`netscope.sources.live`),
ticks stats on wall time (every ``stats.interval_ms`` even when no packet arrives), stops on
``-c``, Ctrl-C or SIGTERM after finishing the batch in hand, then prints the summary
(with kernel and interface drop counters) and writes the exports.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, TextIO

import numpy as np

from netscope.batch import PacketBatch
from netscope.config import Config
from netscope.errors import NetScopeError, OutputError

log = logging.getLogger(__name__)

MAX_SNAPLEN = 262144
# A final partial stats line is printed only if the interval lasted at least this long
# (shorter ones would show rates extrapolated from a few packets).
MIN_FINAL_TICK_NS = 100_000_000


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


# --------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------


class StopFlag:
    """Set by SIGINT/SIGTERM: the capture loop stops after the batch in hand.

    A second Ctrl-C raises KeyboardInterrupt, for a capture stuck somewhere a flag is
    not checked.
    """

    def __init__(self) -> None:
        self.set = False
        self.signal: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.set and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.set = True
        self.signal = signum


@contextmanager
def stop_on_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """Route SIGINT and SIGTERM to ``flag`` (main thread only), restoring them afterwards."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, flag)
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# --------------------------------------------------------------------------------------
# Live runs
# --------------------------------------------------------------------------------------


class LiveRun:
    """One live capture: source → capture stage → inline processor → summary/exports."""

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err

    def execute(self) -> int:
        from netscope import engine
        from netscope.pipeline.inline import InlineProcessor
        from netscope.runner import OfflineRun, flow_options, kernel_groups
        from netscope.sinks.console import PacketPrinter
        from netscope.sinks.jsonl import ExpiredFlowsSink
        from netscope.sinks.parquet import chain_expired, open_parquet_sink
        from netscope.sources.live import open_live

        cfg = self.cfg
        engine.warm_up(need=kernel_groups(cfg, live=True))
        capture_cfg = cfg.capture
        if cfg.web.enabled and capture_cfg.timeout_ms > cfg.web.tick_ms:
            # Dashboard frames are due every web.tick_ms; a longer read timeout would hold
            # them back on a quiet link (docs/web-dashboard.md, Ticks).
            import dataclasses

            capture_cfg = dataclasses.replace(capture_cfg, timeout_ms=cfg.web.tick_ms)
        source = open_live(capture_cfg)
        try:
            stage = CaptureStage.for_live(
                cfg, source.linktype, source.snaplen, source.user_space_filter
            )
            expired_sink = (
                ExpiredFlowsSink(cfg.output.expired_flows_jsonl, seed=cfg.output.community_id_seed)
                if cfg.output.expired_flows_jsonl is not None
                else None
            )
            parquet_sink = open_parquet_sink(cfg)  # --export-parquet (sinks/parquet.py)
            on_expired = chain_expired(expired_sink, parquet_sink)
        except BaseException:
            source.close()
            raise
        processor: Any
        drops = DropTracker(source)
        if cfg.pipeline.enabled:  # sharded: the aggregator prints the stats lines
            from netscope.pipeline.sharded import PipelineProcessor, live_stats_line

            processor = PipelineProcessor.for_config(
                cfg,
                flow_options(cfg, on_expired is not None),
                cfg.stats.interval_ms * 1_000_000,
                self.out,
                live=True,
            )
            processor.stats_line = live_stats_line(drops)
            processor.on_expired = on_expired
        else:
            processor = InlineProcessor(flow_options(cfg, on_expired is not None))
            if cfg.stats.enabled:
                processor.on_tick = LiveStatsPrinter(
                    self.out, processor.flows, cfg.stats.top_flows, drops
                )
            processor.flows.on_expired = on_expired
        processor.wall_clock_ticks = True
        interval_ns = cfg.stats.interval_ms * 1_000_000
        dashboard = None
        if cfg.web.enabled:  # wall-clock ticks every web.tick_ms; stats lines are summed from them
            from netscope.web.server import Dashboard

            try:
                dashboard = Dashboard.start(
                    cfg, processor, self.err, lambda: (0, drops.kdrop_total, drops.ifdrop_total)
                )
            except BaseException:
                source.close()
                raise
            processor.on_tick = dashboard.tick_handler(processor.on_tick)
            interval_ns = cfg.web.tick_ms * 1_000_000
        ticking = cfg.stats.enabled or dashboard is not None
        from netscope.sinks.alerts import AnomalyReporter

        try:
            anomalies = AnomalyReporter.attach(cfg, processor, self.out, self.err)
        except BaseException:
            source.close()
            if dashboard is not None:
                dashboard.stop()
            raise
        printer = None if cfg.output.quiet else PacketPrinter(self.out, cfg.detailed_view)
        counters = processor.analyzer.counters
        limit = cfg.run.count
        flag = StopFlag()
        failure: NetScopeError | None = None
        interrupted = False
        print(
            f"capturing on {source.interface} ({source.backend}, link type {source.linktype}, "
            f"snaplen {source.snaplen})…",
            file=self.err,
            flush=True,
        )
        tick_start = time.time_ns()
        # Ticks are due on a fixed schedule (not "interval after the last one"), so the tick
        # rate does not drift by the read-loop latency: 30 dashboard frames/s at tick_ms=33.
        tick_due = tick_start + interval_ns
        try:
            with stop_on_signals(flag):
                for raw in source.batches(lambda: flag.set):
                    batch = stage.filter(raw)
                    if limit and counters.packets + batch.count > limit:
                        batch = batch.sliced(limit - counters.packets)
                    if batch.count:
                        stage.write(batch)
                        start = counters.packets + 1
                        processor.feed(batch)
                        if printer is not None:
                            printer.print_batch(batch, start)
                            self.out.flush()
                        if anomalies is not None:
                            anomalies.pump()
                            self.out.flush()
                        stage.raise_failure()
                    else:
                        stage.idle()
                    now = time.time_ns()
                    if now >= tick_due:
                        if ticking:
                            drops.poll()
                            processor.wall_tick(tick_start, now)
                            self.out.flush()
                        tick_start = now
                        tick_due += interval_ns
                        if tick_due <= now:  # fell behind (a long batch): restart the schedule
                            tick_due = now + interval_ns
                    if (limit and counters.packets >= limit) or flag.set:
                        break
        except KeyboardInterrupt:
            interrupted = True
        except BrokenPipeError:
            from netscope.runner import _silence_stdout

            _silence_stdout()
            source.close()
            return 0
        except OutputError as exc:
            failure = exc
        finally:
            drops.poll()
            source.close()
            if ticking and failure is None and cfg.stats.enabled:
                # The last, partial interval (Ctrl-C, -c, end of capture): its rates cover
                # the time it lasted, so the traffic since the last line is not lost.
                now = time.time_ns()
                if now - tick_start >= MIN_FINAL_TICK_NS:
                    processor.wall_tick(tick_start, now)
                    self.out.flush()
            if dashboard is not None:
                dashboard.finish()
                dashboard.stop()
        interrupted = interrupted or flag.set
        stage_rows, stage_failure = stage.close(source.linktype)
        offline = OfflineRun(cfg, self.out, self.err)
        offline.parquet_sink = parquet_sink
        extra, export_failure = offline._write_outputs(processor, expired_sink)
        alert_rows, alert_failure = anomalies.finish() if anomalies is not None else ([], None)
        failure = failure or stage_failure or export_failure or alert_failure
        from netscope.sinks.summary import capture_summary

        rows = drops.summary_rows() + stage_rows + extra + alert_rows
        try:
            print(
                capture_summary(
                    counters, source.report, interrupted, rows, pipeline=cfg.pipeline.enabled
                ),
                file=self.out,
            )
            self.out.flush()
        except BrokenPipeError:
            from netscope.runner import _silence_stdout

            _silence_stdout()
        if failure is not None:
            raise failure
        return 0


class DropTracker:
    """Kernel and interface drop counters: per-tick deltas and run totals."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.received = 0
        self.kdrop_total = 0
        self.ifdrop_total = 0
        self._kdrop_reported = 0
        self._ifdrop_reported = 0

    def poll(self) -> None:
        """Read the counters from the source (cheap: one getsockopt / pcap_stats)."""
        try:
            stats = self._source.stats()
        except OSError as exc:  # the socket is gone: keep the last numbers
            log.debug("capture statistics unavailable: %s", exc)
            return
        self.received, self.kdrop_total, self.ifdrop_total = stats

    def tick_values(self) -> dict[str, int]:
        """kdrop/ifdrop since the previous tick, and the totals (resets the deltas)."""
        values = {
            "kdrop": self.kdrop_total - self._kdrop_reported,
            "kdrop_total": self.kdrop_total,
            "ifdrop": self.ifdrop_total - self._ifdrop_reported,
            "ifdrop_total": self.ifdrop_total,
        }
        self._kdrop_reported = self.kdrop_total
        self._ifdrop_reported = self.ifdrop_total
        return values

    def summary_rows(self) -> list[tuple[str, str]]:
        seen = self.received + self.kdrop_total
        rate = 100.0 * self.kdrop_total / seen if seen else 0.0
        return [
            ("Kernel received", str(self.received)),
            ("Kernel dropped", str(self.kdrop_total)),
            ("Interface dropped", str(self.ifdrop_total)),
            ("Drop rate", f"{rate:.2f}%"),
        ]


class LiveStatsPrinter:
    """The ``[stats]`` line with kdrop/ifdrop, then the top-N flows (SPEC §6)."""

    def __init__(self, out: TextIO, table: Any, top_n: int, drops: DropTracker) -> None:
        self._out = out
        self._table = table
        self._top_n = top_n
        self._drops = drops

    def __call__(self, tick: Any) -> None:
        from netscope.flows.records import records_from_rows
        from netscope.flows.stats import format_stats_line

        d = self._drops.tick_values()
        lines = [
            format_stats_line(tick, d["kdrop"], d["kdrop_total"], d["ifdrop"], d["ifdrop_total"])
        ]
        if self._top_n > 0:
            t = self._table
            rows = t.top_rows(self._top_n)
            recs = records_from_rows(t.keys, t.i64, None, t.u8, rows)
            seconds = max(tick.interval_ns / 1e9, 1e-9)
            for rank, rec in enumerate(recs, 1):
                mbps = rec.delta_bytes * 8 / seconds / 1e6
                lines.append(f"  {rank}. {rec.label()} {mbps:.2f} Mbps")
            t.reset_delta(rows)
        self._out.write("\n".join(lines) + "\n")


def install_sigterm_as_interrupt() -> None:
    """SIGTERM behaves like Ctrl-C (offline runs catch KeyboardInterrupt and summarise)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    with suppress(ValueError):  # not the main thread (library use): leave signals alone
        signal.signal(signal.SIGTERM, handler)

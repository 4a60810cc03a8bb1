"""The one run loop: an input (:mod:`netscope.run_inputs`) → capture stage → processor →
sinks (:mod:`netscope.sinks.base`) → summary.

Every ``netscope`` run that reads packets goes through :class:`RunLoop`, whatever the
input (a file, a set of files, an interface). It owns the run's life cycle: open the
input, warm the kernels, build the processor (inline or sharded) with its stats printer,
dashboard and anomaly reporter, loop over batches, and — however the loop ends (EOF,
``-c``, Ctrl-C, a read or write failure) — finish every sink, print the summary for
everything processed so far, and exit 0 or raise the first failure (exit 1).

What differs between offline and live inputs is when ticks happen (capture time vs wall
clock, ``RunInput.live``) and how a signal stops the loop; everything else is shared.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from netscope.config import Config
from netscope.errors import NetScopeError, OutputError
from netscope.run_inputs import RunInput
from netscope.sinks.base import ExpiredFanout, FinalFlows, Sink, TickFanout, close_all

# A final partial stats line is printed only if the interval lasted at least this long
# (shorter ones would show rates extrapolated from a few packets).
MIN_FINAL_TICK_NS = 100_000_000

InputFactory = Callable[[Config, TextIO, TextIO], RunInput]


def kernel_groups(cfg: Config, live: bool) -> tuple[str, ...]:
    """The engine kernel groups a run needs besides "core" (see engine.warm_up)."""
    groups = []
    if live or cfg.capture.filter or cfg.output.write_pcap is not None:
        groups.append("capture")
    if cfg.pipeline.enabled:
        groups.append("pipeline")
    if cfg.analysis.anomalies.enabled:
        groups.append("anomaly")
    return tuple(groups)


def flow_options(cfg: Config, keep_expired: bool = False) -> Any:
    """The flow table settings a Config asks for."""
    from netscope.flows.table import FlowOptions

    ipfix = cfg.output.ipfix.collector is not None  # the exporter reads expired flows
    return FlowOptions(
        max_flows=cfg.flow.max_flows,
        timeout_secs=cfg.flow.timeout_secs,
        rtt=cfg.analysis.rtt,
        retrans=cfg.analysis.retrans,
        out_of_order=cfg.analysis.out_of_order,
        keep_expired=keep_expired or ipfix,
        export_columns=ipfix,
    )


class RunLoop:
    """One run: ``RunLoop(cfg, out, err).execute(open_input, build_sinks)``."""

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err
        self._stats: Any = None  # the stats printer (the IPFIX exporter adds its drops)

    # ------------------------------------------------------------------ set-up

    def _open(
        self, open_input: InputFactory, live: bool, make_sinks: Callable[[Config], list[Sink]]
    ) -> tuple[RunInput, list[Sink]]:
        from netscope import engine

        if live:  # compile before the capture starts, so the ring does not fill meanwhile
            engine.warm_up(need=kernel_groups(self.cfg, live=True))
        source = open_input(self.cfg, self.out, self.err)
        try:
            sinks = make_sinks(self.cfg)
        except BaseException:
            source.close()
            raise
        if not live:  # a file that cannot be read fails before the (long) first compile
            engine.warm_up(need=kernel_groups(self.cfg, live=False))
        return source, sinks

    def _processor(self, source: RunInput, sinks: list[Sink]) -> tuple[Any, int]:
        """The inline or sharded processor, its stats handler and tick interval."""
        from netscope.pipeline.inline import InlineProcessor

        cfg = self.cfg
        fanout = ExpiredFanout(sinks)
        expired = fanout if fanout.sinks else None
        options = flow_options(cfg, expired is not None)
        interval_ns = cfg.stats.interval_ms * 1_000_000 if cfg.stats.enabled else 0
        if source.live:
            interval_ns = cfg.stats.interval_ms * 1_000_000
        elif cfg.web.enabled:  # the dashboard's capture-time ticks drive the stats line too
            interval_ns = cfg.web.tick_ms * 1_000_000
        processor: Any
        if cfg.pipeline.enabled:  # sharded: stats lines and ticks come from the aggregator
            from netscope.pipeline.sharded import PipelineProcessor, live_stats_line

            processor = PipelineProcessor.for_config(
                cfg, options, interval_ns, self.out, live=source.live
            )
            if source.live:
                processor.stats_line = live_stats_line(source.drops)
            processor.on_expired = expired
        else:
            if source.live:
                processor = InlineProcessor(options)
            else:
                processor = InlineProcessor(options, interval_ns)
            if cfg.stats.enabled:
                processor.on_tick = self._stats = self._stats_printer(source, processor)
            processor.flows.on_expired = expired
        if source.live:
            processor.wall_clock_ticks = True
        return processor, interval_ns

    def _stats_printer(self, source: RunInput, processor: Any) -> Any:
        cfg = self.cfg
        if source.live:
            from netscope.live_run import LiveStatsPrinter

            return LiveStatsPrinter(self.out, processor.flows, cfg.stats.top_flows, source.drops)
        from netscope.flows.stats import StatsPrinter

        return StatsPrinter(self.out, processor.flows, cfg.stats.top_flows)

    def _dashboard(self, source: RunInput, processor: Any) -> Any:
        if not self.cfg.web.enabled:
            return None
        from netscope.sinks.startup import insecure_auth_warning
        from netscope.web.server import Dashboard

        if (warning := insecure_auth_warning(self.cfg)) is not None:
            print(warning, file=self.err)
        drops = source.drops
        counters = (lambda: (0, drops.kdrop_total, drops.ifdrop_total)) if drops else None
        dashboard = Dashboard.start(self.cfg, processor, self.err, counters)
        processor.on_tick = dashboard.tick_handler(processor.on_tick)
        return dashboard

    def _pacer(self, source: RunInput) -> Any:
        """``--replay-speed``: a pacer between source and processor (None: full speed)."""
        cfg = self.cfg
        if source.live or cfg.run.replay_speed <= 0:
            return None
        from netscope.pipeline.pacing import ReplayPacer, capture_end_ns

        end = None
        reopen = getattr(source, "replay_span", lambda: None)()
        if cfg.web.enabled and reopen is not None:
            end = capture_end_ns(reopen)  # the seek bar's span
        return ReplayPacer(cfg.run.replay_speed, end_ns=end)

    # ------------------------------------------------------------------ the run

    def execute(
        self, open_input: InputFactory, make_sinks: Callable[[Config], list[Sink]], live: bool
    ) -> int:
        """Run to the end; return the exit code (0) or raise the first failure."""
        from netscope import signals
        from netscope.flows.zeek_run import ZeekConnExport
        from netscope.sinks.alerts import AnomalyReporter
        from netscope.sinks.console import PacketPrinter
        from netscope.sinks.ipfix import wiring as ipfix_wiring

        cfg = self.cfg
        source, sinks = self._open(open_input, live, make_sinks)
        dashboard = None
        try:
            processor, interval_ns = self._processor(source, sinks)
            dashboard = self._dashboard(source, processor)
            if dashboard is not None and source.live:
                interval_ns = cfg.web.tick_ms * 1_000_000
            ticks = [s for s in sinks if s.wants_ticks]
            if ticks and processor.on_tick is not None:
                processor.on_tick = TickFanout(processor.on_tick, sinks)
            # --export-ipfix and the Zeek conn.log (None when off): attached after the
            # dashboard wrapped the tick handler
            ipfix = ipfix_wiring.attach(
                cfg, processor, flow_options(cfg), source.live, dashboard, self._stats
            )
            anomalies = AnomalyReporter.attach(cfg, processor, self.out, self.err)
            zeek = ZeekConnExport.attach(cfg, processor)
        except BaseException:
            source.close()
            close_all(sinks)
            if dashboard is not None:
                dashboard.stop()
            raise
        pacer = self._pacer(source)
        if pacer is not None and dashboard is not None:
            dashboard.attach_replay(pacer)
        printer = None if cfg.output.quiet else PacketPrinter(self.out, cfg.detailed_view)
        on_batch = [s for s in sinks if s.wants_batches]
        state = _LoopState(processor, anomalies, printer, on_batch, source)
        source.announce(self.out, self.err)
        ticking = source.live and (cfg.stats.enabled or dashboard is not None)
        clock = _WallClock(processor, source, interval_ns, ticking) if source.live else None
        failure: NetScopeError | None = None
        interrupted = False
        # From here a signal only asks the loop to stop between batches (netscope.signals):
        # every batch written to the pcap is also counted, and the summary and exports follow.
        signals.begin_run()
        try:
            if clock is not None:
                interrupted = self._live_loop(state, clock, ipfix)
            else:
                interrupted = self._file_loop(state, pacer)
                if not interrupted:
                    processor.finish()
                    if anomalies is not None and dashboard is not None:
                        anomalies.pump()  # pipeline: shards' last alerts, before the final frame
        except KeyboardInterrupt:  # library callers without netscope.signals installed
            interrupted = True
        except BrokenPipeError:
            # Output piped into e.g. `head`, which has exited: stop quietly.
            silence_stdout()
            source.close()
            close_all(sinks)
            if zeek is not None:
                zeek.finish()
            if dashboard is not None and clock is None:  # live: stopped in `finally`
                dashboard.stop()
            return 0
        except OutputError as exc:
            failure = exc  # e.g. the expired-flows disk filled: stop, still summarise
        finally:
            source.close()
            if clock is not None:
                if failure is None and cfg.stats.enabled:
                    clock.final_tick(self.out)
                ipfix_rows = ipfix_wiring.finish(ipfix, processor)
                if dashboard is not None:
                    dashboard.finish()
                    dashboard.stop()
        source.end()
        if clock is None:
            ipfix_rows = ipfix_wiring.finish(ipfix, processor)  # before the last frame
        if dashboard is not None and not source.live:
            dashboard.finish()
        source.warn()
        stage_rows, stage_failure = source.stage.close(source.linktype_hint)
        zeek_rows, zeek_failure = zeek.finish() if zeek is not None else ([], None)
        stage_rows = stage_rows + ipfix_rows + zeek_rows
        stage_failure = stage_failure or zeek_failure
        extra, export_failure = self._finish_sinks(processor, sinks)
        alert_rows, alert_failure = anomalies.finish() if anomalies is not None else ([], None)
        rows = source.summary_rows() + stage_rows + extra + alert_rows
        failure = failure or stage_failure or export_failure or alert_failure or source.failure()
        self._print_summary(processor, source, interrupted, rows)
        if dashboard is not None and not source.live:
            # Offline input: the final state stays on screen until Ctrl-C (docs/web-dashboard.md).
            if not interrupted and failure is None:
                dashboard.serve_until_interrupt(self.err)
            dashboard.stop()
        if failure is not None:
            raise failure
        return 0

    def _file_loop(self, st: _LoopState, pacer: Any) -> bool:
        """Offline: as fast as the input goes (or paced); ticks follow capture time.
        Returns whether a stop request (Ctrl-C, SIGTERM) ended the run."""
        from netscope import signals

        limit = self.cfg.run.count
        counters = st.counters
        source = st.source
        batches = source.batches(lambda: False)
        if pacer is not None:
            batches = pacer.paced(batches)
        for batch in batches:
            source.seen(batch)
            batch = source.stage.filter(batch)
            if limit and counters.packets + batch.count > limit:
                batch = batch.sliced(limit - counters.packets)
            st.process(batch, flush=None)
            self._announce_unsupported(counters.unsupported_linktypes, st.announced)
            if limit and counters.packets >= limit:
                return False
            if signals.stop_requested():
                return True
        # the input ended: at its end, or a stop request ended a stream (a silent pipe)
        return signals.stop_requested()

    def _live_loop(self, st: _LoopState, clock: _WallClock, ipfix: Any) -> bool:
        """Live: ticks on wall time; SIGINT/SIGTERM stop after the batch in hand.
        Returns whether a signal stopped the run."""
        from netscope import signals

        limit = self.cfg.run.count
        counters = st.counters
        stage = st.source.stage
        for raw in st.source.batches(signals.stop_requested):
            batch = stage.filter(raw)
            if limit and counters.packets + batch.count > limit:
                batch = batch.sliced(limit - counters.packets)
            if batch.count:
                st.process(batch, flush=self.out)
            else:
                stage.idle()
            if ipfix is not None:
                ipfix.poll(time.time_ns())  # active timeout, idle flows out while quiet
            clock.maybe_tick(self.out)
            if limit and counters.packets >= limit:
                return False
            if signals.stop_requested():
                return True
        return signals.stop_requested()  # the source returned: it saw the stop flag

    # ------------------------------------------------------------------ the end

    def _finish_sinks(
        self, processor: Any, sinks: list[Sink]
    ) -> tuple[list[tuple[str, str]], NetScopeError | None]:
        """The table's summary rows, then each sink's; returns them and the first failure."""
        table = processor.flows  # pipeline: shards drain and their tables merge here
        totals = table.totals
        rows: list[tuple[str, str]] = [
            (
                "Flows",
                f"{table.active} active ({totals['created']} seen, {totals['expired']} expired, "
                f"{totals['evicted']} evicted)",
            )
        ]
        if self.cfg.pipeline.enabled:  # the sharded module is imported only when used
            rows += processor.summary_rows()
        final = FinalFlows(table, seed=self.cfg.output.community_id_seed)
        failure: NetScopeError | None = None
        for sink in sinks:
            try:
                rows += sink.finish(final)
            except OutputError as exc:
                failure = failure or exc
            finally:
                sink.close()
        return rows, failure

    def _print_summary(
        self, processor: Any, source: RunInput, interrupted: bool, rows: list[tuple[str, str]]
    ) -> None:
        from netscope.sinks.summary import capture_summary

        counters = processor.analyzer.counters
        try:
            print(
                capture_summary(
                    counters, source.report, interrupted, rows, pipeline=self.cfg.pipeline.enabled
                ),
                file=self.out,
            )
            self.out.flush()
        except BrokenPipeError:
            silence_stdout()

    def _announce_unsupported(self, seen: dict[int, int], announced: set[int]) -> None:
        """Report each unsupported link type once, the first time it appears."""
        for linktype in seen:
            if linktype not in announced:
                announced.add(linktype)
                print(
                    f"warning: Datalink: Unsupported({linktype}): packets are counted, not decoded",
                    file=self.err,
                )


class _LoopState:
    """What happens to one batch after the filter: write, analyse, print, alert, sinks."""

    def __init__(
        self, processor: Any, anomalies: Any, printer: Any, on_batch: list[Sink], source: RunInput
    ) -> None:
        self.processor = processor
        self.anomalies = anomalies
        self.printer = printer
        self.on_batch = on_batch
        self.source = source
        self.counters = processor.analyzer.counters
        self.announced: set[int] = set()

    def process(self, batch: Any, flush: TextIO | None) -> None:
        stage = self.source.stage
        stage.write(batch)
        start = self.counters.packets + 1
        self.processor.feed(batch)
        if self.on_batch:
            cols = getattr(self.processor.analyzer, "cols", None)
            for sink in self.on_batch:
                sink.on_batch(batch, cols)
        if self.printer is not None:
            self.printer.print_batch(batch, start)
            if flush is not None:
                flush.flush()
        if self.anomalies is not None:
            self.anomalies.pump()
            if flush is not None:
                flush.flush()
        stage.raise_failure()  # pcap write failed: stop, the batch was still counted


class _WallClock:
    """Live ticks on a fixed wall-clock schedule (not "interval after the last one"), so
    the tick rate does not drift by the read-loop latency: 30 frames/s at tick_ms=33."""

    def __init__(self, processor: Any, source: RunInput, interval_ns: int, ticking: bool) -> None:
        self.processor = processor
        self.drops = source.drops
        self.interval_ns = interval_ns
        self.ticking = ticking
        self.start = time.time_ns()
        self.due = self.start + interval_ns

    def maybe_tick(self, out: TextIO) -> None:
        now = time.time_ns()
        if now < self.due:
            return
        if self.ticking:
            self.drops.poll()
            self.processor.wall_tick(self.start, now)
            out.flush()
        self.start = now
        self.due += self.interval_ns
        if self.due <= now:  # fell behind (a long batch): restart the schedule
            self.due = now + self.interval_ns

    def final_tick(self, out: TextIO) -> None:
        """The last, partial interval (Ctrl-C, -c, end of capture): its rates cover the
        time it lasted, so the traffic since the last line is not lost."""
        if not self.ticking:
            return
        now = time.time_ns()
        if now - self.start >= MIN_FINAL_TICK_NS:
            self.processor.wall_tick(self.start, now)
            out.flush()


def silence_stdout() -> None:
    """Point fd 1 at /dev/null (stdout's reader went away; later prints must not fail)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

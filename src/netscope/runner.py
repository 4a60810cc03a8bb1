"""Run one ``netscope`` invocation from a validated Config (the CLI's back end).

Owns the run's life cycle: open the source, warm the kernels, loop over batches,
and — however the loop ends (EOF, ``-c``, Ctrl-C/SIGTERM, a read error) — print the
summary for everything processed so far, then write the exports. Signals are
:mod:`netscope.signals`' business; the loop polls its stop flag between batches.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

from netscope.config import Config
from netscope.errors import NetScopeError, OutputError
from netscope.flows.table import FlowOptions

log = logging.getLogger(__name__)


def flow_options(cfg: Config, keep_expired: bool = False) -> FlowOptions:
    """The flow table settings a Config asks for."""
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


def run(cfg: Config, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Execute ``cfg``; return the process exit code (errors raise NetScopeError)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    from netscope.memory import check_run

    check_run(cfg)  # before anything big is allocated (exit 2 if it cannot fit)
    if cfg.synthetic_flows is not None:
        from netscope.flows.synthetic import print_synthetic, run_synthetic

        result = run_synthetic(cfg.synthetic_flows)
        print_synthetic(result, out)
        return 0 if result.passed else 1
    if cfg.list_interfaces:
        from netscope.sources.live import print_interfaces

        return print_interfaces(out)
    from netscope.live_run import LiveRun
    from netscope.sinks.paths import check_outputs, writes_to_stdout

    check_outputs(cfg)  # before anything is opened for writing (exit 2)
    if writes_to_stdout(cfg):
        out = err  # stdout carries an export: our own text must not corrupt it
    if cfg.capture.read_pcap is None:
        return LiveRun(cfg, out, err).execute()
    return OfflineRun(cfg, out, err).execute()


class OfflineRun:
    """Reads a capture file batch by batch through the inline processor."""

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err

    def execute(self) -> int:
        from netscope import engine, signals
        from netscope.flows.stats import StatsPrinter
        from netscope.flows.zeek_run import ZeekConnExport
        from netscope.live_run import CaptureStage
        from netscope.pipeline.inline import InlineProcessor
        from netscope.sinks.alerts import AnomalyReporter
        from netscope.sinks.console import PacketPrinter
        from netscope.sinks.jsonl import ExpiredFlowsSink
        from netscope.sinks.startup import StartupBanner
        from netscope.sources import open_capture_file

        cfg = self.cfg
        path = cfg.capture.read_pcap
        assert path is not None
        source = open_capture_file(path)
        try:
            stage = CaptureStage.for_file(cfg, source)  # -f and --write-pcap
        except BaseException:
            source.close()
            raise
        expired_sink = (
            ExpiredFlowsSink(cfg.output.expired_flows_jsonl)
            if cfg.output.expired_flows_jsonl is not None
            else None
        )
        engine.warm_up(need=kernel_groups(cfg, live=False))
        interval_ns = cfg.stats.interval_ms * 1_000_000 if cfg.stats.enabled else 0
        if cfg.web.enabled:  # the dashboard's capture-time ticks drive the stats line too
            interval_ns = cfg.web.tick_ms * 1_000_000
        processor: Any
        stats_printer: Any = None
        if cfg.pipeline.enabled:  # sharded: stats lines and ticks come from the aggregator
            from netscope.pipeline.sharded import PipelineProcessor

            processor = PipelineProcessor.for_config(
                cfg, flow_options(cfg, expired_sink is not None), interval_ns, self.out, live=False
            )
            processor.on_expired = expired_sink
        else:
            processor = InlineProcessor(flow_options(cfg, expired_sink is not None), interval_ns)
            if cfg.stats.enabled:
                processor.on_tick = StatsPrinter(self.out, processor.flows, cfg.stats.top_flows)
            stats_printer = processor.on_tick
            processor.flows.on_expired = expired_sink
        dashboard = None
        if cfg.web.enabled:
            from netscope.sinks.startup import insecure_auth_warning
            from netscope.web.server import Dashboard

            if (warning := insecure_auth_warning(cfg)) is not None:
                print(warning, file=self.err)
            try:
                dashboard = Dashboard.start(cfg, processor, self.err)
            except BaseException:
                source.close()
                raise
            processor.on_tick = dashboard.tick_handler(processor.on_tick)
        from netscope.sinks.ipfix import wiring as ipfix_wiring

        ipfix = ipfix_wiring.attach(
            cfg, processor, flow_options(cfg), False, dashboard, stats_printer
        )  # --export-ipfix (None when off)
        try:
            anomalies = AnomalyReporter.attach(cfg, processor, self.out, self.err)
            zeek = ZeekConnExport.attach(cfg, processor)  # Zeek conn.log (docs/exports.md)
        except BaseException:
            source.close()
            if dashboard is not None:
                dashboard.stop()
            raise
        pacer = self._pacer(cfg)
        if pacer is not None and dashboard is not None:
            dashboard.attach_replay(pacer)
        printer = None if cfg.output.quiet else PacketPrinter(self.out, cfg.detailed_view)
        counters = processor.analyzer.counters
        limit = cfg.run.count
        banner = StartupBanner(self.out, cfg)  # the original's start-up lines, also with --quiet
        if source.report.link_types:  # pcap: in the file header; pcapng: at the first batch
            banner.finish(sorted(source.report.link_types))
        announced: set[int] = set()
        interrupted = False
        failure: NetScopeError | None = None
        # From here a signal asks the loop to stop between batches (netscope.signals), so
        # every batch written to the pcap is also counted, and the summary and exports follow.
        signals.begin_run()
        try:
            batches = source.batches() if pacer is None else pacer.paced(source.batches())
            for batch in batches:
                banner.finish(_first_seen(source.report.link_types, batch.linktypes[: batch.count]))
                batch = stage.filter(batch)
                if limit and counters.packets + batch.count > limit:
                    batch = batch.sliced(limit - counters.packets)
                stage.write(batch)
                start = counters.packets + 1
                processor.feed(batch)
                self._announce_unsupported(counters.unsupported_linktypes, announced)
                if printer is not None:
                    printer.print_batch(batch, start)
                if anomalies is not None:
                    anomalies.pump()
                stage.raise_failure()  # pcap write failed: stop, the batch was still counted
                if limit and counters.packets >= limit:
                    break
                if signals.stop_requested():
                    interrupted = True
                    break
            else:  # the source ended: at end of input, or a stop request ended a stream
                interrupted = signals.stop_requested()
            if not interrupted:
                processor.finish()
                if anomalies is not None and dashboard is not None:
                    anomalies.pump()  # pipeline: shards' last alerts, before the final frame
        except KeyboardInterrupt:  # library callers without netscope.signals installed
            interrupted = True
        except BrokenPipeError:
            # Output piped into e.g. `head`, which has exited: stop quietly.
            _silence_stdout()
            source.close()
            if zeek is not None:
                zeek.finish()
            if dashboard is not None:
                dashboard.stop()
            return 0
        except OutputError as exc:
            failure = exc  # e.g. the expired-flows disk filled: stop, still summarise
        finally:
            source.close()
        banner.finish(sorted(source.report.link_types))  # an empty capture: still say so
        ipfix_rows = ipfix_wiring.finish(ipfix, processor)  # before the dashboard's last frame
        if dashboard is not None:
            dashboard.finish()
        if source.report.warning:
            print(f"warning: {source.report.warning}", file=self.err)
        stage_rows, stage_failure = stage.close()
        stage_rows += ipfix_rows
        zeek_rows, zeek_failure = zeek.finish() if zeek is not None else ([], None)
        stage_rows, stage_failure = stage_rows + zeek_rows, stage_failure or zeek_failure
        extra, export_failure = self._write_outputs(processor, expired_sink)
        alert_rows, alert_failure = anomalies.finish() if anomalies is not None else ([], None)
        extra = stage_rows + extra + alert_rows
        failure = failure or stage_failure or export_failure or alert_failure
        from netscope.sinks.summary import capture_summary

        try:
            print(
                capture_summary(
                    counters, source.report, interrupted, extra, pipeline=cfg.pipeline.enabled
                ),
                file=self.out,
            )
            self.out.flush()
        except BrokenPipeError:
            _silence_stdout()
        if dashboard is not None:
            # Offline input: the final state stays on screen until Ctrl-C (docs/web-dashboard.md).
            if not interrupted and failure is None:
                dashboard.serve_until_interrupt(self.err)
            dashboard.stop()
        if failure is not None:
            raise failure
        return 0

    @staticmethod
    def _pacer(cfg: Config) -> Any:
        """``--replay-speed``: a pacer between source and processor (None: full speed)."""
        if cfg.run.replay_speed <= 0:
            return None
        from netscope.pipeline.pacing import ReplayPacer, capture_end_ns
        from netscope.sources import open_capture_file

        path = cfg.capture.read_pcap
        end = None
        if cfg.web.enabled and path is not None and os.path.isfile(path):
            end = capture_end_ns(lambda: open_capture_file(path))  # the seek bar's span
        return ReplayPacer(cfg.run.replay_speed, end_ns=end)

    def _write_outputs(
        self, processor: object, expired_sink: object
    ) -> tuple[list[tuple[str, str]], NetScopeError | None]:
        """Exports and sink closing; returns summary rows and the first failure."""
        from netscope.flows.records import records_from_rows
        from netscope.pipeline.inline import InlineProcessor
        from netscope.sinks.exports import write_csv, write_json
        from netscope.sinks.jsonl import ExpiredFlowsSink

        cfg = self.cfg
        if cfg.pipeline.enabled:  # imported only when used: start-up (docs/performance.md)
            from netscope.pipeline.sharded import PipelineProcessor

            assert isinstance(processor, PipelineProcessor)
        else:
            assert isinstance(processor, InlineProcessor)
        table = processor.flows  # pipeline: shards drain and their tables merge here
        totals = table.totals
        rows: list[tuple[str, str]] = [
            (
                "Flows",
                f"{table.active} active ({totals['created']} seen, {totals['expired']} expired, "
                f"{totals['evicted']} evicted)",
            )
        ]
        if not isinstance(processor, InlineProcessor):
            rows += processor.summary_rows()
        failure: NetScopeError | None = None
        if isinstance(expired_sink, ExpiredFlowsSink):
            try:
                expired_sink.close()
                rows.append(
                    (
                        "Expired flows",
                        f"{expired_sink.writer.path} ({expired_sink.writer.lines} flows)",
                    )
                )
            except OutputError as exc:
                failure = exc
        if cfg.output.export_json is None and cfg.output.export_csv is None:
            return rows, failure
        records = records_from_rows(
            table.keys, table.i64, table.f64 if table.deep else None, table.u8, table.live_rows()
        )
        for label, target, writer in (
            ("JSON export", cfg.output.export_json, write_json),
            ("CSV export", cfg.output.export_csv, write_csv),
        ):
            if target is None:
                continue
            try:
                count = writer(target, records)
                rows.append((label, f"{target} ({count} flows)"))
            except OutputError as exc:
                failure = failure or exc
        return rows, failure

    def _announce_unsupported(self, seen: dict[int, int], announced: set[int]) -> None:
        """Report each unsupported link type once, the first time it appears."""
        for linktype in seen:
            if linktype not in announced:
                announced.add(linktype)
                print(
                    f"warning: Datalink: Unsupported({linktype}): packets are counted, not decoded",
                    file=self.err,
                )


def _first_seen(declared: set[int], batch_linktypes: Any) -> list[int]:
    """Link types in the order the capture uses them: the batch's first, then the rest."""
    order = list(dict.fromkeys(int(lt) for lt in batch_linktypes[:1]))
    return order + sorted(lt for lt in declared if lt not in order)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

"""Run one ``netscope`` invocation from a validated Config (the CLI's back end).

Owns the run's life cycle: open the source, warm the kernels, loop over batches,
and — however the loop ends (EOF, ``-c``, Ctrl-C, a read error) — print the
summary for everything processed so far, then write the exports.
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
    return FlowOptions(
        max_flows=cfg.flow.max_flows,
        timeout_secs=cfg.flow.timeout_secs,
        rtt=cfg.analysis.rtt,
        retrans=cfg.analysis.retrans,
        out_of_order=cfg.analysis.out_of_order,
        keep_expired=keep_expired,
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
    from netscope.live_run import LiveRun, install_sigterm_as_interrupt
    from netscope.sinks.paths import check_outputs, writes_to_stdout

    check_outputs(cfg)  # before anything is opened for writing (exit 2)
    if writes_to_stdout(cfg):
        out = err  # stdout carries an export: our own text must not corrupt it
    if cfg.capture.read_pcap is None:
        return LiveRun(cfg, out, err).execute()
    install_sigterm_as_interrupt()
    return OfflineRun(cfg, out, err).execute()


class OfflineRun:
    """Reads a capture file batch by batch through the inline processor."""

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err
        self.parquet_sink: Any = None  # --export-parquet, finished in _write_outputs

    def execute(self) -> int:
        from netscope import engine
        from netscope.flows.stats import StatsPrinter
        from netscope.live_run import CaptureStage
        from netscope.pipeline.inline import InlineProcessor
        from netscope.sinks.alerts import AnomalyReporter
        from netscope.sinks.console import PacketPrinter
        from netscope.sinks.jsonl import ExpiredFlowsSink
        from netscope.sinks.parquet import chain_expired, open_parquet_sink
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
            ExpiredFlowsSink(cfg.output.expired_flows_jsonl, seed=cfg.output.community_id_seed)
            if cfg.output.expired_flows_jsonl is not None
            else None
        )
        self.parquet_sink = open_parquet_sink(cfg)  # --export-parquet (sinks/parquet.py)
        on_expired = chain_expired(expired_sink, self.parquet_sink)
        engine.warm_up(need=kernel_groups(cfg, live=False))
        interval_ns = cfg.stats.interval_ms * 1_000_000 if cfg.stats.enabled else 0
        if cfg.web.enabled:  # the dashboard's capture-time ticks drive the stats line too
            interval_ns = cfg.web.tick_ms * 1_000_000
        processor: Any
        if cfg.pipeline.enabled:  # sharded: stats lines and ticks come from the aggregator
            from netscope.pipeline.sharded import PipelineProcessor

            processor = PipelineProcessor.for_config(
                cfg, flow_options(cfg, on_expired is not None), interval_ns, self.out, live=False
            )
            processor.on_expired = on_expired
        else:
            processor = InlineProcessor(flow_options(cfg, on_expired is not None), interval_ns)
            if cfg.stats.enabled:
                processor.on_tick = StatsPrinter(self.out, processor.flows, cfg.stats.top_flows)
            processor.flows.on_expired = on_expired
        dashboard = None
        if cfg.web.enabled:
            from netscope.web.server import Dashboard

            try:
                dashboard = Dashboard.start(cfg, processor, self.err)
            except BaseException:
                source.close()
                raise
            processor.on_tick = dashboard.tick_handler(processor.on_tick)
        try:
            anomalies = AnomalyReporter.attach(cfg, processor, self.out, self.err)
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
        announced: set[int] = set()
        interrupted = False
        failure: NetScopeError | None = None
        try:
            batches = source.batches() if pacer is None else pacer.paced(source.batches())
            for batch in batches:
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
            processor.finish()
            if anomalies is not None and dashboard is not None:
                anomalies.pump()  # pipeline: shards' last alerts, before the final frame
        except KeyboardInterrupt:
            interrupted = True
        except BrokenPipeError:
            # Output piped into e.g. `head`, which has exited: stop quietly.
            _silence_stdout()
            source.close()
            if dashboard is not None:
                dashboard.stop()
            return 0
        except OutputError as exc:
            failure = exc  # e.g. the expired-flows disk filled: stop, still summarise
        finally:
            source.close()
        if dashboard is not None:
            dashboard.finish()
        if source.report.warning:
            print(f"warning: {source.report.warning}", file=self.err)
        stage_rows, stage_failure = stage.close()
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
        from netscope.pipeline.sharded import PipelineProcessor
        from netscope.sinks.exports import write_csv, write_json
        from netscope.sinks.jsonl import ExpiredFlowsSink
        from netscope.sinks.parquet import finish_parquet

        assert isinstance(processor, InlineProcessor | PipelineProcessor)
        cfg = self.cfg
        table = processor.flows  # pipeline: shards drain and their tables merge here
        totals = table.totals
        rows: list[tuple[str, str]] = [
            (
                "Flows",
                f"{table.active} active ({totals['created']} seen, {totals['expired']} expired, "
                f"{totals['evicted']} evicted)",
            )
        ]
        if isinstance(processor, PipelineProcessor):
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
        try:
            rows += finish_parquet(self.parquet_sink, table)
        except OutputError as exc:
            failure = failure or exc
        if cfg.output.export_json is None and cfg.output.export_csv is None:
            return rows, failure
        records = records_from_rows(
            table.keys,
            table.i64,
            table.f64 if table.deep else None,
            table.u8,
            table.live_rows(),
            seed=cfg.output.community_id_seed,
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


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

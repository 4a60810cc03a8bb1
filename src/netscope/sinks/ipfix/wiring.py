"""Attach the IPFIX exporter to a run (runner.py / live_run.py call these few functions).

Kept apart from the run loops so their edits stay one-liners: build the exporter from the
config, hook it to the processor (expired flows, ticks, the active-timeout table scan,
stats line and /metrics), and finish it at the end of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from netscope.config import Config
from netscope.flows.table import ExpiredBatch, FlowOptions
from netscope.sinks.ipfix.exporter import IpfixExporter, IpfixSettings, export_col_for
from netscope.sinks.ipfix.sender import parse_target

log = logging.getLogger("netscope.ipfix")
OFFLINE_TICK_NS = 1_000_000_000  # a file with no stats/dashboard ticks: poll each second


def wanted(cfg: Config) -> bool:
    return cfg.output.ipfix.collector is not None


def settings_from(cfg: Config) -> IpfixSettings:
    c = cfg.output.ipfix
    assert c.collector is not None
    return IpfixSettings(
        target=parse_target(c.collector),
        domain_id=c.observation_domain_id,
        template_refresh_s=c.template_refresh_s,
        active_timeout_s=c.active_timeout_s,
        mtu=c.mtu,
        options_template=c.options_template,
        queue_messages=c.queue_messages,
    )


def _fan_out(
    first: Callable[[ExpiredBatch], None] | None, second: Callable[[ExpiredBatch], None]
) -> Callable[[ExpiredBatch], None]:
    if first is None:
        return second

    def both(batch: ExpiredBatch) -> None:
        first(batch)
        second(batch)

    return both


def attach(
    cfg: Config,
    processor: Any,
    options: FlowOptions,
    live: bool,
    dashboard: Any = None,
    stats_printer: Any = None,
) -> IpfixExporter | None:
    """Create the exporter (None when not asked for) and hook it to ``processor``.

    Call after the dashboard (if any) wrapped the tick handler. ``options`` are the flow
    options the processor's tables were built with (export columns on).
    """
    if not wanted(cfg):
        return None
    exporter = IpfixExporter(settings_from(cfg), export_col_for(options))
    exporter.live = live  # live capture: the sender never makes the capture wait
    if cfg.pipeline.enabled:
        processor.on_expired = _fan_out(processor.on_expired, exporter)
        if exporter.settings.active_timeout_s > 0:
            log.warning(
                "IPFIX: the active timeout is not applied with --pipeline (shard tables are "
                "private to their threads): flows are exported when they end"
            )
    else:
        table = processor.flows
        table.on_expired = _fan_out(table.on_expired, exporter)
        exporter.attach(table, live)
        if not live:
            if not processor.tick_interval_ns:
                processor.tick_interval_ns = OFFLINE_TICK_NS
            processor.on_tick = exporter.tick_handler(processor.on_tick)
    if stats_printer is not None and hasattr(stats_printer, "suffix"):
        stats_printer.suffix = exporter.stats_suffix  # drops on the [stats] line
    if dashboard is not None:
        dashboard.feed.extra_totals = exporter.metric_totals
    return exporter


def finish(exporter: IpfixExporter | None, processor: Any) -> list[tuple[str, str]]:
    """Export the flows left in the table, flush the sender; the summary rows."""
    if exporter is None:
        return []
    exporter.finish(processor.flows)
    return exporter.summary_rows()

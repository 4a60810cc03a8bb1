"""``/metrics``: the run's totals in the Prometheus text format.

A custom collector reads the hub's latest totals at scrape time instead of keeping
prometheus_client Counter objects in step with the capture: the capture side already counts
everything (the same numbers the summary prints), so the metrics can never disagree with
it, and nothing on the capture thread touches prometheus_client. The registry is private
(not the global default), so two servers in one process — tests — do not collide.

Every metric the original NetScope exported exists under its name and meaning
(``netscope_build_info``, ``netscope_uptime_seconds``, ``netscope_capture_bytes_total``,
``netscope_capture_packets_total``, ``netscope_active_flows``,
``netscope_dispatch_drops_total``, ``netscope_kernel_drops_total``,
``netscope_kernel_if_drops_total``), so dashboards and alert rules built on it keep
working. The others are ours and say something the original did not; no quantity is
exported under two names.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from netscope.web.hub import Hub

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The original NetScope's metric names, as they appear on the wire (ORIGINAL_NAMES is what
# tests and docs/migrating.md check against).
ORIGINAL_NAMES = (
    "netscope_build_info",
    "netscope_uptime_seconds",
    "netscope_capture_bytes_total",
    "netscope_capture_packets_total",
    "netscope_active_flows",
    "netscope_dispatch_drops_total",
    "netscope_kernel_drops_total",
    "netscope_kernel_if_drops_total",
)

# (totals key, metric name without _total, help)
COUNTERS = (
    ("packets", "netscope_capture_packets", "Total captured packets."),
    ("bytes", "netscope_capture_bytes", "Total captured bytes (wire length)."),
    ("parse_errors", "netscope_parse_errors", "Packets that did not decode cleanly."),
    ("flows_created", "netscope_flows_created", "Flows created."),
    ("flows_expired", "netscope_expired_flows", "Flows expired by the inactivity timeout."),
    ("flows_evicted", "netscope_evicted_flows", "Flows evicted by the max_flows cap."),
    ("alerts", "netscope_alerts", "Anomaly alerts raised."),
    (
        "dispatch_drops",
        "netscope_dispatch_drops",
        "Total capture-to-worker dispatch drops (packets; pipeline mode).",
    ),
    ("kernel_drops", "netscope_kernel_drops", "Total kernel/libpcap dropped packets."),
    ("interface_drops", "netscope_kernel_if_drops", "Total interface-level dropped packets."),
    ("ipfix_records", "netscope_ipfix_records", "Flow records encoded for IPFIX export."),
    ("ipfix_messages_sent", "netscope_ipfix_messages_sent", "IPFIX messages sent."),
    (
        "ipfix_dropped_messages",
        "netscope_ipfix_dropped_messages",
        "IPFIX messages lost: sender queue full or collector unreachable.",
    ),
    (
        "web_dropped_messages",
        "netscope_web_dropped_ticks",
        "Tick messages the dashboard queue refused (the server fell behind).",
    ),
)


class HubCollector(Collector):
    """Yields the metric families from the hub's current totals."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[InfoMetricFamily | CounterMetricFamily | GaugeMetricFamily]:
        hub = self.hub
        totals = hub.totals
        yield InfoMetricFamily(
            "netscope_build",
            "Build information for the running NetScope.",
            value={"version": hub.version},
        )
        yield GaugeMetricFamily(
            "netscope_uptime_seconds",
            "Seconds since the server started.",
            time.time() - hub.started,
        )
        yield GaugeMetricFamily(
            "netscope_active_flows",
            "Active flow count from the latest tick.",
            totals.get("active_flows", 0),
        )
        for key, name, doc in COUNTERS:
            yield CounterMetricFamily(name, doc, value=totals.get(key, 0))
        yield GaugeMetricFamily(
            "netscope_web_clients", "Connected dashboard clients.", len(hub.clients)
        )
        yield CounterMetricFamily(
            "netscope_web_frames", "Dashboard frames published.", value=hub.frame_seq
        )
        yield CounterMetricFamily(
            "netscope_web_frames_skipped",
            "Frames a lagging client skipped (overwritten before sent).",
            value=hub.frames_skipped + sum(c.skipped for c in hub.clients),
        )
        yield GaugeMetricFamily(
            "netscope_web_queue_depth", "Tick messages waiting for the server.", hub.queue.qsize()
        )
        depths = hub.shard_depths
        if depths:
            fam = GaugeMetricFamily(
                "netscope_shard_queue_depth",
                "Batches waiting per pipeline shard.",
                labels=["shard"],
            )
            for i, depth in enumerate(depths):
                fam.add_metric([str(i)], depth)
            yield fam


def make_registry(hub: Hub) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)

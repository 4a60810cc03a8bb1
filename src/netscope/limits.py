"""The documented range of every numeric setting (SPEC §4/§5), one table for flags and TOML.

Each range says why its ends are where they are: an upper bound exists because a value past
it overflows an int64 nanosecond clock, pre-allocates more memory than a machine has, can
never fire, or starts more threads than any machine can use. ``config._check_limits`` applies
the table to every value, whether a flag or a config file set it, so the error names what the
user typed (``--max-flows`` or ``flow.max_flows`` in the file). docs/configuration.md and
docs/cli-reference.md list the same ranges; ``tests/test_config.py`` checks that every numeric
key of the schema has a row here and that the docs mention each bound.

This module must stay cheap to import (no numpy): ``netscope --help`` imports config.
"""

from __future__ import annotations

from dataclasses import dataclass

# libpcap's MAXIMUM_SNAPLEN: larger values are clamped by every capture tool anyway.
MAX_SNAPLEN = 262144
# The anomaly detector's fixed per-detector entry cap (anomaly.detector.DEFAULT_MAX_ENTRIES):
# the SYN-flood window holds at most this many SYNs and the port-scan window this many
# (source, port/host) members, so a larger threshold could never be reached.
ANOMALY_MAX_ENTRIES = 1 << 17
# A day / a year, in seconds: the longest window, cooldown and flow timeout that mean anything
# (and far below where seconds * 1e9 overflows the kernels' int64 nanosecond clock).
DAY_S = 86_400
YEAR_S = 365 * DAY_S


@dataclass(frozen=True)
class Range:
    """Allowed values ``lo <= v <= hi`` (``lo < v`` when ``lo_open``); ``hi`` None = no cap."""

    lo: float
    hi: float | None
    unit: str
    why: str
    lo_open: bool = False

    def contains(self, value: float) -> bool:
        return self.violation(value) is None

    def violation(self, value: float) -> str | None:
        """The side ``value`` breaks (``>= 1``, ``> 0``, ``<= 65535``), or None if it fits."""
        if self.lo_open and not value > self.lo:
            return f"> {_num(self.lo)}"
        if not self.lo_open and not value >= self.lo:
            return f">= {_num(self.lo)}"
        if self.hi is not None and value > self.hi:
            return f"<= {_num(self.hi)}"
        return None

    def describe(self) -> str:
        """``1..262144 bytes`` / ``(0, 86400] s`` / ``>= 0``, for hints and docs."""
        unit = f" {self.unit}" if self.unit else ""
        lo = _num(self.lo)
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {lo}{unit}"
        if self.lo_open:
            return f"> {lo} and <= {_num(self.hi)}{unit}"
        return f"{lo}..{_num(self.hi)}{unit}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


R = Range
# dotted config key -> range. Keys that only flags set (verbosity, synthetic_flows) are
# top-level, as in the Config dataclass.
RANGES: dict[str, Range] = {
    "capture.snaplen": R(1, MAX_SNAPLEN, "bytes", "libpcap's maximum snapshot length"),
    "capture.timeout_ms": R(1, 60_000, "ms", "a read timeout above a minute stalls Ctrl-C/stats"),
    "capture.buffer_size_mb": R(
        0, 2047, "MiB", "0 = backend default; libpcap takes the size in bytes as a C int"
    ),
    "run.count": R(0, 10**15, "packets", "0 = no limit; keeps int64 packet counters exact"),
    "run.replay_speed": R(0, 1_000_000, "x", "0 = as fast as possible (max); 1 = as captured"),
    "output.write_pcap_rotate_mb": R(0, 1_048_576, "MiB", "0 = no rotation; at most 1 TiB"),
    "output.write_pcap_max_files": R(0, 1_000_000, "files", "0 = no rotation"),
    "output.ipfix.observation_domain_id": R(0, 4_294_967_295, "", "an unsigned 32-bit id"),
    "output.ipfix.template_refresh_s": R(1, DAY_S, "s", "at least once a second, at most a day"),
    "output.ipfix.active_timeout_s": R(0, YEAR_S, "s", "0 = export a flow only when it ends"),
    "output.ipfix.mtu": R(
        256, 65_507, "bytes", "the templates must fit in one message; 65507 = largest UDP payload"
    ),
    "output.ipfix.queue_messages": R(1, 1_000_000, "messages", "the sender's bounded queue"),
    "output.community_id_seed": R(0, 65535, "", "Community ID v1 seeds are 16 bits"),
    "output.parquet_row_group_flows": R(
        1, 10_000_000, "flows", "held in memory until written; ~150 bytes each"
    ),
    "flow.timeout_secs": R(0, YEAR_S, "s", "0 = never expire; at most a year"),
    "flow.max_flows": R(
        0, 1_000_000_000, "flows", "0 = unlimited (grows while memory allows); rows are int32"
    ),
    "stats.interval_ms": R(1, DAY_S * 1000, "ms", "at most a day"),
    "stats.top_flows": R(0, 1000, "flows", "lines per stats tick"),
    "analysis.anomalies.syn_flood.window_secs": R(0, DAY_S, "s", "at most a day", lo_open=True),
    "analysis.anomalies.syn_flood.syn_threshold": R(
        1, ANOMALY_MAX_ENTRIES, "SYNs", "the window holds at most this many SYNs"
    ),
    "analysis.anomalies.syn_flood.unique_src_threshold": R(
        1, ANOMALY_MAX_ENTRIES, "sources", "the window holds at most this many SYNs"
    ),
    "analysis.anomalies.syn_flood.cooldown_secs": R(0, DAY_S, "s", "at most a day"),
    "analysis.anomalies.port_scan.window_secs": R(0, DAY_S, "s", "at most a day", lo_open=True),
    "analysis.anomalies.port_scan.unique_ports_threshold": R(
        1, 65_536, "ports", "there are 65536 ports"
    ),
    "analysis.anomalies.port_scan.unique_hosts_threshold": R(
        1, ANOMALY_MAX_ENTRIES, "hosts", "the window holds at most this many members"
    ),
    "analysis.anomalies.port_scan.cooldown_secs": R(0, DAY_S, "s", "at most a day"),
    "web.port": R(1, 65_535, "", "a TCP port"),
    "web.tick_ms": R(
        0, 60_000, "ms", "below 16 is raised to 16 with a warning; at least one frame a minute"
    ),
    "web.top_n": R(0, 1000, "flows", "rows of the dashboard's top-flows table"),
    "web.packet_buffer": R(1, 1_000_000, "packets", "the pre-allocated packet-detail ring"),
    "web.sample_rate": R(0, 1_000_000_000, "packets", "0 = no packet feed"),
    "web.payload_bytes": R(0, MAX_SNAPLEN, "bytes", "no packet has more than the snaplen"),
    "pipeline.workers": R(0, 64, "threads", "0 = half the CPUs, 1..8; each owns a flow table"),
    "dask_workers": R(1, 256, "processes", "--dask local: single-threaded worker processes"),
    "dask_tasks": R(0, 4096, "tasks", "0 = one per Dask worker thread; each reads the whole set"),
    "pipeline.channel_capacity": R(1, 1_048_576, "packets", "per-shard queue bound"),
    "synthetic_flows": R(1, 100_000_000, "flows", "the table is pre-sized for N flows"),
    "verbosity": R(0, None, "", "the number of -v"),
}

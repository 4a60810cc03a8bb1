"""What a run will pre-allocate, checked against the memory the machine has before allocating.

A run that asks for more memory than exists used to die half-way (a numpy ``MemoryError``
traceback, or the kernel's OOM killer ending the process without a word). The estimate adds
up every array a run allocates up front — flow tables (one per pipeline shard), anomaly
detector tables (one per shard), the dashboard's packet-detail ring, the pipeline queues'
bound, the capture ring, a ``--synthetic-flows`` table — and ``check_run`` refuses with exit
2 when the total exceeds ``MemAvailable`` of /proc/meminfo, naming the biggest parts and the
override (``NETSCOPE_ALLOW_LARGE_ALLOC=1``). Where /proc/meminfo is missing (macOS) nothing
is refused.

Flow tables start small and grow (``flows.table``); their growth asks ``growth_refusal``
before each doubling, so an unlimited or very large ``max_flows`` is bounded by memory too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from netscope.config import Config
from netscope.errors import UsageError

log = logging.getLogger("netscope.memory")

ALLOW_ENV = "NETSCOPE_ALLOW_LARGE_ALLOC"
MEMINFO = "/proc/meminfo"
# header bytes + metadata one queued packet holds in a pipeline queue (HEADER_BYTES_GUESS
# of the gather buffer plus offset/length/time columns)
QUEUED_PACKET_BYTES = 96 + 32


def allowed_anyway() -> bool:
    """True when the user set ``NETSCOPE_ALLOW_LARGE_ALLOC`` to a non-empty, non-0 value."""
    return os.environ.get(ALLOW_ENV, "") not in ("", "0")


def available_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo in bytes, or None where it cannot be read."""
    try:
        with open(MEMINFO, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def fmt(n: int) -> str:
    """Bytes as ``1.4 GB`` / ``56 MB`` (decimal units, as free(1) -h and most users read)."""
    if n >= 10**9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.0f} MB"


@dataclass(frozen=True)
class Part:
    """One pre-allocated piece: what, how many copies, bytes each."""

    what: str
    copies: int
    each: int

    @property
    def total(self) -> int:
        return self.copies * self.each

    def label(self) -> str:
        each = fmt(self.each)
        return f"{self.what} {self.copies} x {each}" if self.copies > 1 else f"{self.what} {each}"


def estimate(cfg: Config) -> list[Part]:
    """Every pre-allocation of the run ``cfg`` describes, largest first."""
    from netscope.flows.table import FlowOptions, FlowTable

    parts: list[Part] = []
    if cfg.synthetic_flows is not None:
        n = cfg.synthetic_flows
        opts = FlowOptions(
            max_flows=n, initial_flows=n, rtt=False, retrans=False, out_of_order=False
        )
        return [Part("synthetic flow table", 1, FlowTable.start_bytes(opts))]
    if cfg.list_interfaces:
        return []
    from netscope.runner import flow_options

    shards = cfg.pipeline.worker_count() if cfg.pipeline.enabled else 1
    opts = flow_options(cfg, keep_expired=cfg.output.expired_flows_jsonl is not None)
    parts.append(Part("flow tables", shards, FlowTable.start_bytes(opts)))
    if cfg.analysis.anomalies.enabled:
        from netscope.anomaly.detector import AnomalyDetector

        # np.zeros maps pages lazily: building one to ask its size costs no memory
        each = AnomalyDetector(cfg.analysis.anomalies).state_bytes
        parts.append(Part("anomaly tables", shards, each))
    if cfg.web.enabled:
        from netscope.web.feed import HEADER_BUDGET

        per_packet = HEADER_BUDGET + cfg.web.payload_bytes + 8 + 8 + 4 * 4
        parts.append(Part("web packet ring", 1, cfg.web.packet_buffer * per_packet))
    if cfg.pipeline.enabled:
        each = cfg.pipeline.channel_capacity * QUEUED_PACKET_BYTES
        parts.append(Part("pipeline queues", shards, each))
    if cfg.live_capture and cfg.capture.buffer_size_mb > 0:
        parts.append(Part("capture buffer", 1, cfg.capture.buffer_size_mb << 20))
    return sorted(parts, key=lambda p: -p.total)


def check_run(cfg: Config) -> None:
    """Refuse (UsageError, exit 2) a run whose pre-allocations exceed the available memory;
    warn when a flow table could grow past it (it then stops growing and evicts)."""
    avail = available_bytes()
    if avail is None or allowed_anyway():
        return
    parts = estimate(cfg)
    total = sum(p.total for p in parts)
    if total > avail:
        detail = ", ".join(p.label() for p in parts[:3])
        raise UsageError(
            f"this run would pre-allocate {fmt(total)} ({detail}) but only {fmt(avail)} "
            "is available",
            f"lower {_knobs(cfg)}, or set {ALLOW_ENV}=1 to allocate anyway",
        )
    _warn_full_size(cfg, avail - total)


def _knobs(cfg: Config) -> str:
    """The settings that drive the estimate, for the hint."""
    if cfg.synthetic_flows is not None:
        return "--synthetic-flows"
    knobs = ["--max-flows"]
    if cfg.pipeline.enabled:
        knobs += ["--workers", "pipeline.channel_capacity"]
    if cfg.web.enabled:
        knobs += ["web.packet_buffer", "web.payload_bytes"]
    return "/".join(knobs)


def _warn_full_size(cfg: Config, spare: int) -> None:
    """A table that may grow past the memory left gets a warning up front (not an error:
    most captures never reach max_flows, and growth stops safely if they do)."""
    if cfg.synthetic_flows is not None or cfg.list_interfaces:
        return
    from netscope.flows.table import FlowTable
    from netscope.runner import flow_options

    shards = cfg.pipeline.worker_count() if cfg.pipeline.enabled else 1
    opts = flow_options(cfg)
    full = shards * (FlowTable.full_bytes(opts) - FlowTable.start_bytes(opts))
    if full > spare:
        log.warning(
            "flow tables at --max-flows %d%s would need %s more, only %s is available: "
            "they stop growing when memory runs short and evict the oldest flows",
            opts.max_flows,
            f" x {shards} shards" if shards > 1 else "",
            fmt(full),
            fmt(spare),
        )


def growth_refusal(need: int) -> str | None:
    """Why a flow table must not allocate ``need`` more bytes now, or None if it may."""
    if allowed_anyway():
        return None
    avail = available_bytes()
    if avail is None or need <= avail:
        return None
    return f"growing needs {fmt(need)} but only {fmt(avail)} is available"

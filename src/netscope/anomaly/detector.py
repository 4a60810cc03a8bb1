"""SYN flood and port scan detection over decoded batches (the Python face of the kernel).

``AnomalyDetector`` turns ``[analysis.anomalies*]`` settings into the kernel's parameter
vector, allocates every table once (fixed caps: nothing grows, whatever an attacker sends),
runs ``kernels.anomaly.detect`` on each decoded batch and turns the kernel's alert buffer
into :class:`Alert` objects. It is an ``InlineProcessor`` observer: ``detector(batch, cols)``.

Alerts wait in the detector until the caller drains them (:meth:`AnomalyDetector.drain`), so
the CLI can print them after the batch's packet lines and a pipeline's capture thread can
collect them from shard threads (draining is thread-safe); nothing here prints or writes
files.

The window semantics, the caps and what happens at them are documented in
docs/anomaly-detection.md and in ``netscope.kernels.anomaly``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from netscope.batch import PacketBatch
from netscope.columns import DecodedColumns
from netscope.config import AnomaliesConfig
from netscope.flows.records import format_ip, format_ts
from netscope.lazy import LazyModule

if TYPE_CHECKING:
    from netscope.kernels import anomaly as K
else:  # imported at first use: a run without --anomalies never loads the kernel module
    K = LazyModule("netscope.kernels.anomaly")

log = logging.getLogger("netscope.anomaly")

KIND_SYN_FLOOD = "syn_flood"
KIND_PORT_SCAN = "port_scan"
KINDS = (KIND_SYN_FLOOD, KIND_PORT_SCAN)

# Default hard cap, per detector: SYNs in the SYN-flood window, port-scan sources, and their
# further (source, port) / (source, host) pairs. Sized so a busy link (~26 000 new
# connections/s over the default 5 s window) fits; the whole state is then ~57 MB
# (``AnomalyDetector.state_bytes``), of which pages are only touched as entries are used.
# Smaller caps are faster under a spoofed flood (fewer cache misses; docs/performance.md).
DEFAULT_MAX_ENTRIES = 1 << 17
SWEEP_EVERY_SECS = 30.0
ALERT_BUFFER = 1024
_MIN_ENTRIES = 4


@dataclass(frozen=True)
class Alert:
    """One alert (SPEC §6): ``ts`` is packet time. The structured fields let a consumer
    (dashboard, tests) use the numbers without parsing ``description``."""

    ts_ns: int
    kind: str  # "syn_flood" | "port_scan"
    description: str
    address: str  # SYN flood: the target; port scan: the scanner
    port: int | None  # SYN flood: the target port; port scan: None
    count: int  # SYNs in the window / distinct ports
    distinct: int  # distinct sources / distinct hosts
    span_ns: int  # how long the counted events span (at most the window)

    @property
    def ts(self) -> float:
        """Packet time in seconds since the epoch (the export format of every timestamp)."""
        return format_ts(self.ts_ns)

    def to_dict(self) -> dict[str, Any]:
        """The alerts JSONL / dashboard object: ``{"ts", "kind", "description"}``."""
        return {"ts": self.ts, "kind": self.kind, "description": self.description}


@dataclass(frozen=True)
class AnomalyStats:
    """Counters for the summary, logs and (later) /metrics."""

    syn_events: int
    syn_alerts: int
    syn_forgotten: int  # SYNs dropped from the window early: the window was full
    syn_dropped: int  # SYNs not counted: every key row was held
    syn_peak_window: int  # most SYNs ever in the window at once
    scan_events: int
    scan_alerts: int
    scan_forgotten: int  # (source, port/host) pairs dropped early: the table was full
    scan_dropped: int
    scan_peak_members: int
    max_entries: int

    @property
    def alerts(self) -> int:
        return self.syn_alerts + self.scan_alerts

    @property
    def cap_hits(self) -> int:
        return self.syn_forgotten + self.syn_dropped + self.scan_forgotten + self.scan_dropped


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def format_endpoint(address: str, port: int) -> str:
    """``10.0.0.5:80`` / ``[2001:db8::1]:80``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def describe_syn_flood(address: str, port: int, syns: int, sources: int, span_ns: int) -> str:
    """The original NetScope's text (pipelines grep it); an IPv6 target is bracketed so the
    port stays unambiguous. ``span_ns`` is kept in the Alert, not in the text."""
    del span_ns
    return (
        f"SYN flood suspected: {syns} syns, {sources} sources to {format_endpoint(address, port)}"
    )


def describe_port_scan(address: str, ports: int, hosts: int, span_ns: int) -> str:
    """The original NetScope's text: distinct ports, distinct hosts, the scanner."""
    del span_ns
    return f"Port scan suspected: {ports} ports, {hosts} hosts from {address}"


def _index(rows: int) -> np.ndarray:
    """An empty hash index for ``rows`` rows (power of two, INDEX_SLOTS_PER_ROW per row)."""
    size = 1
    while size < K.INDEX_SLOTS_PER_ROW * rows:
        size <<= 1
    return np.zeros(size, dtype=np.uint64)


def _table(rows: int, words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One zeroed uint64 row matrix and its int64 and int32 views (same memory)."""
    u = np.zeros((rows, words), dtype=np.uint64)
    return u, u.view(np.int64), u.view(np.int32)


class AnomalyDetector:
    """Both detectors over one stream of decoded batches (one per run, or per shard).

    ``max_entries`` is the hard cap of each detector (SYNs in the SYN-flood window; members
    in the port-scan window); key tables have as many rows. Arrays are allocated here once
    and never resized.
    """

    def __init__(
        self,
        settings: AnomaliesConfig | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        sweep_every_secs: float = SWEEP_EVERY_SECS,
        alert_buffer: int = ALERT_BUFFER,
    ) -> None:
        settings = settings if settings is not None else AnomaliesConfig(enabled=True)
        if max_entries < _MIN_ENTRIES:
            raise ValueError(f"max_entries must be >= {_MIN_ENTRIES}")
        if alert_buffer < K.ALERTS_PER_PACKET:
            raise ValueError(f"alert_buffer must be >= {K.ALERTS_PER_PACKET}")
        self.settings = settings
        self.max_entries = max_entries
        sf, ps = settings.syn_flood, settings.port_scan
        p = np.zeros(K.P_WIDTH, dtype=np.int64)
        p[K.P_SF_ON] = int(sf.enabled)
        p[K.P_SF_WINDOW_NS] = _ns(sf.window_secs)
        p[K.P_SF_SYNS] = sf.syn_threshold
        p[K.P_SF_SOURCES] = sf.unique_src_threshold
        p[K.P_SF_COOLDOWN_NS] = _ns(sf.cooldown_secs)
        p[K.P_PS_ON] = int(ps.enabled)
        p[K.P_PS_WINDOW_NS] = _ns(ps.window_secs)
        p[K.P_PS_PORTS] = ps.unique_ports_threshold
        p[K.P_PS_HOSTS] = ps.unique_hosts_threshold
        p[K.P_PS_COOLDOWN_NS] = _ns(ps.cooldown_secs)
        p[K.P_SWEEP_EVERY_NS] = _ns(sweep_every_secs)
        self.p = p
        self.g = np.zeros(K.G_WIDTH, dtype=np.int64)
        self.g[K.G_NOW] = K.NO_TIME
        self.g[K.G_NEXT_SWEEP] = K.NO_TIME
        for head_or_tail in (
            K.G_PS_MLRU_HEAD,
            K.G_PS_MLRU_TAIL,
            K.G_PS_KLRU_HEAD,
            K.G_PS_KLRU_TAIL,
        ):
            self.g[head_or_tail] = -1
        # A disabled detector keeps tiny placeholders: the kernel never touches them.
        n_sf = max_entries if sf.enabled else _MIN_ENTRIES
        n_ps = max_entries if ps.enabled else _MIN_ENTRIES
        # SYN flood: key rows, member rows and FIFO slots all n_sf.
        self.sf_u, self.sf_i, _ = _table(n_sf, K.SF_WORDS)
        self.sf_idx = _index(n_sf)
        self.sf_free = np.zeros(n_sf, dtype=np.int32)
        self.sm_u, self.sm_i, _ = _table(n_sf, K.SM_WORDS)
        self.sm_idx = _index(n_sf)
        self.sm_free = np.zeros(n_sf, dtype=np.int32)
        self.q_ts = np.zeros(n_sf, dtype=np.int64)
        self.q_key = np.zeros(n_sf, dtype=np.int32)
        self.q_mem = np.zeros(n_sf, dtype=np.int32)
        # Port scan: key rows and member rows both n_ps.
        self.ps_u, self.ps_i, self.ps_h = _table(n_ps, K.PS_WORDS)
        self.ps_idx = _index(n_ps)
        self.ps_free = np.zeros(n_ps, dtype=np.int32)
        self.pm_u, self.pm_i, self.pm_h = _table(n_ps, K.PM_WORDS)
        self.pm_idx = _index(n_ps)
        self.pm_free = np.zeros(n_ps, dtype=np.int32)
        self.al_i64 = np.zeros((alert_buffer, K.AL_WIDTH), dtype=np.int64)
        self.al_addr = np.zeros((alert_buffer, 2), dtype=np.uint64)
        self._pending: deque[Alert] = deque()  # appended by the detecting thread
        self.alert_counts = dict.fromkeys(KINDS, 0)
        self._warned_full = False

    # ---- feeding ----------------------------------------------------------
    def __call__(self, batch: PacketBatch, cols: DecodedColumns) -> None:
        """InlineProcessor observer: fold one decoded batch in."""
        self.observe(batch.ts_ns, cols, batch.count)

    def observe(self, ts_ns: np.ndarray, cols: DecodedColumns, count: int) -> None:
        """Fold packets ``[0, count)`` in; new alerts wait for :meth:`drain`."""
        i = 0
        while True:
            i, status = self._run(ts_ns, cols, i, count, K.NO_TIME)
            self._collect()
            if status == K.ST_DONE:
                break
        self._check_caps()

    def sweep(self, now_ns: int) -> None:
        """Expire both windows and idle cooldowns at ``now_ns`` (packet time).

        The kernel sweeps by itself every 30 s of packet time while events arrive; call
        this when time passes without packets (live capture) or to inspect settled state.
        """
        empty = DecodedColumns.allocate(1)
        self._run(np.zeros(1, dtype=np.int64), empty, 0, 0, now_ns)

    def _run(
        self, ts_ns: np.ndarray, cols: DecodedColumns, start: int, count: int, sweep_at: int
    ) -> tuple[int, int]:
        i, status = K.detect(
            start,
            count,
            ts_ns,
            cols.err,
            cols.l3,
            cols.src_hi,
            cols.src_lo,
            cols.dst_hi,
            cols.dst_lo,
            cols.proto,
            cols.frag,
            cols.l4_off,
            cols.sport,
            cols.dport,
            cols.tcp_flags,
            self.p,
            self.g,
            self.sf_u,
            self.sf_i,
            self.sf_idx,
            self.sf_free,
            self.sm_u,
            self.sm_i,
            self.sm_idx,
            self.sm_free,
            self.q_ts,
            self.q_key,
            self.q_mem,
            self.ps_u,
            self.ps_i,
            self.ps_h,
            self.ps_idx,
            self.ps_free,
            self.pm_u,
            self.pm_i,
            self.pm_h,
            self.pm_idx,
            self.pm_free,
            self.al_i64,
            self.al_addr,
            sweep_at,
        )
        return int(i), int(status)

    def _collect(self) -> None:
        n = int(self.g[K.G_ALERTS])
        if not n:
            return
        for row, (hi, lo) in zip(self.al_i64[:n].tolist(), self.al_addr[:n].tolist(), strict=True):
            self._pending.append(self._alert(row, hi, lo))
        self.g[K.G_ALERTS] = 0

    def _alert(self, row: list[int], hi: int, lo: int) -> Alert:
        address = format_ip(row[K.AL_L3], hi, lo)
        n1, n2, span = row[K.AL_N1], row[K.AL_N2], row[K.AL_SPAN_NS]
        if row[K.AL_KIND] == K.ALERT_SYN_FLOOD:
            port = row[K.AL_PORT]
            kind = KIND_SYN_FLOOD
            text = describe_syn_flood(address, port, n1, n2, span)
            alert = Alert(row[K.AL_TS], kind, text, address, port, n1, n2, span)
        else:
            kind = KIND_PORT_SCAN
            text = describe_port_scan(address, n1, n2, span)
            alert = Alert(row[K.AL_TS], kind, text, address, None, n1, n2, span)
        self.alert_counts[kind] += 1
        return alert

    def drain(self) -> list[Alert]:
        """Alerts raised since the last call, oldest first (safe from another thread)."""
        out: list[Alert] = []
        pending = self._pending
        while pending:
            out.append(pending.popleft())
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> AnomalyDetector:
        """An independent detector with the same settings and state (pipeline shards copy
        their observers). Needed because the int64/int32 views must stay views of the
        copy's own matrices, which a plain deepcopy would turn into separate arrays."""
        clone = AnomalyDetector(self.settings, self.max_entries, alert_buffer=self.al_i64.shape[0])
        np.copyto(clone.p, self.p)
        for name, array in self.arrays().items():
            np.copyto(getattr(clone, name), array)
        clone._pending = copy.deepcopy(self._pending, memo)
        clone.alert_counts = dict(self.alert_counts)
        clone._warned_full = self._warned_full
        return clone

    def _check_caps(self) -> None:
        """Log (once) the first time a cap is hit; the summary reports the totals."""
        if self._warned_full:
            return
        st = self.stats
        if st.cap_hits:
            self._warned_full = True
            log.warning(
                "anomaly state is full (cap %d entries per detector): %s; "
                "detection continues on the newest events",
                self.max_entries,
                cap_hits_text(st),
            )

    # ---- reporting --------------------------------------------------------
    @property
    def stats(self) -> AnomalyStats:
        g = self.g
        return AnomalyStats(
            syn_events=int(g[K.G_SF_EVENTS]),
            syn_alerts=int(g[K.G_SF_ALERTS]),
            syn_forgotten=int(g[K.G_SF_FORGOTTEN]),
            syn_dropped=int(g[K.G_SF_DROPPED]),
            syn_peak_window=int(g[K.G_SF_Q_PEAK]),
            scan_events=int(g[K.G_PS_EVENTS]),
            scan_alerts=int(g[K.G_PS_ALERTS]),
            scan_forgotten=int(g[K.G_PS_FORGOTTEN]),
            scan_dropped=int(g[K.G_PS_DROPPED]),
            scan_peak_members=int(g[K.G_PS_MEMBERS_PEAK]),
            max_entries=self.max_entries,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """Every state array by name, views excluded (tests check none is ever replaced or
        resized)."""
        return {
            name: value
            for name, value in vars(self).items()
            if isinstance(value, np.ndarray)
            and value.base is None
            and name not in ("p", "al_i64", "al_addr")
        }

    @property
    def state_bytes(self) -> int:
        """Bytes of all state arrays: the detector's memory ceiling (pages fill on use)."""
        return (
            sum(a.nbytes for a in self.arrays().values())
            + self.al_i64.nbytes
            + (self.al_addr.nbytes)
        )

    @property
    def window_entries(self) -> tuple[int, int]:
        """(SYNs in the SYN-flood window, port-scan member rows in use) right now."""
        return int(self.g[K.G_SF_Q_LEN]), int(self.g[K.G_PS_MEMBERS])

    @property
    def keys(self) -> tuple[int, int]:
        """(SYN-flood keys, port-scan keys) held, including keys parked for a cooldown."""
        return int(self.g[K.G_SF_KEYS]), int(self.g[K.G_PS_KEYS])


def combined_stats(parts: list[AnomalyStats]) -> AnomalyStats:
    """Sum of several detectors' stats (pipeline shards); peaks and caps take the max."""
    if len(parts) == 1:
        return parts[0]
    values: dict[str, int] = {}
    for f in dataclasses.fields(AnomalyStats):
        column = [getattr(st, f.name) for st in parts]
        values[f.name] = (
            max(column)
            if f.name.endswith(("_peak_window", "_peak_members", "max_entries"))
            else sum(column)
        )
    return AnomalyStats(**values)


def cap_hits_text(st: AnomalyStats) -> str:
    """``syn_flood 12 forgotten early, 0 dropped; port_scan …`` (summary and log)."""
    return (
        f"syn_flood {st.syn_forgotten} forgotten early, {st.syn_dropped} dropped; "
        f"port_scan {st.scan_forgotten} forgotten early, {st.scan_dropped} dropped"
    )


def alerts_text(counts: dict[str, int]) -> str:
    """``N (syn_flood X, port_scan Y)`` for the summary's ``Alerts:`` row."""
    total = sum(counts.values())
    parts = ", ".join(f"{kind} {counts.get(kind, 0)}" for kind in KINDS)
    return f"{total} ({parts})"

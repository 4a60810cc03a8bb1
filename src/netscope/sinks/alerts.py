"""Where alerts go: ``[alert] description`` lines, the alerts JSONL file, and listeners.

The detector only produces :class:`~netscope.anomaly.Alert` objects; this sink is the one
place that formats and writes them (SPEC §6: printed as ``[alert] description``, appended
to ``--alerts-jsonl`` as ``{"ts", "kind", "description"}``, pushed to the dashboard).
JSONL lines are flushed as alerts happen, so ``tail -f`` sees an attack while it runs and a
crash loses nothing already reported.

Hooks: every sink calls its own ``listeners`` and then the module-level ``DASHBOARD_HOOKS``
with each alert. The dashboard registers its frame builder in ``DASHBOARD_HOOKS`` when it
starts (it may start before or after the sink exists, hence a module list rather than a
constructor argument). Hooks run on the thread that emits, in alert order.

:class:`AnomalyReporter` wires a detector and a sink into a run in three calls
(``attach`` / ``pump`` / ``finish``), so every runner reports anomalies the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from netscope.anomaly.detector import (
    KINDS,
    Alert,
    AnomalyDetector,
    alerts_text,
    cap_hits_text,
    combined_stats,
)
from netscope.config import Config
from netscope.errors import NetScopeError, OutputError
from netscope.sinks.jsonl import JsonlWriter

AlertListener = Callable[[Alert], None]

# Called with every alert any sink emits (see the module docstring).
DASHBOARD_HOOKS: list[AlertListener] = []


class AlertSink:
    """Print and/or record alerts; count them by kind for the summary."""

    def __init__(
        self,
        out: TextIO | None = None,
        jsonl_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._out = out
        # Opened up front so an unwritable path fails before capture starts (exit 1).
        self.writer = JsonlWriter(jsonl_path) if jsonl_path is not None else None
        self.listeners: list[AlertListener] = []
        self.counts = dict.fromkeys(KINDS, 0)

    def emit(self, alerts: Iterable[Alert]) -> None:
        """Deliver alerts in order: console lines, one JSONL flush, then listeners."""
        batch = list(alerts)
        if not batch:
            return
        for alert in batch:
            self.counts[alert.kind] = self.counts.get(alert.kind, 0) + 1
        if self._out is not None:
            self._out.write("".join(f"[alert] {a.description}\n" for a in batch))
            self._out.flush()
        if self.writer is not None:
            self.writer.write_many([a.to_dict() for a in batch])
        for listener in [*self.listeners, *DASHBOARD_HOOKS]:
            for alert in batch:
                listener(alert)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        """Close the JSONL file (every line was already flushed)."""
        if self.writer is not None:
            self.writer.close()


class AnomalyReporter:
    """A run's anomaly detection: the detector (a processor observer) and its sink.

    ``attach`` returns None when detection is off, so a runner's code is
    ``reporter = AnomalyReporter.attach(cfg, processor, out)``, ``reporter.pump()`` after
    each batch (alerts print after that batch's packet lines), and ``reporter.finish()``
    in the output phase for the summary rows.
    """

    def __init__(self, detector: AnomalyDetector, sink: AlertSink, processor: Any = None) -> None:
        self.detector = detector
        self.sink = sink
        self._processor = processor

    def detectors(self) -> list[AnomalyDetector]:
        """Every detector of the run: one inline, one per shard in pipeline mode (shards
        copy their observers when they start; thresholds then apply per shard)."""
        found = [self.detector]
        shard_observers = getattr(self._processor, "shard_observers", None)
        if callable(shard_observers):
            for observers in shard_observers():
                for ob in observers:
                    if isinstance(ob, AnomalyDetector) and all(ob is not d for d in found):
                        found.append(ob)
        return found

    @classmethod
    def attach(
        cls, cfg: Config, processor: Any, out: TextIO, err: TextIO | None = None
    ) -> AnomalyReporter | None:
        """Create the detector and sink ``cfg`` asks for and add the detector to
        ``processor.observers``. Opening the alerts JSONL can raise OutputError."""
        settings = cfg.analysis.anomalies
        if not settings.enabled:
            if cfg.analysis.alerts_jsonl is not None and err is not None:
                print(
                    "warning: --alerts-jsonl is ignored: anomaly detection is off "
                    "(add --anomalies)",
                    file=err,
                )
            return None
        sink = AlertSink(out, cfg.analysis.alerts_jsonl)
        detector = AnomalyDetector(settings)
        processor.observers.append(detector)
        return cls(detector, sink, processor)

    def pump(self) -> None:
        """Emit the alerts raised since the last call (across shards, in time order)."""
        detectors = self.detectors()
        if len(detectors) == 1:
            self.sink.emit(detectors[0].drain())
            return
        alerts = [a for d in detectors for a in d.drain()]
        alerts.sort(key=lambda a: a.ts_ns)
        self.sink.emit(alerts)

    def finish(self) -> tuple[list[tuple[str, str]], NetScopeError | None]:
        """Emit what is left, close the JSONL file; summary rows and the first failure."""
        failure: NetScopeError | None = None
        try:
            self.pump()
        except OutputError as exc:
            failure = exc
        rows = [("Alerts", alerts_text(self.sink.counts))]
        stats = combined_stats([d.stats for d in self.detectors()])
        if stats.cap_hits:
            rows.append(
                (
                    "Anomaly state full",
                    f"{cap_hits_text(stats)} (cap {stats.max_entries} entries per detector)",
                )
            )
        writer = self.sink.writer
        try:
            self.sink.close()
            if writer is not None:
                noun = "alert" if writer.lines == 1 else "alerts"
                rows.append(("Alerts JSONL", f"{writer.path} ({writer.lines} {noun})"))
        except OutputError as exc:
            failure = failure or exc
        return rows, failure

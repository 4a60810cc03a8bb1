"""Anomaly detection: SYN floods and port scans over decoded batches (SPEC §6).

``AnomalyDetector`` is the engine-side piece (a batch observer running a compiled kernel);
``netscope.sinks.alerts.AlertSink`` prints and writes the alerts it raises. The window
semantics and tuning advice are in docs/anomaly-detection.md.
"""

from netscope.anomaly.detector import (
    KIND_PORT_SCAN,
    KIND_SYN_FLOOD,
    Alert,
    AnomalyDetector,
    AnomalyStats,
)

__all__ = ["KIND_PORT_SCAN", "KIND_SYN_FLOOD", "Alert", "AnomalyDetector", "AnomalyStats"]

"""``netscope --read-pcap SET --dask ADDRESS``: the file set analysed on a Dask cluster.

The tasks and the merge are :mod:`netscope.distributed`'s. This run prints the summary
(packets, flows, the files, each task's worker and CPU time, the merge time) and writes
the flow exports (JSON, CSV). Outputs that follow the capture as it is read — per-packet
lines, stats ticks, the dashboard, anomalies, ``--write-pcap``, ``-f`` and the
expired-flows JSONL — need the packets in one place: they are refused (exit 2); run
without ``--dask`` for them.
"""

from __future__ import annotations

from typing import TextIO

from netscope.config import Config
from netscope.errors import CaptureError, NetScopeError, OutputError, UsageError
from netscope.run_loop import flow_options


def check(cfg: Config) -> None:
    """Refuse what a Dask run cannot produce (UsageError: exit 2)."""
    unsupported = [
        ("--stats", cfg.stats.enabled),
        ("--web", cfg.web.enabled),
        ("--anomalies", cfg.analysis.anomalies.enabled),
        ("--write-pcap", cfg.output.write_pcap is not None),
        ("-f/--filter", bool(cfg.capture.filter)),
        ("--expired-flows-jsonl", cfg.output.expired_flows_jsonl is not None),
        ("--pipeline", cfg.pipeline.enabled),
        ("--replay-speed", cfg.run.replay_speed > 0),
    ]
    given = [flag for flag, on in unsupported if on]
    if given:
        raise UsageError(
            f"--dask does not support {', '.join(given)}",
            hint="those outputs follow the capture as it is read; run without --dask",
        )


class DaskRun:
    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err

    def execute(self) -> int:
        cfg = self.cfg
        check(cfg)
        try:
            from netscope import distributed
        except ImportError as exc:  # pragma: no cover - the extra is not installed
            raise NetScopeError(
                f"--dask needs the dask extra: pip install 'netscope[dask]' ({exc})"
            ) from None
        assert cfg.dask is not None
        paths = [str(p) for p in cfg.capture_paths]
        options = flow_options(cfg)
        try:
            client, cluster = distributed.connect(cfg.dask, cfg.dask_workers)
        except (OSError, ValueError, TimeoutError) as exc:
            raise NetScopeError(f"--dask {cfg.dask}: cannot connect: {exc}") from None
        try:
            merged = distributed.run_on(client, paths, options, cfg.dask_tasks, cfg.run.count)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return self._report(merged)

    def _report(self, merged: object) -> int:
        from netscope.distributed import Merged
        from netscope.flows.records import records_from_rows
        from netscope.sinks.exports import write_csv, write_json
        from netscope.sinks.summary import capture_summary
        from netscope.sources.base import SourceReport

        assert isinstance(merged, Merged)
        cfg = self.cfg
        totals = merged.totals
        rows: list[tuple[str, str]] = []
        bad = [e for e in merged.files if e.error is not None]
        rows.append(("Files", f"{len(merged.files) - len(bad)} read, {len(bad)} unreadable"))
        for entry in bad:
            rows.append(("  unreadable", entry.error))
        rows.append(
            (
                "Flows",
                f"{merged.keys.shape[0]} active ({totals.get('created', 0)} seen, "
                f"{totals.get('expired', 0)} expired, {totals.get('evicted', 0)} evicted)",
            )
        )
        for task in merged.tasks:
            rows.append(
                (
                    f"  task {task['shard']}",
                    f"{task['worker']}: {task['flows']} flows, cpu {task['cpu_s']:.2f} s",
                )
            )
        rows.append(("Merge", f"{merged.merge_s * 1000:.1f} ms"))
        if not merged.metadata["exact"]:
            rows.append(("Note", "max_flows reached: eviction is per task, not global"))
        failure: NetScopeError | None = None
        records = records_from_rows(merged.keys, merged.i64, merged.f64, merged.u8)
        for label, target, writer in (
            ("JSON export", cfg.output.export_json, write_json),
            ("CSV export", cfg.output.export_csv, write_csv),
        ):
            if target is None:
                continue
            try:
                rows.append((label, f"{target} ({writer(target, records)} flows)"))
            except OutputError as exc:
                failure = failure or exc
        report = SourceReport(kind="set")
        print(capture_summary(merged.counters, report, False, rows), file=self.out)
        for entry in bad:
            print(f"error: {entry.error}", file=self.err)
        if failure is not None:
            raise failure
        if bad:
            raise CaptureError(f"{len(bad)} of {len(merged.files)} capture files could not be read")
        return 0

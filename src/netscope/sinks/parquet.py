"""``--export-parquet PATH``: flows as Parquet, streamed while the run goes on.

Expired flows (timeout, eviction) arrive through ``FlowTable.on_expired``; they are
buffered as numpy rows and written as a row group whenever ``row_group_flows`` of them
have gathered (or ``flush_secs`` have passed with some waiting), so a capture that runs
for days holds at most one row group in memory. The flows still open at the end are
written last (``end_reason`` "active") from the final table snapshot.

A file target is written to a temporary file beside it and renamed over it when the run
ends, normally or through Ctrl-C/SIGTERM (the runners close their sinks on both), so the
path only ever holds a complete file with a footer: never a truncated one. A run killed
with SIGKILL leaves the previous file (or none) and a stale temporary file, which the
next export to the same path removes (``sinks.atomic``).

A directory target (an existing directory, or a path ending in ``/``) becomes a
Hive-partitioned dataset, ``PATH/hour=YYYY-MM-DDTHH/part-RUN-SEQ.parquet`` by the UTC
hour of each flow's first packet. Every part file is complete on its own (written and
renamed at each flush), so a long live run's data is readable while it runs and a
crash loses at most the rows still buffered.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from netscope.errors import OutputError
from netscope.flows import layout as L
from netscope.flows.schema import FlowRows, arrow_schema, column
from netscope.flows.table import ExpiredBatch
from netscope.sinks import targets
from netscope.sinks.atomic import _sync_directory, remove_stale_temps, temp_prefix
from netscope.sinks.base import FinalFlows, SinkBase, SummaryRows
from netscope.sinks.targets import new_file_mode

ROW_GROUP_FLOWS = 65_536  # flows per row group: ~10 MB of buffered rows in deep mode
FLUSH_SECS = 60.0  # a trickle of expirations is still written within a minute
COMPRESSION = "zstd"  # fast to write and read, compact on repetitive flow columns
PARTITION = "hour"
_NS_PER_HOUR = 3_600_000_000_000


def is_dataset_target(path: str | os.PathLike[str]) -> bool:
    """An existing directory means a partitioned dataset (so does a trailing slash for
    library callers; the CLI's paths lose it, so there the directory must exist)."""
    text = os.fspath(path)
    return text.endswith(os.sep) or os.path.isdir(text)


def _pq() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise OutputError(
            "--export-parquet needs pyarrow: pip install 'netscope[parquet]'"
        ) from None
    return pq


def _pyarrow_installed() -> bool:
    try:
        return importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):  # e.g. sys.modules["pyarrow"] = None
        return False


class _Preload(threading.Thread):
    """Imports pyarrow (~0.2 s) and loads the export kernels while the run reads packets.

    The run's own work is mostly in kernels that release the GIL, so on a second core
    this costs the run nothing; the first write joins the thread.
    """

    def __init__(self) -> None:
        super().__init__(name="netscope-parquet-preload", daemon=True)
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            _pq()
            arrow_schema()
            FlowRows(
                np.zeros((0, L.KEY_WIDTH), np.uint64),
                np.zeros((0, L.I64_SCALE_WIDTH), np.int64),
                None,
                np.zeros((0, L.U8_WIDTH), np.uint8),
            ).to_arrow()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the first write
            self.error = exc


class ParquetFlowSink:
    """Expired-flow handler and end-of-run writer for one Parquet file or dataset."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        seed: int = 0,
        row_group_flows: int = ROW_GROUP_FLOWS,
        flush_secs: float = FLUSH_SECS,
    ) -> None:
        self.shown = os.fspath(path)
        self.seed = seed
        self.row_group_flows = max(1, int(row_group_flows))
        self.flush_secs = flush_secs
        self.dataset = is_dataset_target(path)
        self.rows_written = 0
        self.row_groups = 0
        self.files_written = 0
        self._buffer: list[FlowRows] = []
        self._buffered = 0
        self._oldest = 0.0
        self._closed = False
        self._writer: Any = None
        if not _pyarrow_installed():  # fail now, not at the first write
            _pq()
        if targets.classify(path) is not targets.Kind.FILE and not self.dataset:
            raise OutputError(f"{self.shown}: Parquet needs a regular file or a directory")
        self._preload: _Preload | None = _Preload()
        self._pq: Any = None
        self._schema: Any = None
        if self.dataset:
            self.root = Path(self.shown)
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(
                    f"{self.shown}: cannot create directory: {exc.strerror}"
                ) from None
            self._run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        else:
            self.target = Path(os.path.realpath(self.shown))
            remove_stale_temps(self.target)
            try:
                fd, self._tmp = tempfile.mkstemp(
                    prefix=temp_prefix(self.target.name), suffix=".tmp", dir=self.target.parent
                )
                os.fchmod(fd, new_file_mode())
                os.close(fd)
            except OSError as exc:
                raise OutputError(f"{self.shown}: cannot create export: {exc.strerror}") from None

    def _ready(self) -> None:
        """Wait for the preload; open the file's writer (first write or close)."""
        if self._preload is not None:
            self._preload.join()
            error, self._preload = self._preload.error, None
            if error is not None:
                raise error
            self._pq = _pq()
            self._schema = arrow_schema()
        if not self.dataset and self._writer is None:
            try:
                self._writer = self._pq.ParquetWriter(
                    self._tmp, self._schema, compression=COMPRESSION
                )
            except OSError as exc:
                raise OutputError(f"{self.shown}: cannot create export: {exc.strerror}") from None

    @property
    def buffered(self) -> int:
        """Expired flows held in memory, waiting for the next row group (< row_group_flows)."""
        return self._buffered

    def __call__(self, batch: ExpiredBatch) -> None:
        """``FlowTable.on_expired``: copy the rows (the batch is reused), flush when full."""
        rows = FlowRows.take(batch.keys, batch.i64, batch.f64, batch.u8, None, batch.reason)
        self._add(rows)
        if time.monotonic() - self._oldest >= self.flush_secs:
            self.flush()
        elif self._buffered >= self.row_group_flows:
            self.flush(whole_groups_only=True)

    def _add(self, rows: FlowRows) -> None:
        if not len(rows):
            return
        if not self._buffer:
            self._oldest = time.monotonic()
        self._buffer.append(rows)
        self._buffered += len(rows)

    def flush(self, whole_groups_only: bool = False) -> None:
        """Write what is buffered as row groups of at most ``row_group_flows`` flows
        (``whole_groups_only``: full groups only, the remainder stays buffered)."""
        if not self._buffer:
            return
        self._ready()  # pyarrow present and imported before any Arrow work
        rows = FlowRows.concat(self._buffer)
        size = self.row_group_flows
        end = len(rows) - len(rows) % size if whole_groups_only else len(rows)
        # the remainder is copied, so the written rows' arrays can be freed
        rest = FlowRows.take(
            rows.keys, rows.i64, rows.f64, rows.u8, np.arange(end, len(rows)), rows.reason
        )
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)
        if self._buffer:
            self._oldest = time.monotonic()
        for start in range(0, end, size):
            part = _slice(rows, start, min(start + size, end))
            self._write(part.to_arrow(self.seed), part)

    def _write(self, table: Any, rows: FlowRows) -> None:
        self._ready()
        try:
            if self.dataset:
                self._write_parts(table, rows)
            else:
                self._writer.write_table(table, row_group_size=self.row_group_flows)
                self.row_groups += 1
        except OSError as exc:
            raise OutputError(f"{self.shown}: write failed: {exc.strerror or exc}") from None
        self.rows_written += table.num_rows

    def _write_parts(self, table: Any, rows: FlowRows) -> None:
        """One complete file per hour partition present in ``table`` (temp + rename)."""
        hours = rows.i64[:, L.I_FIRST_NS] // _NS_PER_HOUR
        for hour in np.unique(hours).tolist():
            part = table.take(column(np.flatnonzero(hours == hour).astype(np.int64)))
            label = time.strftime("%Y-%m-%dT%H", time.gmtime(hour * 3600))
            folder = self.root / f"{PARTITION}={label}"
            folder.mkdir(exist_ok=True)
            name = f"part-{self._run_id}-{self.files_written:06d}.parquet"
            fd, tmp = tempfile.mkstemp(prefix=temp_prefix(name), suffix=".tmp", dir=folder)
            os.fchmod(fd, new_file_mode())
            os.close(fd)
            try:
                self._pq.write_table(part, tmp, compression=COMPRESSION)
                os.replace(tmp, folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _sync_directory(folder)
            self.files_written += 1
            self.row_groups += 1

    def finish(self, active: FlowRows) -> None:
        """Write the flows still open (``end_reason`` active) and complete the output."""
        if self._closed:
            return
        self._add(active)
        self.flush()
        self.close()

    def close(self) -> None:
        """Write the footer and rename into place (file) — after ``finish`` or alone."""
        if self._closed:
            return
        self._closed = True
        if self.dataset:
            return
        self._ready()
        try:
            if self.row_groups == 0:
                self._writer.write_table(self._schema.empty_table())
            self._writer.close()
            with open(self._tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self._tmp, self.target)
            _sync_directory(self.target.parent)
        except OSError as exc:
            Path(self._tmp).unlink(missing_ok=True)
            raise OutputError(f"{self.shown}: cannot write export: {exc.strerror}") from None

    def abandon(self) -> None:
        """Drop the temporary file (the run failed before anything worth keeping)."""
        if not self.dataset and not self._closed:
            self._closed = True
            try:
                if self._writer is not None:
                    self._writer.close()
            finally:
                Path(self._tmp).unlink(missing_ok=True)

    def summary(self) -> str:
        where = (
            f"{self.shown} (dataset, {self.files_written} files)" if self.dataset else self.shown
        )
        return f"{where} ({self.rows_written} flows, {self.row_groups} row groups)"


def _slice(rows: FlowRows, start: int, stop: int) -> FlowRows:
    sel = slice(start, stop)
    return FlowRows(
        rows.keys[sel],
        rows.i64[sel],
        None if rows.f64 is None else rows.f64[sel],
        rows.u8[sel],
        None if rows.reason is None else rows.reason[sel],
    )


def write_parquet_table(path: str | os.PathLike[str], table: Any) -> None:
    """Write a finished Arrow table to ``path`` atomically (library ``export_parquet``)."""
    pq = _pq()
    target = Path(os.path.realpath(os.fspath(path)))
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent)
    os.fchmod(fd, new_file_mode())
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression=COMPRESSION, row_group_size=ROW_GROUP_FLOWS)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_parquet_sink(cfg: Any) -> ParquetFlowSink | None:
    """The run's Parquet sink, if ``output.export_parquet`` is set (runners call this)."""
    out = cfg.output
    if out.export_parquet is None:
        return None
    return ParquetFlowSink(
        out.export_parquet, seed=out.community_id_seed, row_group_flows=out.parquet_row_group_flows
    )


def chain_expired(*handlers: Any) -> Any:
    """One ``on_expired`` handler that calls each given handler (None ones skipped)."""
    live = [h for h in handlers if h is not None]
    if len(live) <= 1:
        return live[0] if live else None

    def both(batch: ExpiredBatch) -> None:
        for handler in live:
            handler(batch)

    return both


def finish_parquet(sink: ParquetFlowSink | None, table: Any) -> list[tuple[str, str]]:
    """Write the table's open flows and close the sink; summary rows for the run."""
    if sink is None:
        return []
    live = table.live_rows()
    sink.finish(
        FlowRows.take(table.keys, table.i64, table.f64 if table.deep else None, table.u8, live)
    )
    return [("Parquet export", sink.summary())]


class ParquetSink(SinkBase):
    """``--export-parquet`` in the run loop: expired flows streamed as they leave the table
    (row groups written during the run), the open ones written at the end."""

    wants_expired = True

    def __init__(self, cfg: Any) -> None:
        sink = open_parquet_sink(cfg)
        assert sink is not None
        self.sink = sink

    def on_expired(self, expired: ExpiredBatch) -> None:
        self.sink(expired)

    def finish(self, final: FinalFlows) -> SummaryRows:
        return finish_parquet(self.sink, final.table)

    def close(self) -> None:
        self.sink.close()  # idempotent: after finish, or alone (a failed run keeps a valid file)

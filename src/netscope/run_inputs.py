"""Where a run's packets come from: the sources the run loop (:mod:`netscope.run_loop`) takes.

A run input opens its packet source and its capture stage (filter, ``--write-pcap``), says
what to print at start-up and which summary rows it adds, and yields batches. The loop
knows only this interface (:class:`RunInput`), so a new kind of input (a set of files,
fragments computed elsewhere) is one class here or in its own module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TextIO

from netscope.batch import PacketBatch
from netscope.capture_stage import CaptureStage
from netscope.config import Config
from netscope.errors import NetScopeError
from netscope.sources.base import SourceReport


class RunInput(Protocol):
    """What the run loop needs from an input."""

    live: bool  # wall-clock ticks, signals stop the loop between batches, drop counters
    report: SourceReport
    stage: CaptureStage
    drops: Any  # live: netscope.live_run.DropTracker; else None

    def announce(self, out: TextIO, err: TextIO) -> None:
        """Start-up lines (the original's banner on ``out``, ours on ``err``)."""

    def batches(self, stop: Callable[[], bool]) -> Iterable[PacketBatch]:
        """The packets, batch by batch; ``stop()`` true means "stop reading soon"."""

    def seen(self, batch: PacketBatch) -> None:
        """Called with each batch as it is read, before the filter."""

    def summary_rows(self) -> list[tuple[str, str]]:
        """Rows the input adds to the summary (drop counters, files read)."""

    def end(self) -> None:
        """The loop is over (before the exports): the last start-up lines."""

    def warn(self) -> None:
        """``warning:`` lines about the input (a truncated file), after the dashboard's end."""

    def failure(self) -> NetScopeError | None:
        """A failure of the input to report after the summary (exit 1), e.g. unreadable
        files of a set whose other files were processed."""

    def close(self) -> None: ...

    @property
    def linktype_hint(self) -> int:
        """The link type of an empty ``--write-pcap`` output."""


class FileInput:
    """One capture file (``--read-pcap``), read at full speed or paced by the loop."""

    live = False
    drops = None
    linktype_hint = 1

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        from netscope.sources import open_capture_file

        path = cfg.capture.read_pcap
        assert path is not None
        self.cfg = cfg
        self.out = out
        self.err = err
        self.source = open_capture_file(path)
        try:
            self.stage = CaptureStage.for_file(cfg, self.source)  # -f and --write-pcap
        except BaseException:
            self.source.close()
            raise
        self.report: SourceReport = self.source.report
        self.banner: Any = None

    def announce(self, out: TextIO, err: TextIO) -> None:
        from netscope.sinks.startup import StartupBanner

        self.banner = StartupBanner(out, self.cfg)  # the original's lines, also with --quiet
        if self.report.link_types:  # pcap: in the file header; pcapng: at the first batch
            self.banner.finish(sorted(self.report.link_types))

    def batches(self, stop: Callable[[], bool]) -> Iterator[PacketBatch]:
        return self.source.batches()

    def seen(self, batch: PacketBatch) -> None:
        if self.banner is not None:
            self.banner.finish(first_seen(self.report.link_types, batch.linktypes[: batch.count]))

    def summary_rows(self) -> list[tuple[str, str]]:
        return []

    def end(self) -> None:
        if self.banner is not None:
            self.banner.finish(sorted(self.report.link_types))  # an empty capture: still say so

    def warn(self) -> None:
        if self.report.warning:
            print(f"warning: {self.report.warning}", file=self.err)

    def failure(self) -> NetScopeError | None:
        return None

    def close(self) -> None:
        self.source.close()

    def replay_span(self) -> Callable[[], Any] | None:
        """Opens the capture again for ``--replay-speed``'s seek bar (None: not seekable)."""
        import os

        from netscope.sources import open_capture_file

        path = self.cfg.capture.read_pcap
        if path is None or not os.path.isfile(path):
            return None
        return lambda: open_capture_file(path)


class LiveInput:
    """An interface (``-i`` or the default one), through a live capture backend."""

    live = True

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        from netscope.live_run import DropTracker
        from netscope.sources.live import open_live

        self.cfg = cfg
        self.err = err
        capture_cfg = cfg.capture
        if cfg.web.enabled and capture_cfg.timeout_ms > cfg.web.tick_ms:
            # Dashboard frames are due every web.tick_ms; a longer read timeout would hold
            # them back on a quiet link (docs/web-dashboard.md, Ticks).
            capture_cfg = dataclasses.replace(capture_cfg, timeout_ms=cfg.web.tick_ms)
        self.source = open_live(capture_cfg)
        try:
            self.stage = CaptureStage.for_live(
                cfg, self.source.linktype, self.source.snaplen, self.source.user_space_filter
            )
        except BaseException:
            self.source.close()
            raise
        self.report: SourceReport = self.source.report
        self.drops = DropTracker(self.source)

    @property
    def linktype_hint(self) -> int:
        return int(self.source.linktype)

    def announce(self, out: TextIO, err: TextIO) -> None:
        from netscope.sinks.startup import StartupBanner

        src = self.source
        # the original's start-up lines on stdout (also with --quiet) ...
        StartupBanner(out, self.cfg, src.interface).finish([src.linktype])
        # ... and ours on stderr, which scripts and tests wait for
        print(
            f"capturing on {src.interface} ({src.backend}, link type {src.linktype}, "
            f"snaplen {src.snaplen})…",
            file=err,
            flush=True,
        )

    def batches(self, stop: Callable[[], bool]) -> Iterable[PacketBatch]:
        batches: Iterable[PacketBatch] = self.source.batches(stop)
        return batches

    def seen(self, batch: PacketBatch) -> None:
        return None

    def summary_rows(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = self.drops.summary_rows()
        return rows

    def end(self) -> None:
        return None

    def warn(self) -> None:
        return None

    def failure(self) -> NetScopeError | None:
        return None

    def close(self) -> None:
        self.drops.poll()
        self.source.close()


def first_seen(declared: set[int], batch_linktypes: Any) -> list[int]:
    """Link types in the order the capture uses them: the batch's first, then the rest."""
    order = list(dict.fromkeys(int(lt) for lt in batch_linktypes[:1]))
    return order + sorted(lt for lt in declared if lt not in order)

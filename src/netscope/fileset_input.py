"""A set of capture files as a run input (``netscope a.pcap b.pcap``, ``-r 'dir/*.pcap'``).

The files are read as one capture by :class:`netscope.sources.fileset.FileSetReader`; this
module adds what the run loop shows of the set: the start-up lines, a progress line on a
terminal, the files in the summary, and exit 1 when some could not be read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from netscope.batch import PacketBatch
from netscope.capture_stage import CaptureStage
from netscope.config import Config
from netscope.errors import CaptureError, NetScopeError, UsageError
from netscope.run_inputs import first_seen
from netscope.sources.files import STDIN_PATH
from netscope.sources.fileset import GLOB_CHARS, FileSetReader, expand_paths

PROGRESS_EVERY_S = 0.5
MAX_FILE_ROWS = 20  # the summary names each file up to this many; beyond, the unreadable ones


def is_file_set(paths: tuple[Path, ...]) -> bool:
    """Whether ``paths`` need the file-set reader: several, a directory, or a pattern."""
    if len(paths) > 1:
        if any(os.fspath(p) == STDIN_PATH for p in paths):
            raise UsageError(
                "--read-pcap -: standard input cannot be part of a file set",
                hint="read stdin alone, or save it to a file first",
            )
        return True
    if not paths:
        return False
    text = os.fspath(paths[0])
    if text == STDIN_PATH:
        return False
    return os.path.isdir(text) or (not os.path.exists(text) and bool(GLOB_CHARS & set(text)))


class FileSetInput:
    """The files of ``cfg.capture_paths`` as one offline input."""

    live = False
    drops = None
    linktype_hint = 1

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err
        entries = expand_paths(cfg.capture_paths)
        if not entries:  # e.g. an empty directory: nothing to read, as for one bad file
            raise CaptureError(f"{cfg.capture_paths[0]}: no capture files in this directory")
        self.source = FileSetReader(entries)
        try:
            self.stage = CaptureStage.for_file(cfg, self.source)
        except BaseException:
            self.source.close()
            raise
        self.report = self.source.report
        self.banner: Any = None
        self._progress = _Progress(err, len(self.source.entries)) if _tty(cfg, out, err) else None

    def announce(self, out: TextIO, err: TextIO) -> None:
        from netscope.sinks.startup import StartupBanner

        self.banner = StartupBanner(out, self.cfg)
        if self.report.link_types:
            self.banner.finish(sorted(self.report.link_types))

    def batches(self, stop: Callable[[], bool]) -> Iterator[PacketBatch]:
        if self._progress is None:
            yield from self.source.batches()
            return
        for batch in self.source.batches():
            self._progress.update(self.source.files_done, batch.count)
            yield batch
        self._progress.clear()

    def seen(self, batch: PacketBatch) -> None:
        if self.banner is not None:
            self.banner.finish(first_seen(self.report.link_types, batch.linktypes[: batch.count]))

    def summary_rows(self) -> list[tuple[str, str]]:
        entries = self.source.entries
        bad = self.source.unreadable
        rows = [
            (
                "Files",
                f"{len(entries) - len(bad)} read, {len(bad)} unreadable "
                f"({self.source.report.packets_read} packets)",
            )
        ]
        listed = entries if len(entries) <= MAX_FILE_ROWS else bad
        for entry in listed:
            if entry.error is not None:
                rows.append(("  unreadable", entry.error))
            else:
                rows.append(("  file", f"{entry.path} ({entry.packets} packets)"))
        return rows

    def end(self) -> None:
        if self._progress is not None:
            self._progress.clear()
        if self.banner is not None:
            self.banner.finish(sorted(self.report.link_types))

    def warn(self) -> None:
        for entry in self.source.unreadable:
            print(f"error: {entry.error}", file=self.err)
        for warning in self.source.warnings():
            print(f"warning: {warning}", file=self.err)

    def failure(self) -> NetScopeError | None:
        bad = self.source.unreadable
        if not bad:
            return None
        total = len(self.source.entries)
        return CaptureError(f"{len(bad)} of {total} capture files could not be read")

    def close(self) -> None:
        self.source.close()


def _tty(cfg: Config, out: TextIO, err: TextIO) -> bool:
    """A progress line only where a person watches and it cannot garble the output."""
    try:
        return err.isatty() and (cfg.output.quiet or not out.isatty())
    except (AttributeError, ValueError):
        return False


class _Progress:
    """``files 3/500 · 1234567 packets · 2.10 Mpkt/s`` on one rewritten stderr line."""

    def __init__(self, err: TextIO, total: int) -> None:
        self.err = err
        self.total = total
        self.packets = 0
        self.start = time.monotonic()
        self.last = self.start
        self.shown = False

    def update(self, done: int, packets: int) -> None:
        self.packets += packets
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        rate = self.packets / max(now - self.start, 1e-9) / 1e6
        self.err.write(
            f"\rfiles {done}/{self.total} · {self.packets} packets · {rate:.2f} Mpkt/s\033[K"
        )
        self.err.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.err.write("\r\033[K")
            self.err.flush()
            self.shown = False

"""Run one ``netscope`` invocation from a validated Config (the CLI's back end).

Owns the run's life cycle: open the source, warm the kernels, loop over batches,
and — however the loop ends (EOF, ``-c``, Ctrl-C, a read error) — print the
summary for everything processed so far.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from netscope.config import Config
from netscope.errors import NetScopeError, UsageError

log = logging.getLogger(__name__)


def run(cfg: Config, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Execute ``cfg``; return the process exit code (errors raise NetScopeError)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if cfg.capture.read_pcap is None:
        raise UsageError("live capture (-i) is not available yet")
    return OfflineRun(cfg, out, err).execute()


class OfflineRun:
    """Reads a capture file batch by batch through the Analyzer."""

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err

    def execute(self) -> int:
        from netscope import engine
        from netscope.analysis import Analyzer
        from netscope.sinks.console import PacketPrinter
        from netscope.sinks.summary import capture_summary
        from netscope.sources import open_capture_file

        path = self.cfg.capture.read_pcap
        assert path is not None
        source = open_capture_file(path)
        engine.warm_up()
        analyzer = Analyzer()
        printer = None if self.cfg.output.quiet else PacketPrinter(self.out, self.cfg.detailed_view)
        limit = self.cfg.run.count
        announced: set[int] = set()
        interrupted = False
        exit_code = 0
        try:
            for batch in source.batches():
                if limit and analyzer.counters.packets + batch.count > limit:
                    batch = batch.sliced(limit - analyzer.counters.packets)
                start = analyzer.counters.packets + 1
                analyzer.process(batch)
                self._announce_unsupported(analyzer.counters.unsupported_linktypes, announced)
                if printer is not None:
                    printer.print_batch(batch, start)
                if limit and analyzer.counters.packets >= limit:
                    break
        except KeyboardInterrupt:
            interrupted = True
        except BrokenPipeError:
            # Output piped into e.g. `head`, which has exited: stop quietly.
            _silence_stdout()
            source.close()
            return 0
        finally:
            source.close()
        if source.report.warning:
            print(f"warning: {source.report.warning}", file=self.err)
        try:
            print(capture_summary(analyzer.counters, source.report, interrupted), file=self.out)
            self.out.flush()
        except BrokenPipeError:
            _silence_stdout()
        return exit_code

    def _announce_unsupported(self, seen: dict[int, int], announced: set[int]) -> None:
        """Report each unsupported link type once, the first time it appears."""
        for linktype in seen:
            if linktype not in announced:
                announced.add(linktype)
                print(
                    f"warning: Datalink: Unsupported({linktype}): packets are counted, "
                    "not decoded",
                    file=self.err,
                )


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


__all__ = ["run", "NetScopeError"]

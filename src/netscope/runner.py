"""Run one ``netscope`` invocation from a validated Config (the CLI's back end).

Chooses what kind of run a Config asks for (synthetic flows, interface list, live
capture, capture file) and hands packet runs to the one run loop
(:mod:`netscope.run_loop`) with their input and sinks.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from netscope.config import Config
from netscope.run_loop import RunLoop, flow_options, kernel_groups

__all__ = ["OfflineRun", "flow_options", "kernel_groups", "run"]

log = logging.getLogger(__name__)


def run(cfg: Config, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Execute ``cfg``; return the process exit code (errors raise NetScopeError)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    from netscope.memory import check_run

    check_run(cfg)  # before anything big is allocated (exit 2 if it cannot fit)
    if cfg.synthetic_flows is not None:
        from netscope.flows.synthetic import print_synthetic, run_synthetic

        result = run_synthetic(cfg.synthetic_flows)
        print_synthetic(result, out)
        return 0 if result.passed else 1
    if cfg.list_interfaces:
        from netscope.sources.live import print_interfaces

        return print_interfaces(out)
    from netscope.live_run import LiveRun
    from netscope.sinks.paths import check_outputs, writes_to_stdout

    check_outputs(cfg)  # before anything is opened for writing (exit 2)
    if writes_to_stdout(cfg):
        out = err  # stdout carries an export: our own text must not corrupt it
    if cfg.capture.read_pcap is None:
        return LiveRun(cfg, out, err).execute()
    if cfg.dask is not None:
        from netscope.dask_run import DaskRun

        return DaskRun(cfg, out, err).execute()
    from netscope.fileset_input import FileSetInput, is_file_set

    if is_file_set(cfg.capture_paths):
        from netscope.sinks.base import build_sinks

        return RunLoop(cfg, out, err).execute(FileSetInput, build_sinks, live=False)
    return OfflineRun(cfg, out, err).execute()


class OfflineRun:
    """A capture-file run: the run loop with a :class:`~netscope.run_inputs.FileInput`."""

    def __init__(self, cfg: Config, out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.out = out
        self.err = err

    def execute(self) -> int:
        from netscope.run_inputs import FileInput
        from netscope.sinks.base import build_sinks

        return RunLoop(self.cfg, self.out, self.err).execute(FileInput, build_sinks, live=False)

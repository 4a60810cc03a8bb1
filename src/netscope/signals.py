"""SIGINT and SIGTERM for the ``netscope`` command: start-up exits, orderly stops, force exit.

Why a module of its own: Python's default SIGINT handling raises KeyboardInterrupt wherever
the main thread happens to be — in the middle of a batch (after it was written to the pcap,
before it was counted), inside the export writer, or in an import — which loses data and
prints a traceback. Instead, :func:`install` (called by the CLI before any heavy import)
routes both signals to one handler whose behaviour depends on the phase of the run:

* **start-up** (imports, kernel compile/warm-up, BPF compile, opening the source): nothing
  has been processed, so the handler raises :class:`Interrupted` and the CLI exits with
  ``128 + signum`` (130 for SIGINT, 143 for SIGTERM) without a traceback or a summary.
* **running** (from :func:`begin_run`, called just before the batch loop, to the end):
  the first signal only sets the stop flag (:func:`stop_requested`) that the run loops
  poll between batches, so the batch in hand is finished — written *and* counted — and
  the summary and exports follow. A second signal prints one note on stderr and is
  otherwise ignored; it also gives both signals back their default action, so a third
  one ends the process at once even if it is stuck in compiled code (the shell then
  reports 130 / 143; the summary and exports are not written).

The handler runs on the main thread between bytecodes. It writes with ``os.write`` on
file descriptor 2 rather than ``print``: a handler that re-entered a buffered stream the
main thread was writing to would raise.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The one line a second signal prints while the run is stopping.
SECOND_SIGNAL_NOTE = (
    "netscope: already stopping, finishing the summary and exports "
    "(one more Ctrl-C/SIGTERM quits at once without them)"
)


class Interrupted(BaseException):
    """A signal arrived during start-up: exit ``128 + signum`` without a summary.

    A BaseException (like KeyboardInterrupt) so that ``except Exception`` clean-up code
    on the way up does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _Controller:
    """The process-wide state the handler and the run loops share."""

    def __init__(self) -> None:
        self.installed = False
        self.running = False  # False: start-up (signals raise); True: the run loop
        self.received = 0  # signals received while running
        self.signum: int | None = None  # the first signal (start-up or running)
        self.previous: dict[int, Any] = {}  # handlers before install()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.running:
            if self.signum is None:
                self.signum = signum
            raise Interrupted(signum)
        self.received += 1
        if self.received == 1:
            self.signum = signum
            return
        if self.received == 2:
            for s in self.previous:  # a third signal takes its default action: the process ends
                signal.signal(s, signal.SIG_DFL)
            _write_stderr(SECOND_SIGNAL_NOTE)


_state = _Controller()


def _write_stderr(line: str) -> None:
    with suppress(OSError):
        os.write(2, (line + "\n").encode("utf-8", "replace"))


def install() -> bool:
    """Route SIGINT and SIGTERM to the handler (start-up phase). Idempotent.

    A signal the process inherited as ignored stays ignored (the shell's rule for
    background jobs, which Python follows too).

    Returns False (and changes nothing) off the main thread, where Python cannot set
    signal handlers (library use): those callers keep KeyboardInterrupt semantics.
    """
    if _state.installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    for s in SIGNALS:
        previous = signal.getsignal(s)
        if previous == signal.SIG_IGN:
            continue  # e.g. SIGINT of a background job or nohup: stays ignored, as Python does
        _state.previous[s] = previous
        signal.signal(s, _state.handle)
    _state.installed = True
    return True


def begin_run() -> None:
    """Start-up is over: from now on the first signal only requests a stop.

    A signal that arrived during start-up but did not end it (e.g. the exception was
    raised in a finaliser, where Python prints and ignores it) ends it here.
    """
    if not _state.installed:
        return
    if _state.signum is not None and not _state.running:
        raise Interrupted(_state.signum)
    _state.running = True


def stop_requested() -> bool:
    """True once a signal asked the running capture to stop (polled between batches)."""
    return _state.received > 0


def stop_signal() -> int | None:
    """The signal that requested the stop, if any (for log messages)."""
    return _state.signum if _state.received else None


@contextmanager
def handling() -> Iterator[None]:
    """:func:`install` for the duration of a ``with`` block, restoring the previous state
    afterwards if it was this block that installed the handlers.

    ``python -m netscope`` installs them for the whole process before the CLI is even
    imported; an in-process caller of ``cli.main`` (tests) gets its handlers back.
    """
    mine = not _state.installed and install()
    try:
        yield
    finally:
        if mine:
            reset()


def reset() -> None:
    """Restore the handlers :func:`install` replaced and forget all state."""
    global _state
    if _state.installed and threading.current_thread() is threading.main_thread():
        for s, handler in _state.previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    _state = _Controller()

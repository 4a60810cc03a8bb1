"""Logging setup shared by the CLI: the TRACE level and ``-v`` counting.

Modules log through ``logging.getLogger(__name__)``; only the CLI entry point decides where
messages go and how verbose they are (no logging configuration at import time).
"""

from __future__ import annotations

import logging
import sys

# Below DEBUG: per-batch / per-kernel chatter that is only useful when chasing a bug (-vvv).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def level_for(verbosity: int) -> int:
    """``-v`` count -> logging level: 0 WARNING, 1 INFO, 2 DEBUG, 3+ TRACE."""
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    return levels[verbosity] if 0 <= verbosity < len(levels) else TRACE


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is *now* (pytest's capsys swaps it per test)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        # assign, not setStream(): that flushes the previous stream, which a finished test's
        # capture (or a closed pipe) may already have closed
        self.stream = sys.stderr
        super().emit(record)


def configure(verbosity: int) -> None:
    """Send ``netscope.*`` log records at the chosen level to stderr.

    Idempotent: calling it again (``main()`` run twice in one process, as tests do) replaces
    the handler instead of stacking a second one that would print every line twice.
    """
    logger = logging.getLogger("netscope")
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))


def trace(logger: logging.Logger, msg: str, *args: object) -> None:
    """``logger.log(TRACE, ...)`` spelled as a call, checked cheaply before formatting."""
    if logger.isEnabledFor(TRACE):
        logger.log(TRACE, msg, *args)


def reset() -> None:
    """Undo :func:`configure` (for tests that call ``main()`` in-process)."""
    logger = logging.getLogger("netscope")
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)

"""One log line per client per interval for what clients get wrong, never their bytes.

aiohttp logs every request it cannot parse (an oversized header, a non-HTTP byte stream) with
a traceback whose exception text quotes the offending request bytes — header values,
cookies, whatever an unauthenticated peer sent — and it does so on every request, so any
client can fill the operator's terminal. The server hands aiohttp a :class:`ClientErrorLog`
(its ``logger`` setting) instead: each record becomes one line naming the peer and the
exception class, and a peer gets at most one line per :data:`ERROR_LOG_INTERVAL_S`; the next
line says how many were not shown. At ``-vv`` a server-side exception (not a parse error)
also logs its traceback at DEBUG, so a bug in a handler can still be chased.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

ERROR_LOG_INTERVAL_S = 60.0
MAX_TRACKED_CLIENTS = 4096  # bounds the limiter's memory when many addresses misbehave


class PerKeyInterval:
    """Allows one event per key per ``interval_s``; counts the events it suppressed."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._open: dict[Hashable, tuple[float, int]] = {}  # key -> (window end, suppressed)

    def allow(self, key: Hashable) -> int | None:
        """None when the key already had its event this interval, else the number of events
        suppressed since its previous one."""
        now = self.clock()
        window = self._open.get(key)
        if window is not None and now < window[0]:
            self._open[key] = (window[0], window[1] + 1)
            return None
        if len(self._open) >= MAX_TRACKED_CLIENTS:
            self._open = {k: w for k, w in self._open.items() if now < w[0]}
            if len(self._open) >= MAX_TRACKED_CLIENTS:
                self._open.clear()
        self._open[key] = (now + self.interval_s, 0)
        return window[1] if window is not None else 0


def _exception(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1] if isinstance(exc_info[1], BaseException) else None
    return None


class ClientErrorLog(logging.LoggerAdapter[logging.Logger]):
    """What aiohttp's request handlers log through (see the module docstring)."""

    def __init__(self, logger: logging.Logger, limiter: PerKeyInterval) -> None:
        super().__init__(logger, {})
        self.limiter = limiter

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(min(level, logging.WARNING)):
            return
        exc = _exception(kwargs.get("exc_info"))
        # aiohttp's own texts carry at most the peer address ("... request from %s").
        client = str(args[0]) if args else "-"
        text = str(msg) % args if args else str(msg)
        if isinstance(exc, HttpProcessingError):  # its message quotes the request bytes
            text += f": {type(exc).__name__} (HTTP {exc.code})"
            level = min(level, logging.WARNING)
        elif exc is not None:
            text += f": {type(exc).__name__}"
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("dashboard: %s", text, exc_info=exc)
        suppressed = self.limiter.allow(("http", client))
        if suppressed is None:
            return
        if suppressed:
            text += f" ({suppressed} more from this client not logged)"
        self.logger.log(level, "dashboard: %s", text)

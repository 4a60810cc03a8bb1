"""Connection limits of the dashboard server: timeouts for idle and slow clients, and a cap
on the connections one address may hold open.

Without them a single peer could open a thousand connections and send nothing (or one
header byte every few seconds, "slowloris") and hold them forever. What enforces each limit:

- **Idle / slow request head**: aiohttp's ``keepalive_timeout``. Its timer starts when a
  connection opens and again after each response, and it closes the connection if no
  complete request head has arrived by then — so it bounds both a silent connection and a
  request whose headers trickle in. A WebSocket, once open, is not subject to it.
- **TLS handshake**: asyncio's ``ssl_handshake_timeout`` (the HTTP timer above starts only
  once the handshake is done).
- **Connections per address**: :class:`AddressCap` wraps each connection's protocol; the
  connection that would exceed the cap is answered ``503`` and closed at once, the ones
  already open are untouched. Connections still in their TLS handshake are not counted
  (they are bounded by the handshake timeout). Addresses are compared whole, so for IPv6
  one host with many addresses counts as many.
- **Header sizes**: aiohttp's defaults (8190 bytes per request line / header field, 128
  header fields); a larger request gets ``400`` and one log line (``errorlog``).

The values are :class:`ServerLimits`' defaults, documented in docs/web-dashboard.md; tests
shrink them to run fast.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netscope.web.errorlog import ERROR_LOG_INTERVAL_S, PerKeyInterval

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 15.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0
MAX_CONNECTIONS_PER_ADDRESS = 64  # the load test runs 50 dashboard clients from one address

_REFUSAL_TEXT = b"503: too many connections from this address\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSAL_TEXT), _REFUSAL_TEXT)
)


@dataclass(frozen=True)
class ServerLimits:
    """The limits one dashboard server enforces (see the module docstring)."""

    idle_timeout_s: float = IDLE_TIMEOUT_S
    tls_handshake_timeout_s: float = TLS_HANDSHAKE_TIMEOUT_S
    max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS
    error_log_interval_s: float = ERROR_LOG_INTERVAL_S


class _Guarded(asyncio.Protocol):
    """Forwards everything to aiohttp's protocol once the connection is admitted."""

    def __init__(self, cap: AddressCap, inner: asyncio.Protocol) -> None:
        self.cap = cap
        self.inner = inner
        self.address: str | None = None  # set while the connection counts against the cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "-"
        if not self.cap.admit(address):
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(REFUSAL)
            transport.close()
            return
        self.address = address
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.address is None:
            return
        self.cap.release(self.address)
        self.address = None
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.address is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.address is not None else None

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class AddressCap:
    """Counts open connections per peer address and refuses those over ``limit``."""

    def __init__(self, limit: int, log_limiter: PerKeyInterval) -> None:
        self.limit = limit
        self.log_limiter = log_limiter
        self.open: dict[str, int] = {}

    def admit(self, address: str) -> bool:
        count = self.open.get(address, 0)
        if count >= self.limit:
            suppressed = self.log_limiter.allow(("cap", address))
            if suppressed is not None:
                more = f" ({suppressed} more not logged)" if suppressed else ""
                log.warning(
                    "dashboard: refused a connection from %s: it already has %d open%s",
                    address, count, more,
                )  # fmt: skip
            return False
        self.open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self.open.get(address, 0) - 1
        if count > 0:
            self.open[address] = count
        else:
            self.open.pop(address, None)

    def wrap(self, factory: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's ``runner.server``."""
        return lambda: _Guarded(self, factory())

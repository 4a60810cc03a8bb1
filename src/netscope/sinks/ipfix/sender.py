"""The IPFIX transport: a bounded queue drained by its own thread (UDP or TCP).

The capture side only ever calls :meth:`Sender.offer`, which appends to a bounded deque
under a lock and never waits: when the queue is full the newest messages are dropped and
counted. A collector that is down, slow or unreachable therefore costs the capture nothing
but those drops. The thread does the blocking socket work:

- UDP: a connected datagram socket; a send error (ICMP port unreachable comes back as
  ECONNREFUSED on the next send) drops that message, counted, and sending goes on.
- TCP: connects (with a timeout), sends the templates first on every new connection
  (RFC 7011 §8: a new session needs them), then the queue; an error or a send stalled past
  the timeout closes the connection (the stream could hold half a message) and the thread
  reconnects after a back-off while the queue keeps filling and dropping.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_QUEUE_MESSAGES = 4096
SEND_TIMEOUT_S = 1.0  # a TCP send stalled this long: the collector is not reading
CONNECT_TIMEOUT_S = 1.0
SEND_CHUNK = 256  # messages taken from the queue at a time
RECONNECT_MAX_S = 5.0


@dataclass(frozen=True)
class Target:
    """Where to send: ``HOST:PORT`` (UDP), ``udp://HOST:PORT`` or ``tcp://HOST:PORT``."""

    host: str
    port: int
    transport: str  # "udp" | "tcp"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


def parse_target(text: str) -> Target:
    """Parse a collector address; raises ValueError with a message for the user."""
    transport = "udp"
    rest = text.strip()
    for scheme in ("udp", "tcp"):
        if rest.lower().startswith(f"{scheme}://"):
            transport = scheme
            rest = rest[len(scheme) + 3 :]
            break
    if "://" in rest:
        raise ValueError(f"unsupported scheme in {text!r} (use udp:// or tcp://)")
    if rest.startswith("["):  # [v6]:port
        host, sep, port_text = rest[1:].partition("]:")
    else:
        host, sep, port_text = rest.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1..65535, got {port}")
    return Target(host, port, transport)


class Sender:
    """Bounded, non-blocking message queue with a sending thread; counts what it loses."""

    def __init__(
        self,
        target: Target,
        greeting: Callable[[], bytes] | None = None,
        queue_messages: int = DEFAULT_QUEUE_MESSAGES,
    ) -> None:
        self.target = target
        self._greeting = greeting  # TCP: the templates, sent first on each connection
        self._cap = queue_messages
        self._queue: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self.sent_messages = 0
        self.sent_bytes = 0
        self.dropped_queue = 0  # refused: the queue was full
        self.dropped_send = 0  # lost to a send error or a broken/unreachable connection
        self.connects = 0
        self._progress = time.monotonic()  # when a message last left the queue's hands
        self.last_error: str | None = None
        self._sock: socket.socket | None = None
        self._udp = target.transport == "udp"
        if self._udp:
            self._connect()  # UDP "connect" only sets the peer: the fast path can use it now
        self._thread = threading.Thread(target=self._run, name="netscope-ipfix", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self.dropped_queue + self.dropped_send

    def offer(self, messages: list[bytes], wait_s: float = 0.0) -> int:
        """Queue what fits, drop (and count) the rest. Returns how many were accepted.

        ``wait_s`` = 0 (live capture): never waits. ``wait_s`` > 0 (reading a file, which
        cannot overrun): while the queue is full, waits for room as long as the sending
        thread keeps making progress (a message sent or lost within the last ``wait_s``),
        so a fast file read does not throw records away in front of a healthy collector,
        but a stalled one (no progress for ``wait_s``) is never waited for.
        """
        if not messages:
            return 0
        done = 0
        with self._cond:
            if self._sock is not None and self._udp and not self._queue and not self._busy:
                done = self._send_direct(messages)
            while done < len(messages):
                room = self._cap - len(self._queue)
                if room > 0:
                    take = messages[done : done + room]
                    self._queue.extend(take)
                    done += len(take)
                    self._cond.notify_all()
                    continue
                if wait_s <= 0 or time.monotonic() - self._progress > wait_s or self._stop:
                    break
                self._cond.wait(min(wait_s, 0.01))
            self.dropped_queue += len(messages) - done
        return done

    def _send_direct(self, messages: list[bytes]) -> int:
        """UDP fast path, on the caller's thread with the lock held and the sending thread
        idle (so datagrams stay in order): non-blocking sends until the socket would block.
        Handing every datagram to the thread instead costs a GIL hand-over per datagram."""
        sock = self._sock
        assert sock is not None
        sent = 0
        for i, msg in enumerate(messages):
            try:
                sock.send(msg)
            except BlockingIOError:
                return i
            except OSError as exc:  # e.g. ECONNREFUSED from an earlier ICMP unreachable
                self.last_error = str(exc)
                self.dropped_send += 1
                continue
            sent += 1
            self.sent_bytes += len(msg)
        self.sent_messages += sent
        self._progress = time.monotonic()
        return len(messages)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (waiting at most ``timeout_s``), then stop the thread;
        messages still queued then are counted as dropped."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._stop = True
            self.dropped_send += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout=SEND_TIMEOUT_S + CONNECT_TIMEOUT_S + 1.0)
        self._disconnect()

    # ---- the sending thread ----
    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                n = min(len(self._queue), SEND_CHUNK)
                batch = [self._queue.popleft() for _ in range(n)]
                self._busy = True
                self._cond.notify_all()  # room for a waiting offer()
            try:
                if self._sock is None and not self._connect():
                    self._lose(len(batch))
                    backoff = min(RECONNECT_MAX_S, max(0.1, backoff * 2))
                    self._sleep(backoff)
                    continue
                backoff = 0.0
                for i, msg in enumerate(batch):
                    if not self._send(msg):
                        self._lose(len(batch) - i)
                        break
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            if not self._stop:
                self._cond.wait(seconds)

    def _lose(self, n: int) -> None:
        with self._cond:
            self.dropped_send += n
            self._progress = time.monotonic()

    def _connect(self) -> bool:
        t = self.target
        try:
            kind = socket.SOCK_DGRAM if t.transport == "udp" else socket.SOCK_STREAM
            info = socket.getaddrinfo(t.host, t.port, type=kind)[0]
            sock = socket.socket(info[0], kind)
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(info[4])
            if kind == socket.SOCK_DGRAM:
                sock.setblocking(False)  # shared with the fast path: never blocks
            else:
                sock.settimeout(SEND_TIMEOUT_S)
        except OSError as exc:
            self.last_error = str(exc)
            return False
        self._sock = sock
        self.connects += 1
        if t.transport == "tcp" and self._greeting is not None:
            return self._send(self._greeting())
        return True

    def _send(self, msg: bytes) -> bool:
        sock = self._sock
        if sock is None:
            return False
        try:
            if self._udp:
                while True:
                    try:
                        sock.send(msg)
                        break
                    except BlockingIOError:  # socket buffer full: wait, but not forever
                        if not select.select([], [sock], [], SEND_TIMEOUT_S)[1]:
                            raise TimeoutError("UDP send buffer stayed full") from None
            else:
                sock.sendall(msg)
        except OSError as exc:  # includes timeouts
            self.last_error = str(exc)
            if self.target.transport == "tcp":
                self._disconnect()
                return False
            self._lose(1)  # UDP: this datagram is lost, the socket stays usable
            return True
        self.sent_messages += 1
        self.sent_bytes += len(msg)
        self._progress = time.monotonic()
        return True

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

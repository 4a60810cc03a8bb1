"""The dashboard's HTTP/WebSocket server (aiohttp) in a thread of its own, and its wiring.

Why a thread with its own event loop: the capture loop is synchronous and must never wait
for a browser. The server thread spends its time in aiohttp and JSON; the capture thread
only calls :meth:`netscope.web.hub.Hub.submit`, which never blocks.

:class:`Dashboard` is what a run holds: it starts the server (so bind, TLS and asset errors
surface before capture starts, as one-line errors with exit code 1), provides the
``InlineProcessor`` observer and tick handler, and stops the server at the end.

Routes (all behind Basic auth when ``web.auth`` is on): ``/`` (the page), ``/static/…``
(its assets, packaged with netscope), ``/ws`` (frames), ``/api/health``, ``/metrics``.
Connection limits (timeouts, per-address cap) are in :mod:`netscope.web.guard`, the
one-line request-error log in :mod:`netscope.web.errorlog`, client-message validation in
:mod:`netscope.web.requests`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hmac
import ipaddress
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from aiohttp import WSMsgType, web

from netscope._version import __version__
from netscope.config import Config, WebConfig
from netscope.errors import NetScopeError
from netscope.web.errorlog import ClientErrorLog, PerKeyInterval
from netscope.web.feed import WebFeed, ring_for
from netscope.web.guard import AddressCap, ServerLimits
from netscope.web.hub import Client, Hub
from netscope.web.metrics import CONTENT_TYPE, make_registry, render
from netscope.web.password import read_password
from netscope.web.requests import error_message

# aiohttp closes a WebSocket with 1009 (message too big) past this; smaller messages over
# requests.MAX_REQUEST_BYTES get an ``error`` reply and the connection stays open.
WS_FRAME_LIMIT = 64 * 1024

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_ASSETS = ("vendor/chart.umd.js",)
REALM = 'Basic realm="netscope", charset="UTF-8"'
START_TIMEOUT_S = 30.0


def check_assets(static_dir: Path = STATIC_DIR) -> None:
    """Fail with a clear message when the bundled browser libraries were never built."""
    for name in VENDOR_ASSETS:
        if not (static_dir / name).is_file():
            raise NetScopeError(
                f"dashboard asset missing: {static_dir / name}",
                hint="run `make setup` or scripts/build-web-assets.sh (npm ci) to bundle Chart.js",
            )


def tls_context(cfg: WebConfig) -> ssl.SSLContext | None:
    """Server TLS context from cert/key paths, with one-line errors for bad files."""
    tls = cfg.tls
    if not tls.enabled:
        return None
    assert tls.cert_path is not None and tls.key_path is not None
    for label, path in (("certificate", tls.cert_path), ("key", tls.key_path)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise NetScopeError(
                f"cannot read TLS {label} {path}: {exc.strerror or exc}",
                hint="check web.tls.cert_path / web.tls.key_path (--web-tls-cert/--web-tls-key)",
            ) from exc
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(tls.cert_path), str(tls.key_path))
    except (ssl.SSLError, OSError) as exc:
        raise NetScopeError(
            f"cannot load TLS certificate {tls.cert_path} with key {tls.key_path}: {exc}",
            hint="both must be PEM files and the key must match the certificate",
        ) from exc
    return ctx


def is_loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def basic_auth_middleware(username: str, password: str) -> Any:
    """Every route, the WebSocket handshake included, needs the right credentials.

    The comparison is over the whole ``user:password`` byte string with
    ``hmac.compare_digest``, so its time does not depend on where a guess goes wrong.
    """
    expected = f"{username}:{password}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        given = b""
        if header[:6].lower() == "basic ":
            try:
                given = base64.b64decode(header[6:].strip(), validate=True)
            except ValueError:
                given = b""
        if not hmac.compare_digest(given, expected):
            return web.Response(
                status=401,
                text="401: authentication required\n",
                headers={"WWW-Authenticate": REALM},
            )
        return await handler(request)

    return middleware


def build_app(hub: Hub, cfg: WebConfig, password: str | None = None) -> web.Application:
    """The aiohttp application (also used in-process by tests)."""
    middlewares = []
    if cfg.auth.enabled:
        middlewares.append(basic_auth_middleware(cfg.auth.username, password or ""))
    app = web.Application(middlewares=middlewares)
    registry = make_registry(hub)

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def health(request: web.Request) -> web.StreamResponse:
        return web.json_response(hub.health())

    async def metrics(request: web.Request) -> web.StreamResponse:
        body = render(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=WS_FRAME_LIMIT)
        await ws.prepare(request)
        client = Client()
        client.reply(hub.hello())
        if hub.latest_frame is not None:
            client.offer(hub.latest_frame)
        hub.clients.add(client)
        sender = asyncio.create_task(_send_loop(ws, client))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    _handle_text(hub, client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    client.reply(error_message("binary messages are not supported"))
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            client.closed = True
            client.event.set()
            hub.clients.discard(client)
            hub.frames_skipped += client.skipped
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return ws

    app.router.add_get("/", index)
    app.router.add_get("/index.html", index)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/api/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    return app


def _handle_text(hub: Hub, client: Client, text: str) -> None:
    """Answer one client message; a failure in answering it must not end the connection."""
    try:
        hub.handle_request(client, text)
    except Exception as exc:  # a bug (e.g. in a packet decoder): one line, the client goes on
        log.error("dashboard: failed to answer a client message: %s", type(exc).__name__)
        log.debug("dashboard: client message failure", exc_info=exc)
        client.reply(error_message("internal error while answering this message"))


async def _send_loop(ws: web.WebSocketResponse, client: Client) -> None:
    """Send replies, then the latest frame, whenever the client's slot is filled.

    ``send_str`` waits while the socket buffer is full; meanwhile new frames overwrite the
    slot, which is how a slow client skips to the latest state.
    """
    try:
        while not client.closed:
            await client.event.wait()
            client.event.clear()
            while client.control:
                await ws.send_str(client.control.popleft())
            frame, client.latest = client.latest, None
            if frame is not None:
                await ws.send_str(frame)
                client.sent += 1
    except (ConnectionError, RuntimeError) as exc:  # peer gone / closing transport
        log.debug("dashboard client send loop ends: %s", exc)


class WebServer:
    """Runs the app on ``bind:port`` in a daemon thread with its own event loop."""

    def __init__(self, cfg: WebConfig, hub: Hub, limits: ServerLimits | None = None) -> None:
        self.cfg = cfg
        self.hub = hub
        self.limits = limits or ServerLimits()
        self.ssl = tls_context(cfg)
        self.password = read_password(cfg) if cfg.auth.enabled else None
        self.app = build_app(hub, cfg, self.password)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl is not None else "http"
        host = f"[{self.cfg.bind}]" if ":" in self.cfg.bind else self.cfg.bind
        return f"{scheme}://{host}:{self.cfg.port}/"

    def start(self) -> None:
        """Start serving; raise NetScopeError (exit 1) when the port cannot be bound."""
        self._thread = threading.Thread(target=self._run, name="netscope-web", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise NetScopeError("dashboard server did not start in time")
        if self._error is not None:
            error = self._error
            self._thread.join(5)
            if isinstance(error, OSError):
                where = f"{self.cfg.bind}:{self.cfg.port}"
                if error.errno == errno.EADDRINUSE:
                    raise NetScopeError(
                        f"cannot listen on {where}: address already in use",
                        hint="another program holds the port; choose another with --web-port",
                    ) from error
                raise NetScopeError(
                    f"cannot listen on {where}: {error.strerror or error}",
                    hint="check --web-bind and --web-port",
                ) from error
            raise NetScopeError(f"dashboard server failed to start: {error}") from error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() when it happens during start-up
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.error("dashboard server stopped: %s", exc)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        """Listen through :class:`AddressCap` (so the listener is made here, not by a
        ``TCPSite``) with aiohttp's idle timer and our request-error log (guard.py)."""
        self._stop = asyncio.Event()
        limits = self.limits
        log_limiter = PerKeyInterval(limits.error_log_interval_s)
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=limits.idle_timeout_s,
            logger=ClientErrorLog(log, log_limiter),
        )
        await runner.setup()
        self._runner = runner
        listener: asyncio.Server | None = None
        try:
            assert runner.server is not None
            cap = AddressCap(limits.max_connections_per_address, log_limiter)
            loop = asyncio.get_running_loop()
            tls: dict[str, Any] = {}
            if self.ssl is not None:
                tls = {"ssl": self.ssl, "ssl_handshake_timeout": limits.tls_handshake_timeout_s}
            listener = await loop.create_server(
                cap.wrap(runner.server), self.cfg.bind, self.cfg.port, reuse_address=True, **tls
            )
            self.hub.loop = loop
            self._ready.set()
            await self._stop.wait()
        finally:
            if listener is not None:
                listener.close()
            await runner.cleanup()

    def stop(self) -> None:
        """Close every connection and end the thread (idempotent)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


def _alert_sink_module() -> Any:
    """``netscope.sinks.alerts`` when anomaly detection is installed, else None (imported
    by name so this module does not depend on it)."""
    import importlib

    try:
        return importlib.import_module("netscope.sinks.alerts")
    except ImportError:
        return None


class StatsEvery:
    """Feeds the CLI ``[stats]`` handler from dashboard ticks.

    With ``--web`` the processor ticks every ``web.tick_ms``; the stats line still comes
    every ``stats.interval_ms``: ticks are summed until that much time has passed.
    """

    def __init__(self, handler: Callable[[Any], None], interval_ns: int) -> None:
        self.handler = handler
        self.interval_ns = interval_ns
        self._start: int | None = None
        self._bytes = 0
        self._packets = 0

    def __call__(self, tick: Any) -> None:
        from netscope.pipeline.inline import Tick

        if self._start is None:
            self._start = tick.start_ns
        self._bytes += tick.bytes
        self._packets += tick.packets
        if tick.end_ns - self._start >= self.interval_ns:
            self.handler(
                Tick(
                    self._start,
                    tick.end_ns,
                    tick.end_ns - self._start,
                    self._bytes,
                    self._packets,
                    tick.active_flows,
                )
            )
            self._start, self._bytes, self._packets = None, 0, 0


def describe_input(cfg: Config) -> dict[str, str]:
    """What the dashboard's header says the input is (a file's state changes at EOF)."""
    path = cfg.capture.read_pcap
    if path is not None:
        return {"kind": "file", "name": Path(str(path)).name, "state": "reading"}
    return {"kind": "live", "name": cfg.capture.interface or "default", "state": "capturing"}


class Dashboard:
    """The dashboard of one run: server + capture-side feed.

    Usage by a runner::

        dash = Dashboard.start(cfg, processor, err)      # before capture
        processor.on_tick = dash.tick_handler(stats_handler)
        ...
        dash.finish(); dash.stop()
    """

    def __init__(self, cfg: Config, server: WebServer, feed: WebFeed) -> None:
        self.cfg = cfg
        self.server = server
        self.feed = feed

    @classmethod
    def start(
        cls,
        cfg: Config,
        processor: Any,
        err: TextIO,
        drops: Callable[[], tuple[int, int, int]] | None = None,
    ) -> Dashboard:
        web_cfg = cfg.web
        check_assets()
        ring = ring_for(web_cfg)
        hub = Hub(ring, web_cfg.tick_ms, __version__, source=describe_input(cfg))
        server = WebServer(web_cfg, hub)
        pipeline = getattr(processor, "capture_observers", None) is not None
        if pipeline:
            feed = cls._pipeline_feed(web_cfg, processor, hub, drops, ring)
        else:
            feed = WebFeed(
                web_cfg, processor.analyzer.counters, processor.flows, hub.submit, drops, ring
            )
        # auth without TLS has its own, more specific warning (sinks/startup.py): one line each
        if not is_loopback(web_cfg.bind) and not web_cfg.auth.enabled:
            print(
                f"warning: the dashboard on {web_cfg.bind}:{web_cfg.port} is reachable from the "
                "network without TLS and auth (enable [web.tls] and [web.auth], or bind "
                "127.0.0.1)",
                file=err,
                flush=True,
            )
        server.start()
        print(f"dashboard: {server.url}", file=err, flush=True)
        if pipeline:
            processor.capture_observers.append(feed.observe_capture)
        else:
            processor.observers.append(feed.observe)
        cls._subscribe_alerts(feed)
        feed.community_id_seed = cfg.output.community_id_seed
        return cls(cfg, server, feed)

    def attach_replay(self, pacer: Any) -> None:
        """A paced offline run (``--replay-speed``): the page can pause, resume and seek it."""
        self.server.hub.replay = pacer

    @staticmethod
    def _pipeline_feed(
        web_cfg: WebConfig,
        processor: Any,
        hub: Hub,
        drops: Callable[[], tuple[int, int, int]] | None,
        ring: Any,
    ) -> WebFeed:
        """The feed of a sharded run: packets are sampled on the capture thread (global
        ids), top flows come from the aggregator's merged tick, totals are summed over the
        shards while they run (reading ``processor.flows`` would stop them) and the merged
        table makes the final frame; dispatch drops come from the pipeline's counter."""

        def all_drops() -> tuple[int, int, int]:
            kernel, iface = drops()[1:] if drops is not None else (0, 0)
            return processor.dispatch_drops, kernel, iface

        feed = WebFeed(
            web_cfg, processor.live_counters(), processor.live_flows(), hub.submit, all_drops,
            ring,
        )  # fmt: skip
        feed.top_source = lambda: processor.tick_top
        feed.final_flows = lambda: processor.flows
        feed.shard_depths = processor.queue_depths
        return feed

    @staticmethod
    def _subscribe_alerts(feed: WebFeed) -> None:
        """Register with the alert sink's dashboard hooks, when anomaly detection has them."""
        alert_sink = _alert_sink_module()
        if alert_sink is None:
            return
        hooks = getattr(alert_sink, "DASHBOARD_HOOKS", None)
        if isinstance(hooks, list):  # module-level: the sink may be created after us
            hooks.append(feed.push_alert)

    def tick_handler(self, stats: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """The processor's tick handler: a frame every tick, stats lines at their interval."""
        feed = self.feed
        if stats is None:
            return feed.on_tick
        every = StatsEvery(stats, self.cfg.stats.interval_ms * 1_000_000)

        def both(tick: Any) -> None:
            feed.on_tick(tick)
            every(tick)

        return both

    @property
    def tick_ns(self) -> int:
        return self.cfg.web.tick_ms * 1_000_000

    def finish(self) -> None:
        self.feed.finish()

    def serve_until_interrupt(self, err: TextIO) -> None:
        """Offline input: keep serving the final state until Ctrl-C (or SIGTERM).

        The CLI's signal handler (netscope.signals) only sets a flag, polled here; without
        it (library use) Ctrl-C arrives as KeyboardInterrupt."""
        import time

        from netscope.signals import stop_requested

        try:
            print(
                f"dashboard: input finished; still serving {self.server.url} with the final "
                "state (Ctrl-C to exit)",
                file=err,
                flush=True,
            )
            while not stop_requested():
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        self.server.stop()
        alert_sink = _alert_sink_module()
        if alert_sink is None:
            return
        hooks = getattr(alert_sink, "DASHBOARD_HOOKS", None)
        if isinstance(hooks, list) and self.feed.push_alert in hooks:
            hooks.remove(self.feed.push_alert)

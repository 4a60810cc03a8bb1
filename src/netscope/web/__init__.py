"""The live web dashboard: HTTP + WebSocket server, Prometheus metrics, packet inspector.

Layout (capture side → server side):

- :mod:`netscope.web.feed` runs on the capture thread. It samples packets into a bounded
  ring (an ``InlineProcessor`` observer), turns each tick into one small message and hands
  it over without ever blocking capture.
- :mod:`netscope.web.hub` runs on the server's event loop: it merges each message into a
  JSON ``frame``, keeps the totals /metrics reports and gives every client a one-frame
  "latest" slot, so a slow client skips frames instead of queueing them.
- :mod:`netscope.web.server` owns the aiohttp application, TLS, Basic auth and the thread
  the event loop runs in; :mod:`netscope.web.metrics` renders the Prometheus text.
- Around the server: :mod:`netscope.web.requests` (client messages validated, ``error``
  replies), :mod:`netscope.web.guard` (idle/slow-request timeouts, per-address connection
  cap), :mod:`netscope.web.errorlog` (one log line per misbehaving client per interval),
  :mod:`netscope.web.password` (the Basic-auth password file).

Nothing here is imported unless ``--web`` is on (aiohttp and prometheus_client load only
then), so plain captures start as fast as before.
"""

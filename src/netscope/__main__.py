"""``python -m netscope``: the same command as the ``netscope`` console script.

The signal handlers go in before anything else is imported, so even a Ctrl-C during the
first imports exits quietly with 130 (see :mod:`netscope.signals`).
"""

from netscope import signals

signals.install()
try:
    from netscope.cli import main
except signals.Interrupted as exc:
    raise SystemExit(exc.exit_code) from None

raise SystemExit(main())

"""``python -m netscope``: the same command as the ``netscope`` console script."""

from netscope.cli import main

raise SystemExit(main())

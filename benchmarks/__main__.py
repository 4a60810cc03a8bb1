"""``python -m benchmarks``: every benchmark, the side-by-side comparison, then one table of
the SPEC §9 targets (``--quick``, ``--cold``, ``--json PATH``; see benchmarks/suite.py)."""

from __future__ import annotations

import sys

from benchmarks.suite import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

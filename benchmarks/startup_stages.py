"""Child process of ``benchmarks.bench_startup``: where a one-packet run's start-up goes.

Run as a script (``python benchmarks/startup_stages.py ONE.pcap``) so that nothing but the
standard library is imported before the first stage; prints one JSON list of
``[stage, wall_s, cpu_s]``. The stages follow the CLI's own order; the run itself is
``netscope.cli.main`` in this process, with numba's ``Dispatcher.compile`` wrapped to time
each kernel's first call (a cache load when the cache is warm). The first load also pays
for numba's target set-up (and, without ``LeanLoadCache``, its lowering registries).
Works against any NetScope ``src/`` on ``PYTHONPATH``, so an older revision can be compared.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from typing import Any

_CLOCK_START = (time.perf_counter(), time.process_time())


def main(argv: list[str]) -> None:
    stages: list[tuple[str, float, float]] = [
        ("interpreter start (CPU only)", 0.0, _CLOCK_START[1])
    ]
    last = [time.perf_counter(), time.process_time()]

    def mark(name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        stages.append((name, now[0] - last[0], now[1] - last[1]))
        last[:] = now

    import netscope.cli

    mark("import netscope.cli (argparse, config)")
    import numpy  # noqa: F401

    mark("import numpy")
    import netscope.kernels._jit  # noqa: F401  (sets NUMBA_CACHE_DIR, then imports numba)

    mark("import numba")
    import netscope.engine
    import netscope.kernels.decode
    import netscope.kernels.records
    import netscope.runner  # noqa: F401

    mark("NetScope run modules (runner, engine, flow table, kernels)")
    from numba.core.dispatcher import Dispatcher

    loads: list[tuple[str, float, float]] = []
    original = Dispatcher.compile

    def timed_compile(self: Any, sig: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return original(self, sig)
        finally:
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            loads.append((self.py_func.__name__, wall, cpu))

    Dispatcher.compile = timed_compile  # type: ignore[method-assign]
    with contextlib.redirect_stdout(io.StringIO()):
        netscope.cli.main(argv)
    now = (time.perf_counter(), time.process_time())
    run_wall, run_cpu = now[0] - last[0], now[1] - last[1]
    if loads:
        first = loads[0]
        stages.append((f"first kernel load ({first[0]}: numba target set-up)", first[1], first[2]))
        rest = loads[1:]
        stages.append(
            (
                f"other kernel loads ({len(rest)}: {', '.join(n for n, _, _ in rest)})",
                sum(x[1] for x in rest),
                sum(x[2] for x in rest),
            )
        )
    stages.append(
        (
            "rest of the run (read, decode, print, summary)",
            run_wall - sum(x[1] for x in loads),
            run_cpu - sum(x[2] for x in loads),
        )
    )
    stages.append(("scipy imported", float("scipy" in sys.modules), 0.0))
    print(json.dumps(stages))


if __name__ == "__main__":
    main(sys.argv[1:])

"""``python -m benchmarks``: every benchmark, one after the other, as docs/performance.md quotes.

Arguments after ``--e2e`` go to the end-to-end script (e.g. ``--small PATH``, ``--reps 5``).
"""

from __future__ import annotations

import sys

from benchmarks import (
    bench_anomaly,
    bench_bpf,
    bench_e2e_decode,
    bench_flows,
    bench_parse,
    bench_pipeline,
)


def main(argv: list[str]) -> int:
    e2e_args: list[str] = []
    if "--e2e" in argv:
        e2e_args = argv[argv.index("--e2e") + 1 :]
    bench_parse.main([])
    print()
    bench_flows.main()
    print()
    bench_bpf.main([])
    print()
    bench_e2e_decode.main(e2e_args)
    print()
    bench_pipeline.main([])
    print()
    bench_anomaly.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

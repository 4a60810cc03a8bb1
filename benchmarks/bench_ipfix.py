"""IPFIX export cost: encoding 1M flows, and --export-ipfix on a whole offline run,
side by side with nfdump's ``nfpcapd -r`` and ``softflowd -r`` on the same trace.

``python -m benchmarks.bench_ipfix [--trace PATH] [--packets N]``. Without ``--trace`` a
trace is generated (netscope.gen.traffic, realistic packet sizes) in $TMPDIR: the 1.7 GB
reference trace is too heavy for the shared benchmark machine (docs/performance.md).
CPU times of child processes come from ``getrusage(RUSAGE_CHILDREN)`` (user + system).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.figures import Figure

ROWS = (
    ("IPFIX encode, 1M flows (CPU)", "<= 1 s"),
    ("IPFIX export overhead, whole process", "<= 10 %"),
)


def encode_1m(n: int = 1_000_000, repeats: int = 3) -> list[float]:
    """CPU seconds to turn ``n`` table rows into IPFIX messages (records + cutting)."""
    from netscope.flows import layout as L
    from netscope.flows.table import FlowOptions, FlowTable
    from netscope.sinks.ipfix.encoder import Deltas, MessageEncoder, build_records

    opts = FlowOptions(export_columns=True, max_flows=n, initial_flows=n, rtt=False,
                       retrans=False, out_of_order=False)  # fmt: skip
    table = FlowTable(opts)
    table.insert_synthetic(n)
    x = table.export_col
    samples = []
    for _ in range(repeats):
        t0 = time.process_time()
        i64 = table.i64
        d = Deltas(i64[:, L.I_PKTS_AB], i64[:, L.I_PKTS_BA], i64[:, x], i64[:, x + 1])
        recs = build_records(table.keys, i64, table.u8, np.ones(n, np.uint8), d)
        msgs = MessageEncoder(0, 1400).data(recs, 0)
        samples.append(time.process_time() - t0)
        assert sum(len(m) for m in msgs) > n * 60
    return samples


def _child_cpu(args: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def whole_process(trace: Path, repeats: int) -> dict[str, list[float]]:
    """CPU seconds of whole runs: netscope without/with export, nfpcapd, softflowd."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read: no ICMP
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    py = [sys.executable, "-m", "netscope", "--read-pcap", str(trace), "--quiet"]
    runs: dict[str, list[str]] = {
        "netscope": py,
        "netscope --export-ipfix": py + ["--export-ipfix", f"127.0.0.1:{port}"],
    }
    out = Path(tempfile.mkdtemp(prefix="bench-ipfix-"))
    if shutil.which("nfpcapd"):
        runs["nfpcapd -r"] = ["nfpcapd", "-r", str(trace), "-w", str(out)]
    if shutil.which("softflowd"):
        runs["softflowd -r"] = ["softflowd", "-r", str(trace), "-n", f"127.0.0.1:{port}"]
    _child_cpu(py)  # warm the kernel cache
    result: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, args in runs.items():
            try:
                result[name].append(_child_cpu(args))
            except subprocess.CalledProcessError:
                result[name].append(float("nan"))
    sink.close()
    shutil.rmtree(out, ignore_errors=True)
    return result


def figures(results: dict[str, Any]) -> list[Figure]:
    enc = min(results["encode"])
    procs = results["process"]
    base, with_ipfix = min(procs["netscope"]), min(procs["netscope --export-ipfix"])
    overhead = (with_ipfix / base - 1) * 100
    side = ", ".join(f"{k} {min(v):.2f} s" for k, v in procs.items())
    return [
        Figure(ROWS[0][0], ROWS[0][1], enc, "s", enc <= 1.0, f"{enc:.3f} s"),
        Figure(ROWS[1][0], ROWS[1][1], overhead, "%", overhead <= 10.0,
               f"{overhead:+.1f} % ({side})"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trace", type=Path)
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--flows", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    trace = args.trace
    if trace is None:
        from netscope.gen.traffic import generate

        trace = Path(tempfile.gettempdir()) / f"bench-ipfix-{args.packets}-{args.flows}.pcap"
        if not trace.is_file():
            generate(trace, packets=args.packets, flows=args.flows, seed=1, small_packets=False)
    encode = encode_1m()
    process = whole_process(trace, args.repeats)
    results: dict[str, Any] = {"encode": encode, "process": process}
    print(f"IPFIX encode 1M flows: CPU {min(encode):.3f} s (samples "
          f"{', '.join(f'{s:.3f}' for s in encode)})")  # fmt: skip
    print(f"trace {trace} ({os.path.getsize(trace) / 1e6:.0f} MB)")
    for name, samples in process.items():
        print(f"  {name:<26} CPU {min(samples):.2f} s  (samples {samples})")
    for fig in figures(results):
        print(f"  {fig.name}: {fig.measured} (target {fig.target_text})")
    return results


if __name__ == "__main__":
    main()

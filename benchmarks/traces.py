"""The traces the benchmarks run on: found where they were made before, generated on first use.

- **reference** (``mixed-2m.pcap``): the SPEC's reference workload, made by the shared
  generator ``python3 genpcap.py mixed-2m.pcap --packets 2000000 --flows 20000 --seed 1``
  (realistic sizes, ~1.67 GB). Where that script is not available, or with
  ``generator="netscope"``, our own generator makes a trace of the same shape
  (``mixed-2m-netscope.pcap``: a different file, so figures never mix the two).
- **small** (``small-2m.pcap``): 2M packets with 1-64 byte payloads from
  ``netscope.gen.traffic`` (~187 MB), the ">= 5 M packets/s on small packets" workload.
- **quick** traces (``quick/``): 200 000 small packets and 100 000 realistic ones, for
  ``python -m benchmarks --quick`` (development and smoke tests).

Traces live in ``$NETSCOPE_BENCH_DIR`` (default ``/work/bench``). Generation is
deterministic (seeded), so a trace made once is reused; files are written under a temporary
name and renamed when complete, so a half-written trace is never measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import REPO_ROOT

BENCH_DIR = Path(os.environ.get("NETSCOPE_BENCH_DIR", "/work/bench"))
REFERENCE_PACKETS = 2_000_000
REFERENCE_FLOWS = 20_000
SMALL_PACKETS = 2_000_000
SMALL_FLOWS = 20_000
QUICK_SMALL_PACKETS = 200_000
QUICK_MIXED_PACKETS = 100_000
QUICK_FLOWS = 2_000


def reference_path(generator: str = "genpcap") -> Path:
    name = "mixed-2m.pcap" if generator == "genpcap" else "mixed-2m-netscope.pcap"
    return BENCH_DIR / name


def small_path() -> Path:
    return BENCH_DIR / "small-2m.pcap"


def genpcap_script() -> Path | None:
    """The shared generator: ``$NETSCOPE_GENPCAP``, else ``shared/tools`` beside the clone."""
    candidates = [
        os.environ.get("NETSCOPE_GENPCAP", ""),
        str(REPO_ROOT.parent / "shared" / "tools" / "genpcap.py"),
        "/work/shared/tools/genpcap.py",
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def _wait_until_written(path: Path, truth: Path, settle_s: float = 30.0) -> None:
    """Another process may still be writing ``path``: wait for its truth file, or for the
    file to stop growing for ``settle_s`` (a generator that died leaves a complete-looking
    file without truth; its size then stays put)."""
    size, since = -1, time.monotonic()
    while not (truth.is_file() and truth.stat().st_size > 0):
        now_size = path.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= settle_s:
            return
        print(f"   waiting for {path} to be complete ...", flush=True)
        time.sleep(5)


def ensure_reference(generator: str = "genpcap") -> Path:
    """The reference trace, generated if missing (falls back to our generator if the shared
    one is not available)."""
    script = genpcap_script() if generator == "genpcap" else None
    if generator == "genpcap" and script is None:
        print("   genpcap.py not found: using netscope's own generator for the reference trace")
        generator = "netscope"
    path = reference_path(generator)
    truth = path.with_suffix(".truth.json")
    if path.is_file():
        _wait_until_written(path, truth)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.pcap")
    print(f"   generating {path} ({REFERENCE_PACKETS} packets, {generator}) ...", flush=True)
    t0 = time.perf_counter()
    if generator == "genpcap":
        assert script is not None
        with open(truth.with_suffix(".tmp"), "w", encoding="utf-8") as out:
            subprocess.run(
                [sys.executable, str(script), str(tmp), "--packets", str(REFERENCE_PACKETS),
                 "--flows", str(REFERENCE_FLOWS), "--seed", "1",
                 "--flows-csv", str(path.with_suffix(".flows.csv"))],
                stdout=out, check=True,
            )  # fmt: skip
        tmp.replace(path)
        truth.with_suffix(".tmp").replace(truth)
    else:
        from netscope.gen.traffic import generate

        generate(tmp, packets=REFERENCE_PACKETS, flows=REFERENCE_FLOWS, seed=1)
        tmp.replace(path)
        truth.write_text('{"generator": "netscope.gen.traffic", "seed": 1}\n')
    print(f"   ... done in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def ensure_generated(
    path: Path, packets: int, flows: int, small_packets: bool, seed: int = 1
) -> Path:
    """A trace from ``netscope.gen.traffic``, generated once (deterministic, so reuse is
    safe)."""
    if path.is_file() and path.stat().st_size > 0:
        return path
    from netscope.gen.traffic import generate

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.pcap")
    kind = "small" if small_packets else "realistic"
    print(f"   generating {path} ({packets} {kind} packets) ...", flush=True)
    generate(tmp, packets=packets, flows=flows, seed=seed, small_packets=small_packets)
    tmp.replace(path)
    return path


def ensure_small(path: Path | None = None) -> Path:
    return ensure_generated(path or small_path(), SMALL_PACKETS, SMALL_FLOWS, True)


def quick_traces(directory: Path | None = None) -> tuple[Path, Path]:
    """(mixed, small) quick traces: small enough for a smoke run of the whole suite."""
    d = directory or BENCH_DIR / "quick"
    mixed = ensure_generated(d / "mixed-100k.pcap", QUICK_MIXED_PACKETS, QUICK_FLOWS, False)
    small = ensure_generated(d / "small-200k.pcap", QUICK_SMALL_PACKETS, QUICK_FLOWS, True)
    return mixed, small

"""Start-up (issue 18): what a run imports and loads before its first packet.

No timings here (docs/performance.md, "Start-up", has the figures and the benchmark):
these tests pin the mechanisms the figures come from, each in a fresh process because
start-up is a property of a whole process.

- ``import netscope`` imports neither numpy nor numba (``--help``/``--version``:
  tests/test_cli.py).
- A one-packet run imports only the kernel modules it calls, and loads its cached kernels
  without numba's lowering registries (``LeanLoadCache``: the registries, and SciPy through
  numba's BLAS probe, were half of a one-packet run's CPU time).
- Both cache paths of a kernel work: a miss compiles through numba's pipeline, a hit loads
  lean, and a kernel that allocates (numba's runtime) runs from a lean load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from numba.core.caching import FunctionCache

from netscope.gen.packets import ether_ip, tcp
from netscope.gen.pcapfile import write_pcap
from netscope.kernels import _jit, flowtable, records
from netscope.kernels import decode as decode_kernels
from tests_support import REPO_ROOT
from tests_support import run_netscope as run_cli

SRC = str(REPO_ROOT / "src")
COMPILE_TIMEOUT_S = 600.0  # a cold kernel cache compiles the run's groups first

# What a one-packet pcap run may import from netscope.kernels: the decode, record-scanning
# and flow kernels and the helper modules they are built from. Nothing for BPF, the ring,
# the pipeline (router, heavy hitters) or anomaly detection.
CORE_KERNEL_MODULES = {
    "netscope.kernels",
    "netscope.kernels._jit",
    "netscope.kernels.byteorder",
    "netscope.kernels.decode",
    "netscope.kernels.flowtable",
    "netscope.kernels.headers",
    "netscope.kernels.lists",
    "netscope.kernels.prefetch",
    "netscope.kernels.records",
}

RUN_AND_REPORT = """
import contextlib, io, json, sys
from netscope.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main({args!r})
print(json.dumps({{
    "code": code,
    "kernels": sorted(m for m in sys.modules if m.startswith("netscope.kernels")),
    "registries": "numba.np.arraymath" in sys.modules,
}}))
"""


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("NUMBA_DISABLE_JIT", None)
    full_env["PYTHONPATH"] = os.pathsep.join([SRC, full_env.get("PYTHONPATH", "")])
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO_ROOT,
        timeout=600,
        check=True,
    )


def _report(*args: str) -> dict[str, object]:
    proc = _python(RUN_AND_REPORT.format(args=list(args)))
    report: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture(scope="module")
def one_packet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "one.pcap"
    segment = tcp("10.0.0.1", "10.0.0.2", 40000, 443, 1, 0, "S")
    write_pcap(path, [(1_700_000_000_000_000_000, ether_ip("10.0.0.1", "10.0.0.2", 6, segment))])
    return path


def test_import_netscope_imports_neither_numpy_nor_numba() -> None:
    proc = _python(
        "import sys, netscope\n"
        "print(sorted(m for m in ('numpy', 'numba', 'scipy') if m in sys.modules))"
    )
    assert proc.stdout.strip() == "[]"


def test_one_packet_run_loads_only_the_core_kernels(one_packet: Path) -> None:
    warm = run_cli(["--read-pcap", str(one_packet), "--quiet"], timeout=COMPILE_TIMEOUT_S)
    assert warm.code == 0, warm.stderr  # the cache is warm from here on
    report = _report("--read-pcap", str(one_packet))
    assert report["code"] == 0
    assert set(report["kernels"]) == CORE_KERNEL_MODULES  # type: ignore[arg-type]
    # cached kernels were loaded lean: numba's lowering registries were never imported
    assert report["registries"] is False


def test_anomalies_load_the_anomaly_kernels(one_packet: Path) -> None:
    """The other side of the previous test: a run that needs a group imports it."""
    args = ["--read-pcap", str(one_packet), "--quiet", "--anomalies"]
    warm = run_cli(args, timeout=COMPILE_TIMEOUT_S)
    assert warm.code == 0, warm.stderr  # the cache is warm from here on
    report = _report(*args)
    assert report["code"] == 0
    assert "netscope.kernels.anomaly" in report["kernels"]  # type: ignore[operator]
    assert report["registries"] is False


def test_entry_points_use_the_lean_cache() -> None:
    for dispatcher in (
        decode_kernels.decode_batch,
        records.scan_pcap,
        flowtable.observe,
        flowtable.select_top,  # a runtime_kernel (allocates)
    ):
        assert isinstance(dispatcher._cache, _jit.LeanLoadCache)


def test_lean_is_a_no_op_on_plain_functions() -> None:
    """NUMBA_DISABLE_JIT turns kernels into plain functions: nothing to wrap."""

    def plain() -> None:
        pass

    assert _jit._lean(plain) is plain
    assert issubclass(_jit.LeanLoadCache, FunctionCache)


TINY_KERNELS = """
import numpy as np
from netscope.kernels._jit import kernel, runtime_kernel

@kernel
def total(a):
    s = 0
    for x in a:
        s += x
    return s

@runtime_kernel
def doubled_sum(a):
    b = np.empty(a.size, dtype=np.int64)  # numba's runtime allocates
    # (summed by hand: b.sum() would make the cached environment import numba.np.arraymath)
    s = 0
    for i in range(a.size):
        b[i] = 2 * a[i]
        s += b[i]
    return s
"""

CALL_TINY = """
import json, sys
import numpy as np
import tiny_kernels as k
a = np.arange(10, dtype=np.int64)
print(json.dumps({
    "total": int(k.total(a)),
    "doubled": int(k.doubled_sum(a)),
    "hits": sum(k.total.stats.cache_hits.values()) + sum(k.doubled_sum.stats.cache_hits.values()),
    "registries": "numba.np.arraymath" in sys.modules,
}))
"""


def test_cache_miss_compiles_and_hit_loads_lean(tmp_path: Path) -> None:
    """First process: empty cache, numba compiles (and loads its registries to do so).
    Second process: both kernels come from the cache, without the registries, and the
    allocating one still runs (numba's runtime is initialised by the lean load)."""
    (tmp_path / "tiny_kernels.py").write_text(textwrap.dedent(TINY_KERNELS))
    env = {
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), SRC]),
    }
    runs = [json.loads(_python(CALL_TINY, env).stdout.strip().splitlines()[-1]) for _ in range(2)]
    expected = {"total": 45, "doubled": 90}
    assert runs[0] == {**expected, "hits": 0, "registries": True}
    assert runs[1] == {**expected, "hits": 2, "registries": False}

"""File-level fuzzing: whole capture files, mutated, through readers + decode + flow table.

``tests/decode/test_fuzz.py`` mutates single packets; the per-format tests in this folder
mutate one hand-built image each. This one mutates real captures (the corpus, plus two
generated files so it has seeds without it) the way a damaged disk, a cut download or a
buggy writer would: bit flips, "interesting" 32-bit values over length fields, inserted,
deleted and duplicated byte ranges, truncation, and extreme values aimed at the records'
timestamp words (where 64-bit tick counts overflow). Each mutant goes through
``open_capture_file`` (random chunk and batch sizes, so records straddle chunk boundaries),
the decode kernel and the flow table with expiry and eviction on, and the flows are turned
into export records; the only exception allowed is :class:`CaptureError` (not a capture
file). A handful of mutants also go through the real CLI with every export, whose files
must be valid JSON/CSV/JSONL.

Deterministic and time-boxed for CI: the same seed gives the same mutants in the same order,
and the in-process loop stops after ``NETSCOPE_FUZZ_FILES_ITERATIONS`` mutants or
``NETSCOPE_FUZZ_FILES_SECONDS`` seconds, whichever comes first (so a slow machine runs a
prefix of the same sequence, never different cases). A longer run (docs/development.md)
raises both. A failure names the seed file, iteration and mutations, and leaves the mutant
in the test's tmp directory to replay with ``--read-pcap``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netscope.errors import CaptureError
from netscope.sources import open_capture_file
from tests_support import REPO_ROOT

ITERATIONS = int(os.environ.get("NETSCOPE_FUZZ_FILES_ITERATIONS", "3000"))
SECONDS = float(os.environ.get("NETSCOPE_FUZZ_FILES_SECONDS", "40"))
SEED = int(os.environ.get("NETSCOPE_FUZZ_FILES_SEED", "20261204"))
CLI_RUNS = int(os.environ.get("NETSCOPE_FUZZ_FILES_CLI", "4"))
MAX_SEED_BYTES = 256 * 1024  # larger corpus files cost time per mutant and add no new shapes
HANG_GRACE_S = 120.0  # on top of the time box: only a stuck reader gets anywhere near it
CLI_TIMEOUT_S = 120.0

INTERESTING_U32 = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


# ---------------------------------------------------------------- seeds


def _generated_seeds(directory: Path) -> list[Path]:
    """A pcap and a two-interface pcapng made here, so the test has seeds without the corpus."""
    from netscope.gen import pcapfile
    from netscope.gen.traffic import generate

    pcap = directory / "gen.pcap"
    generate(pcap, packets=300, flows=20, seed=7)
    packets = list(pcapfile.iter_pcap(pcap))[:120]
    records = [(i % 2, ts, data, None) for i, (ts, data, _) in enumerate(packets)]
    pcapng = directory / "gen.pcapng"
    pcapfile.write_pcapng(pcapng, interfaces=[(1, 9, 65535), (1, None, 0)], records=records)
    return [pcap, pcapng]


def _seed_files(directory: Path) -> list[Path]:
    from corpus_support import corpus_files

    corpus = [p for p in corpus_files() if p.stat().st_size <= MAX_SEED_BYTES]
    return corpus + _generated_seeds(directory)


# ---------------------------------------------------------------- mutations


@dataclass
class Mutant:
    """One mutated capture and how it was made (for the failure message)."""

    seed_name: str
    iteration: int
    data: bytes
    steps: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.seed_name} #{self.iteration}: " + ", ".join(self.steps)


def _position(rng: random.Random, size: int) -> int:
    """Anywhere, but a third of the time in the first 96 bytes (file and first record
    headers, where a change matters most)."""
    if size <= 1:
        return 0
    if rng.random() < 1 / 3:
        return rng.randrange(min(size, 96))
    return rng.randrange(size)


def timestamp_fields(data: bytes) -> list[tuple[int, str]]:
    """``(offset, byte order)`` of every record's timestamp (pcap: seconds; pcapng EPB/PB: the
    high word). Random edits rarely land exactly there, and that is where 64-bit tick counts
    overflow; the ``ts`` mutation aims at these offsets."""
    fields: list[tuple[int, str]] = []
    if len(data) < 24:
        return fields
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        pos, order = 0, "<"
        while pos + 12 <= len(data):
            if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
                order = ">" if data[pos + 8 : pos + 12] == b"\x1a\x2b\x3c\x4d" else "<"
            btype, blen = struct.unpack_from(order + "II", data, pos)
            if btype in (2, 6) and pos + 20 <= len(data):
                fields.append((pos + 12, order))
            if blen < 12:
                break
            pos += blen
        return fields
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    while pos + 16 <= len(data):
        fields.append((pos, order))
        pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]
    return fields


def mutate(
    seed_name: str,
    original: bytes,
    rng: random.Random,
    iteration: int,
    ts_fields: list[tuple[int, str]] | None = None,
) -> Mutant:
    """1-6 random edits of ``original``; the byte string changes for sure only if not empty."""
    data = bytearray(original)
    m = Mutant(seed_name, iteration, b"")
    kinds = ("flip", "byte", "u32", "insert", "delete", "duplicate", "truncate", "ts")
    for _ in range(rng.randint(1, 6)):
        kind = rng.choice(kinds)
        n = len(data)
        pos = _position(rng, n)
        if kind == "ts" and ts_fields:
            at, order = rng.choice(ts_fields)
            if at + 4 <= n:
                value = rng.choice(INTERESTING_U32)
                data[at : at + 4] = struct.pack(order + "I", value)
                m.steps.append(f"timestamp word {value:#x} at {at}")
        elif kind == "flip" and n:
            bit = rng.randrange(8)
            data[pos] ^= 1 << bit
            m.steps.append(f"flip bit {bit} at {pos}")
        elif kind == "byte" and n:
            data[pos] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
            m.steps.append(f"byte {data[pos]:#x} at {pos}")
        elif kind == "u32" and n >= 4:
            pos = min(pos, n - 4) & ~3 if rng.random() < 0.7 else min(pos, n - 4)
            value = rng.choice(INTERESTING_U32)
            data[pos : pos + 4] = value.to_bytes(4, rng.choice(("little", "big")))
            m.steps.append(f"u32 {value:#x} at {pos}")
        elif kind == "insert":
            blob = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
            data[pos:pos] = blob
            m.steps.append(f"insert {len(blob)} at {pos}")
        elif kind == "delete" and n:
            length = rng.randint(1, min(64, n - pos))
            del data[pos : pos + length]
            m.steps.append(f"delete {length} at {pos}")
        elif kind == "duplicate" and n:
            length = rng.randint(1, min(512, n - pos))
            at = rng.randrange(n + 1)
            data[at:at] = data[pos : pos + length]
            m.steps.append(f"duplicate {pos}+{length} to {at}")
        elif kind == "truncate" and n:
            del data[pos:]
            m.steps.append(f"truncate at {pos}")
    m.data = bytes(data)
    return m


def mutants(seeds: list[Path], seed: int) -> Iterator[Mutant]:
    """The endless, deterministic stream of mutants (seed files round-robin)."""
    rng = random.Random(seed)
    images = [(p.name, p.read_bytes()) for p in seeds]
    fields = [timestamp_fields(data) for _, data in images]
    iteration = 0
    while True:
        which = iteration % len(images)
        name, original = images[which]
        yield mutate(name, original, rng, iteration, fields[which])
        iteration += 1


# ---------------------------------------------------------------- in-process run


def _strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity (Python writes them; they are not JSON)."""

    def reject(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=reject)


def analyse(path: Path, rng: random.Random) -> int:
    """Read + decode + flow table + export records; returns packets read (-1: not a capture)."""
    from netscope.flows.records import records_from_rows
    from netscope.flows.table import FlowOptions
    from netscope.pipeline.inline import InlineProcessor

    chunk_bytes = rng.choice((64, 4096, 1 << 16, 16 << 20))
    batch_packets = rng.choice((1, 7, 256, 32768))
    options = FlowOptions(
        max_flows=rng.choice((0, 4, 1000)),
        timeout_secs=rng.choice((0.0, 0.5, 60.0)),
        keep_expired=True,
    )
    try:
        source = open_capture_file(path, chunk_bytes=chunk_bytes, batch_packets=batch_packets)
    except CaptureError as exc:
        assert "\n" not in exc.one_line()
        return -1
    processor = InlineProcessor(options)
    expired: list[Any] = []
    processor.flows.on_expired = lambda batch: expired.extend(
        records_from_rows(batch.keys, batch.i64, batch.f64, batch.u8)
    )
    packets = 0
    try:
        for batch in source.batches():
            k = batch.count
            assert k > 0
            assert int((batch.offsets[:k] + batch.caplens[:k]).max()) <= batch.buf.shape[0]
            assert (batch.caplens[:k] >= 0).all() and (batch.ts_ns[:k] >= 0).all()
            processor.feed(batch)
            packets += k
    finally:
        source.close()
    table = processor.flows
    records = records_from_rows(
        table.keys, table.i64, table.f64 if table.deep else None, table.u8, table.live_rows()
    )
    assert processor.analyzer.counters.packets == packets == source.report.packets_read
    assert packets <= path.stat().st_size // 16
    text = json.dumps([r.to_dict() for r in records + expired])
    _strict_json(text)
    report = source.report
    assert report.warning is None or "\n" not in report.warning
    return packets


@dataclass
class _Progress:
    current: Mutant | None = None
    done: int = 0
    captures: int = 0
    packets: int = 0
    error: BaseException | None = None
    failed: Mutant | None = None


@pytest.mark.slow
def test_mutated_capture_files(tmp_path: Path, warm_kernels: None) -> None:
    """No exception but CaptureError, no hang, sane batches and valid export records."""
    seeds = _seed_files(tmp_path)
    progress = _Progress()
    target = tmp_path / "mutant.bin"
    run_rng = random.Random(SEED + 1)  # chunk/batch/flow options, independent of mutations

    def loop() -> None:
        deadline = time.monotonic() + SECONDS
        for mutant in mutants(seeds, SEED):
            if progress.done >= ITERATIONS or time.monotonic() > deadline:
                return
            progress.current = mutant
            target.write_bytes(mutant.data)
            try:
                packets = analyse(target, run_rng)
            except BaseException as exc:  # noqa: BLE001 - reported with the mutant below
                progress.error, progress.failed = exc, mutant
                return
            progress.done += 1
            if packets >= 0:
                progress.captures += 1
                progress.packets += packets

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    worker.join(SECONDS + HANG_GRACE_S)
    if worker.is_alive():
        stuck = progress.current.describe() if progress.current else "?"
        pytest.fail(f"no progress for {HANG_GRACE_S:.0f} s on {stuck} (mutant: {target})")
    if progress.error is not None:
        assert progress.failed is not None
        replay = tmp_path / f"failing-{progress.failed.iteration}.bin"
        replay.write_bytes(progress.failed.data)
        raise AssertionError(
            f"{progress.failed.describe()} -> {progress.error!r} (replay: {replay})"
        ) from progress.error
    print(
        f"fuzz: {progress.done} mutants of {len(seeds)} seeds, {progress.captures} readable, "
        f"{progress.packets} packets (seed {SEED})"
    )
    assert progress.done > 0
    assert progress.captures > 0  # mutations left most files readable: the loop tested depth


# ---------------------------------------------------------------- through the CLI


def _cli(args: list[str], stdin_data: bytes | None = None) -> tuple[int, str]:
    """Exit code and stderr of ``python -m netscope ARGS`` (stdin: the bytes, or nothing)."""
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run(
        [sys.executable, "-m", "netscope", *args],
        input=stdin_data if stdin_data is not None else b"",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=CLI_TIMEOUT_S,
        env=env,
        cwd=REPO_ROOT,
    )
    return proc.returncode, proc.stderr.decode("utf-8", errors="replace")


def _check_exports(out: Path) -> None:
    flows = _strict_json((out / "flows.json").read_text())
    assert isinstance(flows, list)
    with open(out / "flows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(flows)
    for name in ("expired.jsonl", "alerts.jsonl"):
        path = out / name
        if path.exists():
            for line in path.read_text().splitlines():
                assert isinstance(_strict_json(line), dict)
    for flow in flows:
        for key in ("first_seen", "last_seen"):
            assert math.isfinite(flow[key]) and flow[key] >= 0


@pytest.mark.slow
def test_mutated_capture_files_through_the_cli(tmp_path: Path) -> None:
    """A few mutants as a user meets them: every export on, anomalies and expiry on, one per
    CLI_RUNS through standard input and one with per-packet output (the Python decoders)."""
    seeds = _seed_files(tmp_path)
    stream = mutants(seeds, SEED + 2)
    for run in range(CLI_RUNS):
        mutant = next(stream)
        out = tmp_path / f"run{run}"
        out.mkdir()
        capture = out / "mutant.bin"
        capture.write_bytes(mutant.data)
        use_stdin = run % 2 == 1
        args = ["--read-pcap", "-" if use_stdin else str(capture)]
        args += [] if run == 2 else ["--quiet"]
        args += ["--export-json", str(out / "flows.json"), "--export-csv", str(out / "flows.csv")]
        args += ["--expired-flows-jsonl", str(out / "expired.jsonl"), "--flow-timeout-s", "1"]
        args += ["--max-flows", "8", "--anomalies", "--alerts-jsonl", str(out / "alerts.jsonl")]
        code, err = _cli(args, mutant.data if use_stdin else None)
        where = f"{mutant.describe()} (replay: {capture})"
        assert "Traceback" not in err, f"{where}\n{err}"
        assert code in (0, 1), f"{where}: exit {code}\n{err}"
        if code == 1:
            assert err.strip().splitlines()[-1].startswith("error: "), f"{where}\n{err}"
            continue
        _check_exports(out)


def test_mutator_is_deterministic(tmp_path: Path) -> None:
    """Same seed, same mutants: a CI failure replays locally from the seed alone."""
    seed_file = tmp_path / "s.bin"
    seed_file.write_bytes(bytes(range(256)) * 8)
    first = [m.data for _, m in zip(range(30), mutants([seed_file], 5), strict=False)]
    again = [m.data for _, m in zip(range(30), mutants([seed_file], 5), strict=False)]
    assert first == again
    assert len(set(first)) > 20


def test_analyse_rejects_non_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00" * 40)
    assert analyse(path, random.Random(0)) == -1

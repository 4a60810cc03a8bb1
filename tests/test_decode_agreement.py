"""The compiled decode kernel and the readable decoders agree on every shared field.

They are two implementations of one set of rules (docs/protocols.md); the kernel feeds
flows and stats, the readable layer feeds what users see. Any disagreement would show
a user something the engine did not count. Checked on every corpus packet, on random
bytes for every link type, and on mutated (bit-flipped, truncated) real packets.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netscope import engine
from netscope.batch import PacketBatch, batch_from_packets
from netscope.columns import COLUMN_SPEC, DecodedColumns
from netscope.constants import ERROR_NAMES, SUPPORTED_LINKTYPES
from netscope.decode import decode_packet
from netscope.errors import CaptureError
from netscope.sources import open_capture_file

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = Path(
    os.environ.get("NETSCOPE_CORPUS_DIR", str(REPO_ROOT.parent / "shared" / "corpus"))
)


def corpus_files() -> list[Path]:
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p for p in CORPUS_DIR.iterdir() if p.suffix in (".pcap", ".pcapng"))


LINKTYPES = sorted(SUPPORTED_LINKTYPES) + [127, 239, 9999]


def _kernel_rows(batch: PacketBatch) -> DecodedColumns:
    cols = DecodedColumns.allocate(max(batch.count, 1))
    engine.decode(batch, cols)
    return cols


def _assert_agree(data: bytes, linktype: int, kernel: dict[str, int], where: str) -> None:
    readable = decode_packet(memoryview(data), linktype).columns()
    for name, _, _ in COLUMN_SPEC:
        assert readable[name] == kernel[name], (
            f"{where}: column {name}: kernel {kernel[name]} != readable {readable[name]} "
            f"(linktype {linktype}, {len(data)} bytes: {data[:64].hex()})"
        )
    assert kernel["err"] in ERROR_NAMES


def test_every_corpus_packet_agrees(corpus_capture):
    capture = corpus_capture
    try:
        source = open_capture_file(capture)
    except CaptureError as exc:
        # only the reader's own verdict on a damaged file (tests/sources pins which ones);
        # anything else is a bug and fails here
        pytest.skip(f"the reader rejects this file: {exc}")
    for batch in source.batches():
        cols = _kernel_rows(batch)
        for i in range(batch.count):
            data = bytes(batch.packet_bytes(i))
            _assert_agree(
                data,
                int(batch.linktypes[i]),
                cols.row(i),
                f"{capture.name} #{batch.first_index + i}",
            )


def _corpus_packets(limit_per_file: int = 40) -> list[tuple[int, bytes]]:
    packets: list[tuple[int, bytes]] = []
    for capture in corpus_files():
        try:
            source = open_capture_file(capture)
        except CaptureError:
            continue
        for batch in source.batches():
            step = max(1, batch.count // limit_per_file)
            for i in range(0, batch.count, step):
                packets.append((int(batch.linktypes[i]), bytes(batch.packet_bytes(i))))
            break
    return packets


SEEDS = _corpus_packets()


def _check_many(items: list[tuple[int, bytes]]) -> None:
    for linktype in {lt for lt, _ in items}:
        same = [d for lt, d in items if lt == linktype]
        batch = batch_from_packets(same, linktype=linktype)
        cols = _kernel_rows(batch)
        for i, data in enumerate(same):
            _assert_agree(data, linktype, cols.row(i), "fuzz")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(LINKTYPES), st.binary(min_size=0, max_size=160))
def test_random_bytes_agree_and_never_raise(linktype, data):
    _check_many([(linktype, data)])


@pytest.mark.skipif(not SEEDS, reason="corpus not available")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=max(len(SEEDS) - 1, 0)),
    st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), max_size=6),
    st.integers(min_value=0, max_value=4096),
)
def test_mutated_real_packets_agree(index, flips, cut):
    linktype, data = SEEDS[index]
    mutated = bytearray(data)
    for pos, value in flips:
        if mutated:
            mutated[pos % len(mutated)] = value
    _check_many(
        [(linktype, bytes(mutated)), (linktype, bytes(mutated[: cut % (len(mutated) + 1)]))]
    )


def test_kernel_never_reads_past_caplen():
    """A packet cut short inside a buffer full of valid-looking bytes decodes as cut."""
    if not SEEDS:
        pytest.skip("corpus not available")
    linktype, data = next((lt, d) for lt, d in SEEDS if lt == 1 and len(d) > 60)
    for cut in range(len(data)):
        # the rest of the buffer holds the real bytes: a read past caplen would see them
        batch = batch_from_packets([data], linktype=linktype)
        batch.caplens[0] = cut
        cols = _kernel_rows(batch)
        _assert_agree(data[:cut], linktype, cols.row(0), f"cut at {cut}")

"""The one flow schema: every export's field list and the Arrow table built from it.

Each ``Field`` says name, Arrow type, unit, nullability and what it means; docs/exports.md
documents the same list. The JSON/CSV exports take their field order from ``TEXT_FIELDS``
(``records.FLOW_FIELDS`` folds the endpoint columns back into objects), Arrow and Parquet
from ``FIELDS``. ``flow_table`` builds the Arrow columns straight from the flow table's
numpy matrices: column slices, casts, two compiled loops (address text, Community ID)
and no per-flow Python.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from netscope.flows import layout as L

PROTO_NAMES = {6: "tcp", 17: "udp"}
# The original NetScope's words for the side that opened a TCP flow (its FlowDirection):
# every export, the JSONL sink and the library API say "a_to_b" / "b_to_a".
CLIENT_NAMES = {L.CLIENT_A: "a_to_b", L.CLIENT_B: "b_to_a"}
END_REASON_ACTIVE = 0
END_REASON_NAMES = ("active", "timeout", "evicted")  # index = layout.REASON_* (0 = still open)


@dataclass(frozen=True)
class Field:
    name: str
    arrow: str  # Arrow type as written in docs/exports.md
    unit: str
    nullable: bool
    doc: str
    text: bool = True  # also a JSON/CSV field (False: Arrow/Parquet only)


FIELDS: tuple[Field, ...] = (
    Field("protocol", "dictionary<int8, string>", "", False, '"tcp" or "udp"'),
    Field(
        "ip_version",
        "uint8",
        "",
        False,
        "4 or 6: the address family without parsing the text",
        text=False,
    ),
    Field("endpoint_a_ip", "string", "", False, "canonical endpoint A (SPEC §6): address text"),
    Field("endpoint_a_port", "uint16", "", False, "endpoint A's port"),
    Field("endpoint_b_ip", "string", "", False, "endpoint B: address text"),
    Field("endpoint_b_port", "uint16", "", False, "endpoint B's port"),
    Field("first_seen", "timestamp[ns, tz=UTC]", "ns", False, "capture time of the first packet"),
    Field("last_seen", "timestamp[ns, tz=UTC]", "ns", False, "capture time of the last packet"),
    Field("duration_secs", "float64", "s", False, "last_seen - first_seen"),
    Field("packets_a_to_b", "uint64", "packets", False, "packets sent by A"),
    Field("packets_b_to_a", "uint64", "packets", False, "packets sent by B"),
    Field("bytes_a_to_b", "uint64", "bytes", False, "wire bytes sent by A"),
    Field("bytes_b_to_a", "uint64", "bytes", False, "wire bytes sent by B"),
    Field("packets_total", "uint64", "packets", False, "both directions"),
    Field("bytes_total", "uint64", "bytes", False, "both directions"),
    Field("avg_bps", "float64", "bit/s", False, "bytes_total * 8 / duration (0 if duration 0)"),
    Field(
        "tcp_state",
        "dictionary<int8, string>",
        "",
        True,
        "TCP state (syn_sent ... reset); null for UDP",
    ),
    Field("client", "dictionary<int8, string>", "", True, "which endpoint opened the TCP flow"),
    Field("retransmissions", "uint64", "segments", False, "TCP retransmissions (0 in scale mode)"),
    Field("out_of_order", "uint64", "segments", False, "TCP out-of-order segments"),
    Field("rtt_last_ms", "float64", "ms", True, "last RTT sample; null without samples"),
    Field("rtt_min_ms", "float64", "ms", True, "smallest RTT sample"),
    Field("rtt_ewma_ms", "float64", "ms", True, "smoothed RTT (alpha 1/8)"),
    Field("rtt_samples", "uint64", "samples", False, "RTT samples; 0 for UDP / scale mode"),
    Field("community_id", "string", "", False, "Community ID v1 (seed: community_id_seed)"),
    Field(
        "end_reason",
        "dictionary<int8, string>",
        "",
        False,
        '"active" (open at the end), "timeout" or "evicted"',
        text=False,
    ),
)

TEXT_FIELDS = tuple(f.name for f in FIELDS if f.text)
COLUMN_NAMES = tuple(f.name for f in FIELDS)


def arrow_schema() -> Any:
    """The ``pyarrow.Schema`` of ``FIELDS`` (docs on each field's metadata)."""
    import pyarrow as pa

    types: dict[str, Any] = {
        "string": pa.string(),
        "uint8": pa.uint8(),
        "uint16": pa.uint16(),
        "uint64": pa.uint64(),
        "float64": pa.float64(),
        "timestamp[ns, tz=UTC]": pa.timestamp("ns", tz="UTC"),
        "dictionary<int8, string>": pa.dictionary(pa.int8(), pa.string()),
    }
    return pa.schema(
        [
            pa.field(
                f.name,
                types[f.arrow],
                nullable=f.nullable,
                metadata={"doc": f.doc, "unit": f.unit} if f.unit else {"doc": f.doc},
            )
            for f in FIELDS
        ],
        metadata={"netscope.schema": "flows/1"},
    )


# Arrays are built with ``Array.from_buffers`` over the numpy buffers: no per-value work,
# and unlike ``pa.array(ndarray)`` it does not import pandas (0.3 s, paid by every
# --export-parquet run otherwise: pyarrow checks each argument for pandas types).
_PA_TYPES = {
    np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.int64): "int64",
    np.dtype(np.uint64): "uint64",
    np.dtype(np.float64): "float64",
}


def column(values: np.ndarray, arrow_type: Any = None, null: np.ndarray | None = None) -> Any:
    """A primitive Arrow array sharing ``values``' buffer; ``null`` marks missing rows."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if arrow_type is None:
        arrow_type = getattr(pa, _PA_TYPES[values.dtype])()
    n = int(values.shape[0])
    validity = None
    nulls = 0
    if null is not None:
        nulls = int(np.count_nonzero(null))
        if nulls:
            validity = pa.py_buffer(np.packbits(~null, bitorder="little"))
    return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(values)], null_count=nulls)


def string_column(names: tuple[str, ...]) -> Any:
    """A small ``pyarrow.string()`` array (dictionary values)."""
    import pyarrow as pa

    encoded = [name.encode("utf-8") for name in names]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets), data])


def _dictionary(indices: np.ndarray, names: tuple[str, ...], mask: np.ndarray | None) -> Any:
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(
        column(indices.astype(np.int8), null=mask), string_column(names)
    )


# From this many rows on, the Community ID hash (the costliest column, a GIL-free compiled
# loop) runs on a second thread while this one builds the other columns.
PARALLEL_ROWS = 50_000


class _Background:
    """``fn(*args)`` on its own thread (or inline when not ``threaded``)."""

    def __init__(self, fn: Any, *args: Any, threaded: bool) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
            self._thread.start()
        else:
            self._run(fn, args)

    def _run(self, fn: Any, args: tuple[Any, ...]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            self._error = exc

    def result(self) -> Any:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def flow_table(
    keys: np.ndarray,
    i64: np.ndarray,
    f64: np.ndarray | None,
    u8: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    reason: np.ndarray | None = None,
    seed: int = 0,
) -> Any:
    """A ``pyarrow.Table`` of ``rows`` (all if None) in ``FIELDS`` order.

    ``f64`` None means scale mode (RTT null, TCP counters 0), as for ``records_from_rows``.
    ``reason`` is the expiry reason per row (``layout.REASON_*``); None means still active.
    """
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Arrow output needs pyarrow: pip install 'netscope[parquet]'") from None

    from netscope.flows.addresses import address_text
    from netscope.flows.community_id import community_ids, to_arrow_array

    # Column-major copies first: the table's rows are 40-104 bytes wide, so gathering each
    # column from them would stream the whole matrix once per column; one transpose per
    # matrix makes every column a contiguous row that Arrow shares without a copy.
    sel = slice(None) if rows is None else rows
    k = np.ascontiguousarray(keys.T[:, sel])
    c = np.ascontiguousarray(i64.T[:, sel])
    b = np.ascontiguousarray(u8.T[:, sel])
    r = np.ascontiguousarray(f64.T[:, sel]) if f64 is not None else None
    if reason is not None:
        reason = reason[sel]
    n = k.shape[1]
    meta = k[L.K_META]
    version = (meta & np.uint64(0xFF)).astype(np.uint8)
    proto = ((meta >> np.uint64(8)) & np.uint64(0xFF)).astype(np.uint8)
    a_port = ((meta >> np.uint64(48)) & np.uint64(0xFFFF)).astype(np.uint16)
    b_port = ((meta >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.uint16)
    ids = _Background(
        community_ids,
        version,
        k[L.K_A_HI],
        k[L.K_A_LO],
        k[L.K_B_HI],
        k[L.K_B_LO],
        proto,
        a_port,
        b_port,
        seed,
        threaded=n >= PARALLEL_ROWS,
    )
    is_tcp = proto == 6
    not_tcp = ~is_tcp
    deep = c.shape[0] > L.I_RTT_SAMPLES

    protos = np.unique(proto)
    proto_names = tuple(PROTO_NAMES.get(int(p), str(int(p))) for p in protos)
    proto_idx = np.searchsorted(protos, proto)

    first = c[L.I_FIRST_NS]
    last = c[L.I_LAST_NS]
    dur_ns = np.maximum(last - first, 0)
    duration = dur_ns / 1e9
    counters = c.view(np.uint64)  # never negative: the same bits as uint64
    pkts_ab = counters[L.I_PKTS_AB]
    pkts_ba = counters[L.I_PKTS_BA]
    bytes_ab = counters[L.I_BYTES_AB]
    bytes_ba = counters[L.I_BYTES_BA]
    bytes_total = bytes_ab + bytes_ba
    with np.errstate(divide="ignore", invalid="ignore"):
        avg_bps = np.where(dur_ns > 0, bytes_total * 8.0 / np.where(dur_ns > 0, duration, 1.0), 0.0)

    client = b[L.B_CLIENT]
    client_idx = np.where(client == L.CLIENT_B, 1, 0)
    client_null = not_tcp | ((client != L.CLIENT_A) & (client != L.CLIENT_B))

    zeros = np.zeros(n, dtype=np.uint64)
    if deep:
        retrans = counters[L.I_RETRANS]
        ooo = counters[L.I_OOO]
        samples = c[L.I_RTT_SAMPLES]
    else:
        retrans = ooo = zeros
        samples = np.zeros(n, dtype=np.int64)
    if r is not None and deep:
        no_rtt = samples <= 0
        rtt = [r[L.F_RTT_LAST], r[L.F_RTT_MIN], r[L.F_RTT_EWMA]]
    else:
        no_rtt = np.ones(n, dtype=bool)
        rtt = [np.zeros(n)] * 3
    # rtt_samples is a count, as in the JSON export and the original: 0, never null
    samples = np.where(not_tcp, 0, samples)

    reasons = np.zeros(n, dtype=np.int8) if reason is None else reason.astype(np.int8)
    a_text = address_text(version, k[L.K_A_HI], k[L.K_A_LO])
    b_text = address_text(version, k[L.K_B_HI], k[L.K_B_LO])
    ts = pa.timestamp("ns", tz="UTC")
    arrays = [
        _dictionary(proto_idx, proto_names, None),
        column(version),
        a_text,
        column(a_port),
        b_text,
        column(b_port),
        column(first, ts),
        column(last, ts),
        column(duration),
        column(pkts_ab),
        column(pkts_ba),
        column(bytes_ab),
        column(bytes_ba),
        column(pkts_ab + pkts_ba),
        column(bytes_total),
        column(avg_bps),
        _dictionary(b[L.B_STATE], L.TCP_STATE_NAMES, not_tcp),
        _dictionary(client_idx, (CLIENT_NAMES[L.CLIENT_A], CLIENT_NAMES[L.CLIENT_B]), client_null),
        column(retrans),
        column(ooo),
        column(rtt[0], null=no_rtt),
        column(rtt[1], null=no_rtt),
        column(rtt[2], null=no_rtt),
        column(samples.astype(np.int64).view(np.uint64)),
        to_arrow_array(ids.result()),
        _dictionary(reasons, END_REASON_NAMES, None),
    ]
    return pa.Table.from_arrays(arrays, schema=arrow_schema())


def empty_table() -> Any:
    """A zero-row table with the flow schema."""
    return arrow_schema().empty_table()


@dataclass
class FlowRows:
    """A snapshot of some flow-table rows (copies), the input of Arrow and record views."""

    keys: np.ndarray
    i64: np.ndarray
    f64: np.ndarray | None  # None in scale mode
    u8: np.ndarray
    reason: np.ndarray | None = None  # layout.REASON_* per row; None = still active

    @classmethod
    def take(
        cls,
        keys: np.ndarray,
        i64: np.ndarray,
        f64: np.ndarray | None,
        u8: np.ndarray,
        rows: np.ndarray | None = None,
        reason: np.ndarray | None = None,
    ) -> FlowRows:
        if rows is None:
            return cls(
                keys.copy(),
                i64.copy(),
                None if f64 is None else f64.copy(),
                u8.copy(),
                None if reason is None else reason.copy(),
            )
        return cls(
            keys[rows],
            i64[rows],
            None if f64 is None else f64[rows],
            u8[rows],
            None if reason is None else reason[rows],
        )

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def export_order(self) -> np.ndarray:
        """Largest bytes_total first; ties by protocol and endpoints (numeric order)."""
        k = self.keys
        total = self.i64[:, L.I_BYTES_AB] + self.i64[:, L.I_BYTES_BA]
        return np.lexsort(
            (
                k[:, L.K_B_LO],
                k[:, L.K_B_HI],
                k[:, L.K_A_LO],
                k[:, L.K_A_HI],
                k[:, L.K_META],
                -total,
            )
        )

    def sorted(self) -> FlowRows:
        return FlowRows.take(
            self.keys, self.i64, self.f64, self.u8, self.export_order(), self.reason
        )

    def to_arrow(self, seed: int = 0) -> Any:
        return flow_table(self.keys, self.i64, self.f64, self.u8, reason=self.reason, seed=seed)

    @staticmethod
    def concat(parts: list[FlowRows]) -> FlowRows:
        if len(parts) == 1:
            return parts[0]
        f64s = [p.f64 for p in parts]
        return FlowRows(
            np.concatenate([p.keys for p in parts]),
            np.concatenate([p.i64 for p in parts]),
            None if any(f is None for f in f64s) else np.concatenate(f64s),  # type: ignore[arg-type]
            np.concatenate([p.u8 for p in parts]),
            np.concatenate(
                [
                    p.reason if p.reason is not None else np.zeros(len(p), dtype=np.int8)
                    for p in parts
                ]
            ),
        )

"""Zeek-compatible conn.log writers: Zeek's TSV format and its JSON (one object a line).

Connections arrive as they finish (``ZeekConnTracker.on_finished``), so the log is
streamed: the TSV header is written at open, each finished batch is formatted from its
columns and written as whole lines, and ``close`` writes ``#close``. An interrupted run
(SIGINT/SIGTERM) still reaches ``close`` through the runner, after the tracker flushed
the connections still open, so the file always ends complete.

Column conversion is vectorised with numpy (orientation, ports, byte counts, times as
integer microseconds); only the final join into text is per record.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import IO, Any

import numpy as np

from netscope.errors import OutputError
from netscope.flows import layout as L
from netscope.flows.zeek import ZeekConnBatch
from netscope.kernels import zeekconn as K
from netscope.sinks.targets import open_in_place_text

FIELDS: tuple[tuple[str, str], ...] = (
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("ip_proto", "count"),
    ("community_id", "string"),
)
UNSET = "-"
_LINE_FORMAT = "\t".join(["%s"] * len(FIELDS))  # one C-level format per line
_MAYBE_UNSET = frozenset({"duration", "orig_bytes", "resp_bytes", "history"})
_BOOLS = frozenset({"local_orig", "local_resp"})  # Zeek's TSV writes T / F
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


_B62_BYTES = np.frombuffer(_B62.encode("ascii"), dtype=np.uint8)


def _base62(values: np.ndarray, digits: int) -> np.ndarray:
    """uint8[n, digits] base-62 characters of ``values`` (uint64), least significant first."""
    out = np.empty((values.shape[0], digits), dtype=np.uint8)
    v = values.copy()
    for k in range(digits):
        out[:, k] = _B62_BYTES[(v % np.uint64(62)).astype(np.intp)]
        v //= np.uint64(62)
    return out


def _uids(keys: np.ndarray, first_ns: np.ndarray) -> list[str]:
    """Zeek-style uids (``C`` + 17 base-62 characters, as Zeek's): a hash of the 5-tuple
    and start time, so a rerun over the same input gives the same uids (Zeek's are random
    unless seeded). Vectorised: 11 characters from one 64-bit hash, 6 from a second."""
    h = first_ns.astype(np.uint64)
    for c in range(keys.shape[1]):
        h = _mix(h ^ keys[:, c])
    lo = _mix(h ^ np.uint64(0x9E3779B97F4A7C15))
    n = h.shape[0]
    chars = np.empty((n, 18), dtype=np.uint8)
    chars[:, 0] = ord("C")
    chars[:, 1:12] = _base62(h, 11)
    chars[:, 12:] = _base62(lo, 6)
    packed = chars.view("S18").reshape(n)
    return [bytes(u).decode("ascii") for u in packed]


_ADDR_CACHE: dict[tuple[int, int, int], str] = {}
_ADDR_CACHE_MAX = 1 << 16


def _address(hi: int, lo: int, version: int) -> str:
    if version == 4:
        return socket.inet_ntoa((lo & 0xFFFFFFFF).to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, ((hi << 64) | lo).to_bytes(16, "big"))


def _addresses(hi: np.ndarray, lo: np.ndarray, version: np.ndarray) -> list[str]:
    """Text addresses (inet_ntop: RFC 5952 for IPv6, as Zeek prints them), memoised: a
    capture's connections reuse few hosts (the cache is bounded and simply reset)."""
    cache = _ADDR_CACHE
    if len(cache) > _ADDR_CACHE_MAX:
        cache.clear()
    out = []
    for key in zip(hi.tolist(), lo.tolist(), version.tolist(), strict=True):
        text = cache.get(key)
        if text is None:
            text = cache[key] = _address(*key)
        out.append(text)
    return out


def _seconds(us: np.ndarray) -> list[str]:
    """Integer microseconds → Zeek's ``%.6f`` seconds."""
    return [f"{v // 1_000_000}.{v % 1_000_000:06d}" for v in us.tolist()]


# Zeek's Site::private_address_space, which Zeek (>= 6, private_address_space_is_local = T)
# treats as local when Site::local_nets is not set: (version, hi mask, hi value, lo mask, lo value)
_PRIVATE_NETS: tuple[tuple[int, int, int, int, int], ...] = (
    (4, 0, 0, 0xFF000000, 0x0A000000),  # 10.0.0.0/8
    (4, 0, 0, 0xFFFF0000, 0xC0A80000),  # 192.168.0.0/16
    (4, 0, 0, 0xFFF00000, 0xAC100000),  # 172.16.0.0/12
    (4, 0, 0, 0xFFC00000, 0x64400000),  # 100.64.0.0/10
    (4, 0, 0, 0xFF000000, 0x7F000000),  # 127.0.0.0/8
    (6, 0xFFC0000000000000, 0xFE80000000000000, 0, 0),  # fe80::/10
    (6, 0xFFFFFFFFFFFFFFFF, 0, 0xFFFFFFFFFFFFFFFF, 1),  # ::1/128
)


def _is_local(hi: np.ndarray, lo: np.ndarray, version: np.ndarray) -> np.ndarray:
    """Whether each address is in Zeek's private address space (vectorised)."""
    local = np.zeros(hi.shape[0], dtype=bool)
    for ver, hmask, hval, lmask, lval in _PRIVATE_NETS:
        local |= (
            (version == ver)
            & ((hi & np.uint64(hmask)) == np.uint64(hval))
            & ((lo & np.uint64(lmask)) == np.uint64(lval))
        )
    return local


def conn_columns(batch: ZeekConnBatch) -> dict[str, Any]:
    """The conn.log fields of a finished batch as Python lists (None = unset)."""
    from netscope.flows.community_id import community_ids

    n = batch.count
    keys = batch.keys[:n]
    zi = batch.zi[:n]
    zb = batch.zb[:n]
    x = batch.x[:n]
    o = zb[:, K.ZB_ORIG].astype(np.int64)  # 0: endpoint A is the originator
    r = 1 - o
    rows = np.arange(n)
    meta = keys[:, L.K_META]
    version = (meta & np.uint64(0xFF)).astype(np.int64)
    proto = ((meta >> np.uint64(8)) & np.uint64(0xFF)).astype(np.int64)
    ports = np.stack(
        [
            ((meta >> np.uint64(48)) & np.uint64(0xFFFF)).astype(np.int64),
            ((meta >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.int64),
        ],
        axis=1,
    )
    his = np.stack([keys[:, L.K_A_HI], keys[:, L.K_B_HI]], axis=1)
    los = np.stack([keys[:, L.K_A_LO], keys[:, L.K_B_LO]], axis=1)
    orig_hi, orig_lo = his[rows, o], los[rows, o]
    resp_hi, resp_lo = his[rows, r], los[rows, r]
    orig_p, resp_p = ports[rows, o], ports[rows, r]
    first_us = zi[:, K.Z_FIRST] // 1000
    dur_us = zi[:, K.Z_LAST] // 1000 - first_us
    # Zeek leaves duration and payload sizes unset for a connection with no duration
    has_dur = (dur_us > 0).tolist()
    durations = _seconds(dur_us)
    orig_bytes = x[rows, K.X_BYTES + o].tolist()
    resp_bytes = x[rows, K.X_BYTES + r].tolist()
    cids = community_ids(
        version.astype(np.uint8), orig_hi, orig_lo, resp_hi, resp_lo,
        proto.astype(np.uint8), orig_p, resp_p,
    )  # fmt: skip
    # fixed-width bytes drop their trailing NULs: the stored letters, nothing else
    width = batch.hist.shape[1]
    packed = np.ascontiguousarray(batch.hist[:n]).view(f"S{width}").reshape(n)
    histories = [h.decode("ascii") or None for h in packed.tolist()]
    return {
        "ts": _seconds(first_us),
        "uid": _uids(keys, zi[:, K.Z_FIRST]),
        "id.orig_h": _addresses(orig_hi, orig_lo, version),
        "id.orig_p": orig_p.tolist(),
        "id.resp_h": _addresses(resp_hi, resp_lo, version),
        "id.resp_p": resp_p.tolist(),
        "proto": [PROTO_NAMES.get(p, "unknown_transport") for p in proto.tolist()],
        "duration": [d if ok else None for d, ok in zip(durations, has_dur, strict=True)],
        "orig_bytes": [b if ok else None for b, ok in zip(orig_bytes, has_dur, strict=True)],
        "resp_bytes": [b if ok else None for b, ok in zip(resp_bytes, has_dur, strict=True)],
        "conn_state": [K.CONN_STATES[c] for c in x[:, K.X_STATE].tolist()],
        "local_orig": _is_local(orig_hi, orig_lo, version).tolist(),
        "local_resp": _is_local(resp_hi, resp_lo, version).tolist(),
        "missed_bytes": zi[rows, K.Z_MISSED + o].tolist(),
        "history": histories,
        "orig_pkts": zi[rows, K.Z_PKTS + o].tolist(),
        "orig_ip_bytes": zi[rows, K.Z_IPB + o].tolist(),
        "resp_pkts": zi[rows, K.Z_PKTS + r].tolist(),
        "resp_ip_bytes": zi[rows, K.Z_IPB + r].tolist(),
        "ip_proto": proto.tolist(),
        "community_id": [c.decode("ascii") for c in cids.tolist()],
        "_n": n,
    }


class _LogFile:
    """A text target opened in place (file, device, FIFO or ``-``) with OutputErrors."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.lines = 0
        try:
            self._file: IO[str] = open_in_place_text(self.path)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot open for writing: {exc.strerror}") from None

    def write(self, text: str) -> None:
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed: {exc.strerror}") from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed: {exc.strerror}") from None


def _stamp() -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime())


class ZeekConnTsvWriter(_LogFile):
    """Zeek's ASCII log format: header lines, tab-separated fields, ``#close``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        header = [
            "#separator \\x09",
            "#set_separator\t,",
            "#empty_field\t(empty)",
            f"#unset_field\t{UNSET}",
            "#path\tconn",
            f"#open\t{_stamp()}",
            "#fields\t" + "\t".join(name for name, _ in FIELDS),
            "#types\t" + "\t".join(kind for _, kind in FIELDS),
        ]
        self.write("\n".join(header) + "\n")

    def __call__(self, batch: ZeekConnBatch) -> None:
        cols = conn_columns(batch)
        n = cols.pop("_n")
        unset = [UNSET] * n
        for name in _BOOLS:
            cols[name] = ["T" if v else "F" for v in cols[name]]
        columns = [
            (
                [UNSET if v is None else v for v in cols[name]]
                if name in _MAYBE_UNSET
                else cols[name]
            )
            if name in cols
            else unset
            for name, _ in FIELDS
        ]
        fmt = _LINE_FORMAT
        lines = [fmt % values for values in zip(*columns, strict=True)]
        if lines:
            self.write("\n".join(lines) + "\n")
            self.lines += len(lines)

    def close(self) -> None:
        self.write(f"#close\t{_stamp()}\n")
        super().close()


class ZeekConnJsonWriter(_LogFile):
    """Zeek's JSON logs: one object a line, dotted ``id.*`` keys, unset fields left out."""

    def __call__(self, batch: ZeekConnBatch) -> None:
        cols = conn_columns(batch)
        n = cols.pop("_n")
        names = [name for name, _ in FIELDS if name in cols]
        numeric = {"ts", "duration"}
        out = []
        for k in range(n):
            obj: dict[str, Any] = {}
            for name in names:
                v = cols[name][k]
                if v is None:
                    continue
                obj[name] = float(v) if name in numeric else v
            out.append(json.dumps(obj, separators=(",", ":")))
        if out:
            self.write("\n".join(out) + "\n")
            self.lines += len(out)


class ZeekConnSink:
    """Fans finished connections out to the requested conn.log writers."""

    def __init__(self, tsv: str | None, jsonl: str | None) -> None:
        self.writers: list[ZeekConnTsvWriter | ZeekConnJsonWriter] = []
        if tsv is not None:
            self.writers.append(ZeekConnTsvWriter(tsv))
        if jsonl is not None:
            try:
                self.writers.append(ZeekConnJsonWriter(jsonl))
            except OutputError:
                self.close()
                raise

    def __call__(self, batch: ZeekConnBatch) -> None:
        for writer in self.writers:
            writer(batch)

    def close(self) -> None:
        failure: OutputError | None = None
        for writer in self.writers:
            try:
                writer.close()
            except OutputError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

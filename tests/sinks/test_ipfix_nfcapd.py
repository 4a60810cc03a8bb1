"""IPFIX export read back by a standard collector: nfdump's ``nfcapd`` (Debian ``nfdump``).

NetScope exports corpus captures to an ``nfcapd`` on a loopback port; ``nfdump -R DIR -o json``
reads the flows back. ``nfcapd -R`` repeats every datagram to the test, whose own RFC 7011
parser (tests/sinks/ipfix_support.py) decodes NetScope's messages. Three views must agree per
flow: nfdump's, our messages', and tshark's (packets from the corpus ``*.expected.json``
conversations, as in tests/flows/test_oracle.py; IP bytes, first/last time and TCP flags from
tshark's per-frame fields, i.e. the conversation figures mapped to IP bytes).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from flows.test_oracle import canonical_key, tshark_flows
from tests_support import run_netscope as run_cli

from .ipfix_support import (
    UdpCatcher,
    corpus_file,
    expected,
    nfdump_available,
    nfdump_flags,
    nfdump_ms,
    parse_messages,
    start_nfcapd,
    tshark_frames,
)

pytestmark = pytest.mark.skipif(not nfdump_available(), reason="nfdump (Debian) not installed")

# Files whose tshark conversations need none of test_oracle's mapping rules (no fragments,
# tunnels or undissectable headers): IPv4 TCP+UDP, IPv6 TCP, many small UDP flows.
FILES = ["dpkt-http.pcap", "pcpp-four_ipv6_http_streams.pcap", "pcpp-DnsPackets.pcap"]
PROTO = {6: "tcp", 17: "udp"}

# key -> [pkts a->b, ip bytes a->b, pkts b->a, ip bytes b->a, first ms, last ms, flags a->b,
#         flags b->a]; flags None where a view has none
View = dict[tuple[str, str, int, str, int], list[Any]]


def _add(view: View, key: Any, d: int, pk: int, ob: int, s: int, e: int, fl: Any) -> None:
    row = view.setdefault(key, [0, 0, 0, 0, s, e, 0, 0])
    row[2 * d] += pk
    row[2 * d + 1] += ob
    row[4] = min(row[4], s)
    row[5] = max(row[5], e)
    if fl is None or row[6 + d] is None:
        row[6 + d] = None
    else:
        row[6 + d] |= fl


def view_from_records(records: list[dict[str, Any]]) -> View:
    view: View = {}
    for r in records:
        key, d = canonical_key(PROTO[r["proto"]], r["src"], r["sport"], r["dst"], r["dport"])
        s, e = r["start_ms"], r["end_ms"]
        _add(view, key, d, r["packets"], r["octets"], s, e, r["flags"])
        _add(view, key, 1 - d, r["rpackets"], r["roctets"], s, e, r["rflags"])
    return view


def view_from_nfdump(flows: list[dict[str, Any]]) -> View:
    """nfdump's biflow: in_* forward, out_* reverse; its tcp_flags is the forward union only."""
    view: View = {}
    for f in flows:
        src = f.get("src4_addr") or f["src6_addr"]
        dst = f.get("dst4_addr") or f["dst6_addr"]
        key, d = canonical_key(PROTO[f["proto"]], src, f["src_port"], dst, f["dst_port"])
        s, e = nfdump_ms(f["first"]), nfdump_ms(f["last"])
        _add(view, key, d, f["in_packets"], f["in_bytes"], s, e, nfdump_flags(f["tcp_flags"]))
        _add(view, key, 1 - d, f.get("out_packets", 0), f.get("out_bytes", 0), s, e, None)
    return view


def view_from_tshark(path: Path) -> View:
    view: View = {}
    for fr in tshark_frames(path):
        if fr["tcp.srcport"]:
            proto, sp, dp = "tcp", fr["tcp.srcport"], fr["tcp.dstport"]
        elif fr["udp.srcport"]:
            proto, sp, dp = "udp", fr["udp.srcport"], fr["udp.dstport"]
        else:
            continue
        if fr["ip.src"]:
            src, dst, iplen = fr["ip.src"], fr["ip.dst"], int(fr["ip.len"])
        else:
            src, dst, iplen = fr["ipv6.src"], fr["ipv6.dst"], 40 + int(fr["ipv6.plen"])
        key, d = canonical_key(proto, src, int(sp), dst, int(dp))
        ms = int(fr["frame.time_epoch"].replace(".", "")[:-6] or 0)  # ns digits -> ms
        flags = int(fr["tcp.flags"], 16) & 0xFF if fr["tcp.flags"] else 0
        _add(view, key, d, 1, iplen, ms, ms, flags)
    return view


def export(path: Path, tmp_path: Path, extra: list[str] | None = None) -> tuple[Any, Any, Any]:
    catcher = UdpCatcher()
    nf = start_nfcapd(tmp_path / "nf", repeat_to=catcher.port)
    try:
        result = run_cli(
            ["--read-pcap", str(path), "--quiet", "--export-ipfix", f"127.0.0.1:{nf.port}"]
            + (extra or [])
        )
    finally:
        nf_flows = nf.stop()
    messages = catcher.close()
    return result, nf_flows, parse_messages(messages)


@pytest.fixture
def nfdir(tmp_path: Path) -> Path:
    (tmp_path / "nf").mkdir()
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_corpus_flows_read_back_by_nfdump(name: str, nfdir: Path) -> None:
    path = corpus_file(name)
    result, nf_flows, parsed = export(path, nfdir)
    assert result.code == 0, result.stderr
    ours = view_from_records(parsed.records)
    nf = view_from_nfdump(nf_flows)
    oracle = view_from_tshark(path)
    assert ours, "no records exported"
    assert set(ours) == set(nf) == set(oracle)
    for key, row in ours.items():
        n = nf[key]
        assert row[:6] == n[:6], (key, row, n)  # packets and IP bytes per direction, times
        # nfdump keeps one flags field (the forward direction's): compare that direction's
        fwd = 0 if n[6] is not None else 1
        assert row[6 + fwd] == n[6 + fwd], (key, row, n)
        assert row == oracle[key], (key, row, oracle[key])
    # packets per direction also equal tshark's conversation table (the corpus expectation)
    conv = tshark_flows(expected(path))
    assert {k: [v[0], v[2]] for k, v in ours.items()} == {k: [v[0], v[2]] for k, v in conv.items()}
    assert "IPFIX export" in result.stdout and " 0 dropped" in result.stdout


@pytest.mark.slow
def test_active_timeout_exports_deltas_that_add_up(nfdir: Path) -> None:
    """A short active timeout splits long flows into several records (reason 2, active);
    the records' deltas add up to the flow's totals, and nfdump reads every one."""
    path = corpus_file("dpkt-http.pcap")
    result, nf_flows, parsed = export(path, nfdir, ["--active-timeout-s", "5"])
    assert result.code == 0, result.stderr
    reasons = [r["reason"] for r in parsed.records]
    # active (2); whatever is left at the end of the capture: forced end (4). Records with
    # nothing new since the previous export are not sent.
    assert 2 in reasons and set(reasons) <= {2, 4}
    assert len(nf_flows) == len(parsed.records)
    ours = view_from_records(parsed.records)
    assert len(parsed.records) > len(ours)  # some flow left in several records
    assert ours == view_from_tshark(path)
    # sequence numbers: each data message's equals the records encoded before it
    seen = 0
    for (_v, _l, _t, seq, _d), n in zip(parsed.headers, parsed.records_per_message, strict=True):
        assert seq == seen
        seen += n


def _corpus_counts(stdout: str) -> str:
    line = next(x for x in stdout.splitlines() if "Flows:" in x)
    return line + next(x for x in stdout.splitlines() if "Packets captured" in x)


@pytest.mark.slow
def test_unreachable_collectors_do_not_change_the_capture(tmp_path: Path) -> None:
    """A closed UDP port, a closed TCP port, a blackholed TCP address (SYNs unanswered) and
    a TCP collector that never reads: the capture's results are those of a run without
    export, and the summary counts the loss."""
    path = corpus_file("ndpi-reddit.pcap")
    plain = run_cli(["--read-pcap", str(path), "--quiet"])
    assert plain.code == 0
    closed = UdpCatcher()
    udp_port = closed.port
    closed.close(settle_s=0)  # now nothing listens there
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        tcp_closed = probe.getsockname()[1]
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_never_read() -> None:
        stalled.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = stalled.accept()
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept_never_read, daemon=True)
    t.start()
    # a blackhole on loopback without touching routes: a listener whose accept queue
    # (backlog 0) is full drops further SYNs, so connecting hangs until it times out
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname())
    try:
        targets = [
            f"tcp://127.0.0.1:{hole.getsockname()[1]}",
            f"127.0.0.1:{udp_port}",
            f"tcp://127.0.0.1:{tcp_closed}",
            f"tcp://127.0.0.1:{stalled.getsockname()[1]}#stalled",
        ]
        for target in targets:
            run = run_cli(
                ["--read-pcap", str(path), "--quiet", "--export-ipfix", target.split("#")[0]],
                timeout=120,  # a hang guard, not a timing assertion
            )
            assert run.code == 0, run.stderr
            assert _corpus_counts(run.stdout) == _corpus_counts(plain.stdout)
            row = next(x for x in run.stdout.splitlines() if "IPFIX export" in x)
            dropped = int(row.rsplit(", ", 1)[1].split()[0])
            if "stalled" not in target:
                assert dropped > 0, row  # nothing listens: the loss is counted
    finally:
        stop.set()
        t.join(timeout=5)
        stalled.close()
        filler.close()
        hole.close()
        for c in held:
            c.close()


@pytest.mark.slow
def test_evicted_flows_leave_with_lack_of_resources(nfdir: Path) -> None:
    """--max-flows 4 on a capture with many UDP flows: evicted flows are exported at once
    (flowEndReason 5); all records together still give tshark's figures."""
    path = corpus_file("pcpp-DnsPackets.pcap")
    result, nf_flows, parsed = export(path, nfdir, ["--max-flows", "4"])
    assert result.code == 0, result.stderr
    reasons = {r["reason"] for r in parsed.records}
    assert 5 in reasons and 4 in reasons
    assert len(nf_flows) == len(parsed.records)
    assert view_from_records(parsed.records) == view_from_tshark(path)


@pytest.mark.slow
def test_pipeline_mode_exports_the_same_flows(nfdir: Path) -> None:
    path = corpus_file("dpkt-http.pcap")
    result, _nf, parsed = export(path, nfdir, ["--pipeline", "--workers", "2"])
    assert result.code == 0, result.stderr
    assert view_from_records(parsed.records) == view_from_tshark(path)


class TcpCatcher:
    """A TCP collector: accepts one connection and splits the stream into messages."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.data = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while chunk := conn.recv(65536):
                self.data += chunk

    def messages(self) -> list[bytes]:
        self._thread.join(timeout=30)
        self.server.close()
        out, off = [], 0
        while off + 4 <= len(self.data):
            length = int.from_bytes(self.data[off + 2 : off + 4], "big")
            out.append(self.data[off : off + length])
            off += length
        assert off == len(self.data)
        return out


@pytest.mark.slow
def test_tcp_transport_and_template_refresh(tmp_path: Path) -> None:
    """tcp://: templates once at the start of the connection, then the records; UDP with
    a 1 s refresh on a 30 s capture: the templates come again (capture time)."""
    path = corpus_file("dpkt-http.pcap")
    tcp = TcpCatcher()
    run = run_cli(
        ["--read-pcap", str(path), "--quiet", "--export-ipfix", f"tcp://127.0.0.1:{tcp.port}"]
    )
    assert run.code == 0, run.stderr
    parsed = parse_messages(tcp.messages())
    assert view_from_records(parsed.records) == view_from_tshark(path)
    assert parsed.records_per_message[0] == 0  # the template message comes first
    conf = tmp_path / "ipfix.toml"
    conf.write_text("[output.ipfix]\ntemplate_refresh_s = 1\nactive_timeout_s = 2\n")
    catcher = UdpCatcher()
    run = run_cli(
        ["--config", str(conf), "--read-pcap", str(path), "--quiet",
         "--export-ipfix", f"127.0.0.1:{catcher.port}"]
    )  # fmt: skip
    assert run.code == 0, run.stderr
    msgs = catcher.close()
    template_msgs = [m for m in msgs if m[16:18] == b"\x00\x02"]
    assert len(template_msgs) > 3
    export_times = [int.from_bytes(m[4:8], "big") for m in msgs]
    assert export_times == sorted(export_times)
    assert export_times[-1] - export_times[0] >= 25  # capture time: the trace spans 30 s


def test_bad_collector_is_a_usage_error() -> None:
    run = run_cli(["--read-pcap", "x.pcap", "--export-ipfix", "nohost"])
    assert run.code == 2
    assert run.stderr.startswith("error: --export-ipfix: expected HOST:PORT")

"""Live capture on ``lo`` with traffic the test sends itself, through both backends.

Each test starts ``python -m netscope -i lo …`` as a subprocess, waits for its start-up
line on stderr (``capturing on lo (BACKEND, …)…``), sends UDP/TCP over IPv4 and IPv6
loopback, then stops it (``-c``, SIGINT or SIGTERM) and checks the summary, the exported
flows and, where useful, what tcpdump saw of the same traffic. Filters pick the test's own
ports, so other programs using loopback at the same time cannot disturb the counts.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netscope.gen.pcapfile import iter_pcap

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 120.0  # first run may compile kernels
BACKENDS = ["afpacket", "libpcap"]

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root / CAP_NET_RAW"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux loopback 'lo'"),
]


def free_port(family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(family, kind) as s:
        s.bind(("127.0.0.1", 0) if family == socket.AF_INET else ("::1", 0))
        return int(s.getsockname()[1])


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@dataclass
class Capture:
    """A running ``netscope`` process and its collected stderr."""

    proc: subprocess.Popen[str]
    stderr_lines: queue.Queue[str] = field(default_factory=queue.Queue)
    stderr_all: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None
    stdout_all: list[str] = field(default_factory=list)
    out_pump: threading.Thread | None = None

    def wait_started(self, timeout: float = STARTUP_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.stderr_lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("capturing on "):
                time.sleep(0.2)  # the socket is bound before the line is printed
                return line
        self.proc.kill()
        self.proc.wait()
        self._join()
        out = "".join(self.stdout_all)
        pytest.fail(f"netscope did not start capturing:\n{''.join(self.stderr_all)}\n{out}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        # Both pipes are drained by pump threads (communicate() would race them for stderr).
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._join()
            pytest.fail(f"netscope did not stop:\n{''.join(self.stderr_all)}")
        self._join()
        return self.proc.returncode, "".join(self.stdout_all), "".join(self.stderr_all)

    def _join(self) -> None:
        # the process has exited, so both pipes reach EOF: wait for every line
        for thread in (self.pump, self.out_pump):
            if thread is not None:
                thread.join(timeout=10.0)


def start(args: list[str], backend: str) -> Capture:
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    env["NETSCOPE_CAPTURE_BACKEND"] = backend
    env.setdefault("PYTHONIOENCODING", "utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    cap = Capture(proc)

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            cap.stderr_all.append(line)
            cap.stderr_lines.put(line)

    def pump_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            cap.stdout_all.append(line)

    cap.pump = threading.Thread(target=pump, daemon=True)
    cap.pump.start()
    cap.out_pump = threading.Thread(target=pump_out, daemon=True)
    cap.out_pump.start()
    return cap


@pytest.fixture
def receivers() -> Iterator[dict[str, socket.socket]]:
    """Bound UDP sockets on IPv4 and IPv6 loopback (so no ICMP unreachable replies)."""
    socks: dict[str, socket.socket] = {}
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.bind(("127.0.0.1", 0))
    socks["v4"] = v4
    if has_ipv6_loopback():
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        v6.bind(("::1", v4.getsockname()[1]))
        socks["v6"] = v6
    yield socks
    for s in socks.values():
        s.close()


def send_udp(dest: socket.socket, count: int, size: int = 100) -> None:
    family = dest.family
    host, port = dest.getsockname()[:2]
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for i in range(count):
            s.sendto(bytes([i % 256]) * size, (host, port))
            if i % 32 == 31:
                time.sleep(0.001)


def tcp_exchange(family: int, host: str, payload: bytes = b"hello netscope" * 100) -> int:
    """One TCP connection: connect, send, echo back, close. Returns the server port."""
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.bind((host, 0))
        server.listen(1)
        port = server.getsockname()[1]
        with socket.socket(family, socket.SOCK_STREAM) as client:
            client.connect((host, port))
            conn, _ = server.accept()
            with conn:
                client.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    got += conn.recv(65536)
                conn.sendall(got)
                back = b""
                while len(back) < len(payload):
                    back += client.recv(65536)
                client.shutdown(socket.SHUT_WR)
                conn.recv(10)
    return int(port)


def summary_value(stdout: str, label: str) -> str:
    m = re.search(rf"^  {re.escape(label)}:\s+(.*)$", stdout, re.M)
    assert m, f"no {label!r} in summary:\n{stdout}"
    return m.group(1)


# ------------------------------------------------------------------ tests


@pytest.mark.timing  # waits on wall time (sleeps for the ring's block timeout)
@pytest.mark.parametrize("backend", BACKENDS)
def test_udp_filter_counts_flows_and_sigint(
    backend: str, receivers: dict[str, socket.socket], tmp_path: Path
) -> None:
    port = receivers["v4"].getsockname()[1]
    export = tmp_path / "flows.json"
    pcap = tmp_path / "live.pcap"
    cap = start(
        [
            "-i", "lo", "-f", f"udp port {port}", "--quiet", "--export-json", str(export),
            "--write-pcap", str(pcap),
        ],
        backend,
    )  # fmt: skip
    line = cap.wait_started()
    assert f"({backend}" in line
    tcpdump = shutil.which("tcpdump")
    dump = tmp_path / "tcpdump.pcap"
    td = None
    if tcpdump:
        td = subprocess.Popen(
            [tcpdump, "-i", "lo", "-U", "-w", str(dump), f"udp port {port}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert td.stderr is not None
        td.stderr.readline()  # "listening on lo ..."
        time.sleep(0.3)
    send_udp(receivers["v4"], 25)
    expected = {4: 25}
    if "v6" in receivers:
        send_udp(receivers["v6"], 15, size=300)
        expected[6] = 15
    tcp_exchange(socket.AF_INET, "127.0.0.1")  # other traffic: filtered out
    time.sleep(0.6)  # > the ring's block timeout (100 ms)
    code, out, err = cap.stop(signal.SIGINT)
    assert code == 0, err
    total = sum(expected.values())
    assert "Capture complete (interrupted)." in out
    assert summary_value(out, "Packets captured") == str(total)
    assert summary_value(out, "Kernel dropped") == "0"
    assert summary_value(out, "Drop rate") == "0.00%"
    assert int(summary_value(out, "Kernel received")) >= total
    flows = json.loads(export.read_text())
    assert sorted(f["packets_total"] for f in flows) == sorted(expected.values())
    assert {f["protocol"] for f in flows} == {"udp"}
    for f in flows:
        assert port in (f["endpoint_a"]["port"], f["endpoint_b"]["port"])
    written = list(iter_pcap(pcap))
    assert len(written) == total
    if td is not None:
        time.sleep(0.3)
        td.send_signal(signal.SIGINT)
        td.wait(timeout=10)
        theirs = list(iter_pcap(dump))
        # same packets as tcpdump (loopback duplicates dropped the same way)
        assert [d for _, d, _ in theirs] == [d for _, d, _ in written]


@pytest.mark.timing  # waits on wall time (sleeps for the ring's block timeout)
@pytest.mark.parametrize("backend", BACKENDS)
def test_tcp_flows_ipv4_and_ipv6(backend: str, tmp_path: Path) -> None:
    export = tmp_path / "flows.json"
    v4_port = free_port(socket.AF_INET, socket.SOCK_STREAM)
    del v4_port
    cap = start(["-i", "lo", "-f", "tcp", "--quiet", "--export-json", str(export)], backend)
    cap.wait_started()
    p4 = tcp_exchange(socket.AF_INET, "127.0.0.1")
    p6 = tcp_exchange(socket.AF_INET6, "::1") if has_ipv6_loopback() else None
    time.sleep(0.6)
    code, out, err = cap.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Capture complete (interrupted)." in out
    flows = json.loads(export.read_text())
    ours = {}
    for f in flows:
        for port in (p4, p6):
            if port is not None and port in (f["endpoint_a"]["port"], f["endpoint_b"]["port"]):
                ours[port] = f
    assert p4 in ours
    for port in [p for p in (p4, p6) if p is not None]:
        f = ours[port]
        assert f["protocol"] == "tcp"
        assert f["tcp_state"] == "closed" or f["tcp_state"] == "fin_wait", f
        assert f["packets_a_to_b"] >= 3 and f["packets_b_to_a"] >= 3
        assert f["bytes_total"] >= 2 * 1400  # the payload went both ways
        assert f["client"] is not None
        assert f["rtt_samples"] >= 1
    if p6 is not None:
        assert ":" in ours[p6]["endpoint_a"]["ip"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_count_stops_the_capture(backend: str, receivers: dict[str, socket.socket]) -> None:
    port = receivers["v4"].getsockname()[1]
    cap = start(["-i", "lo", "-f", f"udp and port {port}", "-c", "10"], backend)
    cap.wait_started()
    send_udp(receivers["v4"], 40)
    code, out, err = cap.finish(timeout=30)  # exits by itself
    assert code == 0, err
    assert "Capture complete." in out
    assert summary_value(out, "Packets captured") == "10"
    assert len([ln for ln in out.splitlines() if ln.startswith("#")]) == 10
    # the original NetScope's start-up lines, on stdout before the packets
    assert out.splitlines()[1:5] == [
        "Capturing on interface: lo",
        f"Filter: udp and port {port}",
        "Datalink: Ethernet",
        "",
    ]


@pytest.mark.timing  # waits on wall time (sleeps for the ring's block timeout)
@pytest.mark.parametrize("backend", BACKENDS)
def test_stats_tick_on_wall_time_without_packets(backend: str) -> None:
    port = free_port()
    cap = start(
        ["-i", "lo", "-f", f"udp port {port}", "--quiet", "--stats", "--stats-interval-ms", "200"],
        backend,
    )
    cap.wait_started()
    time.sleep(1.5)
    code, out, _ = cap.stop()
    assert code == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("[stats]")]
    assert len(lines) >= 3, out
    assert all("kdrop=0 (total=0) ifdrop=0 (total=0)" in ln for ln in lines)
    assert all(" 0 pps | 0 flows" in ln for ln in lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_invalid_filter_exit_2(backend: str) -> None:
    cap = start(["-i", "lo", "-f", "udp prot 53"], backend)
    code, _, err = cap.finish()
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: invalid filter 'udp prot 53': ")


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_such_interface_exit_1(backend: str) -> None:
    cap = start(["-i", "nosuchif0"], backend)
    code, _, err = cap.finish()
    assert code == 1
    assert "error: no such interface 'nosuchif0'" in err


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")
@pytest.mark.parametrize("backend", BACKENDS)
def test_permission_error_names_cap_net_raw(backend: str) -> None:
    env = dict(os.environ, NETSCOPE_CAPTURE_BACKEND=backend)
    proc = subprocess.run(
        [
            "setpriv", "--inh-caps=-net_raw,-net_admin", "--bounding-set=-net_raw,-net_admin",
            sys.executable, "-m", "netscope", "-i", "lo", "-c", "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot capture on lo: permission denied (run as root")
    assert "CAP_NET_RAW" in last and "setcap cap_net_raw,cap_net_admin=eip" in last


def test_list_interfaces_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netscope", "-l"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "ADDRESSES"]
    lo = [ln for ln in lines if ln.startswith("lo ")]
    assert lo and "127.0.0.1/8" in lo[0] and "loopback" in lo[0]


def test_any_interface_cooked_mode(receivers: dict[str, socket.socket]) -> None:
    """``-i any`` on AF_PACKET: SLL frames built in the ring, user-space filter."""
    port = receivers["v4"].getsockname()[1]
    cap = start(["-i", "any", "-f", f"udp port {port}", "-c", "12"], "afpacket")
    line = cap.wait_started()
    assert "link type 113" in line
    send_udp(receivers["v4"], 12)
    code, out, err = cap.finish(timeout=30)
    assert code == 0, err
    assert summary_value(out, "Packets captured") == "12"
    assert "Link: Linux SLL" in out or "SLL" in out


@pytest.mark.timing  # waits on wall time (sleeps for the ring's block timeout)
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_pipeline_mode_live(
    backend: str, receivers: dict[str, socket.socket], tmp_path: Path
) -> None:
    """Live capture through the sharded pipeline: every packet reaches a shard (no dispatch
    drops at this rate), flows are exported, stats lines carry the dispatch-drop counter."""
    port = receivers["v4"].getsockname()[1]
    export = tmp_path / "flows.json"
    cap = start(
        [
            "-i", "lo", "-f", f"udp port {port} or tcp", "--quiet", "--pipeline",
            "--workers", "2", "--stats", "--stats-interval-ms", "200",
            "--export-json", str(export),
        ],
        backend,
    )  # fmt: skip
    cap.wait_started()
    send_udp(receivers["v4"], 30)
    expected = 30
    if "v6" in receivers:
        send_udp(receivers["v6"], 20, size=300)
        expected += 20
    tcp_port = tcp_exchange(socket.AF_INET, "127.0.0.1")
    time.sleep(0.8)
    code, out, err = cap.stop(signal.SIGINT)
    assert code == 0, err
    assert "Capture complete (pipeline mode) (interrupted)." in out
    assert summary_value(out, "Dispatch drops") == "0"
    assert int(summary_value(out, "Packets captured")) >= expected + 6  # + the TCP exchange
    assert re.search(r"^\[stats\] .* drops=0 \(total=0\)", out, re.M), out
    flows = json.loads(export.read_text())
    udp = sorted(
        f["packets_total"]
        for f in flows
        if f["protocol"] == "udp" and port in (f["endpoint_a"]["port"], f["endpoint_b"]["port"])
    )
    assert udp == sorted([30, 20] if "v6" in receivers else [30])
    tcp = [
        f
        for f in flows
        if f["protocol"] == "tcp" and tcp_port in (f["endpoint_a"]["port"], f["endpoint_b"]["port"])
    ]
    assert len(tcp) == 1 and tcp[0]["packets_a_to_b"] >= 3 and tcp[0]["packets_b_to_a"] >= 3


@pytest.mark.timing  # waits on wall time (sleeps for the ring's block timeout)
@pytest.mark.parametrize("backend", BACKENDS)
def test_final_partial_stats_line_on_stop(
    backend: str, receivers: dict[str, socket.socket]
) -> None:
    """Stopping mid-interval prints the partial interval's stats (rates over the time it
    lasted), so the traffic since the last line is not lost."""
    port = receivers["v4"].getsockname()[1]
    cap = start(
        ["-i", "lo", "-f", f"udp port {port}", "--quiet", "--stats", "--stats-interval-ms",
         "60000"],
        backend,
    )  # fmt: skip
    cap.wait_started()
    send_udp(receivers["v4"], 20)
    time.sleep(0.6)
    code, out, err = cap.stop(signal.SIGINT)
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith("[stats]")]
    assert len(lines) == 1, out
    m = re.match(r"\[stats\] ([\d.]+) Mbps \| (\d+) pps \| 1 flows \|", lines[0])
    assert m, lines[0]
    assert float(m.group(1)) > 0 and int(m.group(2)) > 0


def test_live_parquet_export_after_sigterm(
    receivers: dict[str, socket.socket], tmp_path: Path
) -> None:
    """A live run stopped by SIGTERM leaves a complete Parquet file: the same flows as the
    JSON export, with their Community IDs."""
    import pyarrow.parquet as pq

    port = receivers["v4"].getsockname()[1]
    export, parquet = tmp_path / "flows.json", tmp_path / "flows.parquet"
    cap = start(
        ["-i", "lo", "-f", f"udp port {port}", "--quiet", "--export-json", str(export),
         "--export-parquet", str(parquet)],
        BACKENDS[0],
    )  # fmt: skip
    cap.wait_started()
    send_udp(receivers["v4"], 20)
    time.sleep(0.6)
    code, out, err = cap.stop(signal.SIGTERM)
    assert code == 0, err
    flows = json.loads(export.read_text())
    table = pq.read_table(parquet)
    assert table.num_rows == len(flows) == 1
    assert table["community_id"].to_pylist() == [flows[0]["community_id"]]
    assert table["packets_total"].to_pylist() == [20]
    assert "Parquet export" in out

"""Live IPFIX export: ``-i lo`` with traffic the test sends, exported to nfcapd, read back.

The capture filter selects the test's own traffic only (never the export's datagrams, which
also cross loopback). A short idle timeout makes the UDP flows leave *while* the capture
runs: the test waits (bounded) for their records to reach the collector before stopping it.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from sinks.ipfix_support import UdpCatcher, nfdump_available, parse_messages, start_nfcapd

from .test_live_capture import BACKENDS, has_ipv6_loopback, send_udp, start, tcp_exchange

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(not nfdump_available(), reason="nfdump (Debian) not installed"),
]
HANG_GUARD_S = 60.0


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_live_flows_reach_nfcapd(backend: str, tmp_path: Path) -> None:
    if not hasattr(socket, "AF_PACKET"):
        pytest.skip("Linux only")
    import os

    if os.geteuid() != 0:
        pytest.skip("live capture needs root")
    (tmp_path / "nf").mkdir()
    catcher = UdpCatcher()
    nf = start_nfcapd(tmp_path / "nf", repeat_to=catcher.port)
    recv4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recv4.bind(("127.0.0.1", 0))
    port = recv4.getsockname()[1]
    recv6 = None
    if has_ipv6_loopback():
        recv6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        recv6.bind(("::1", port))
    export = tmp_path / "flows.json"
    try:
        cap = start(
            [
                "-i", "lo", "-f", f"udp port {port} or (tcp and not port {nf.port})",
                "--quiet", "--flow-timeout-s", "1", "--export-json", str(export),
                "--export-ipfix", f"127.0.0.1:{nf.port}",
            ],
            backend,
        )  # fmt: skip
        cap.wait_started()
        send_udp(recv4, 20)
        if recv6 is not None:
            send_udp(recv6, 15, size=300)
        # idle flows leave while the capture runs: wait for their records (hang guard only)
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            recs = parse_messages(list(catcher.messages)).records
            if any(port in (r["sport"], r["dport"]) and r["reason"] == 1 for r in recs):
                break
            time.sleep(0.2)
        else:
            pytest.fail("no idle-timeout record reached the collector during the capture")
        tport = tcp_exchange(socket.AF_INET, "127.0.0.1")
        time.sleep(0.6)  # > the ring's block timeout
        code, out, err = cap.stop(signal.SIGINT)
        assert code == 0, err
    finally:
        nf_flows = nf.stop()
        recv4.close()
        if recv6 is not None:
            recv6.close()
    catcher.close()
    assert " 0 dropped" in out, out
    by_port: dict[int, list[dict[str, object]]] = {}
    for f in nf_flows:
        for p in (port, tport):
            if p in (f["src_port"], f["dst_port"]):
                by_port.setdefault(p, []).append(f)
    udp = by_port[port]
    v4 = [f for f in udp if "src4_addr" in f]
    assert sum(int(f["in_packets"]) + int(f.get("out_packets", 0)) for f in v4) == 20
    assert sum(int(f["in_bytes"]) + int(f.get("out_bytes", 0)) for f in v4) == 20 * (20 + 8 + 100)
    if recv6 is not None:
        v6 = [f for f in udp if "src6_addr" in f]
        assert sum(int(f["in_packets"]) + int(f.get("out_packets", 0)) for f in v6) == 15
        assert sum(int(f["in_bytes"]) + int(f.get("out_bytes", 0)) for f in v6) == 15 * (
            40 + 8 + 300
        )
    # the TCP connection: forward = the client (it sent the SYN), counts as --export-json
    (tcp,) = by_port[tport]
    assert tcp["dst_port"] == tport
    assert int(str(tcp["proto"])) == 6 and "S" in str(tcp["tcp_flags"])
    ours = [
        f
        for f in json.loads(export.read_text())
        if tport in (f["endpoint_a"]["port"], f["endpoint_b"]["port"])
    ]
    assert len(ours) == 1
    total = int(tcp["in_packets"]) + int(str(tcp.get("out_packets", 0)))
    assert total == ours[0]["packets_total"]

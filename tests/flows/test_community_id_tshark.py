"""Community ID of every corpus flow equals tshark's (``--enable-protocol communityid``).

tshark prints a Community ID per packet; each of our flows (TCP/UDP, the only flows the
table keeps, SPEC §6) must carry one of the IDs tshark printed for that file, computed
through the export path (``AnalysisResult.to_arrow``'s column, the compiled hash).

Two documented exceptions, where tshark hashes a different tuple than our flow key:
- IPv6 with a type-0 routing header: our flow key (like Zeek's) uses the final
  destination from the routing header; tshark hashes the IPv6 header's destination.
- Teredo: tshark hashes the tunnelled IPv6 packet; we keep the outer UDP flow (we do not
  decapsulate Teredo), which tshark never prints an ID for.
Files where tshark sees TCP/UDP that we do not decode (PPPoE, NFLOG, GRE, radiotap) only
add IDs on tshark's side; the test checks our flows, every one of them.
"""

from __future__ import annotations

import shutil
import subprocess

import communityid
import pytest

import netscope
from corpus_support import corpus_files
from netscope.flows.community_id import community_id

EXCEPTIONS = {
    ("pcpp-ipv6_options.pcapng", "udp 2200::210:2:0:0:4 5642"): "routing header final dst",
    ("tcpdump-ipv6-routing-header.pcap", "udp 2200::210:2:0:0:4 5642"): "routing header",
    ("zeek-Teredo.pcap", "udp 65.55.158.81 3544"): "Teredo outer flow",
    ("zeek-Teredo.pcap", "udp 65.55.158.80 3544"): "Teredo outer flow",
}
UNREADABLE = {"libpcap-pcap-invalid-version-1.pcap"}  # refused on purpose (test_corpus.py)


def tshark_ids(path: str) -> set[str]:
    out = subprocess.run(
        ["tshark", "-r", path, "--enable-protocol", "communityid", "-T", "fields"]
        + ["-e", "communityid"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return set(out.split())


@pytest.mark.slow
def test_every_corpus_flow_matches_tshark() -> None:
    files = corpus_files()
    if not files:
        pytest.skip("corpus not available")
    assert shutil.which("tshark"), "tshark is a test dependency (scripts/install-system-deps.sh)"
    compared = 0
    excepted = set()
    for capture in files:
        if capture.name in UNREADABLE:
            continue
        table = netscope.analyze(capture).to_arrow()
        if table.num_rows == 0:
            continue
        want = tshark_ids(str(capture))
        cols = table.select(
            ["protocol", "endpoint_a_ip", "endpoint_a_port", "endpoint_b_ip", "community_id"]
        ).to_pylist()
        for row in cols:
            if row["community_id"] in want:
                compared += 1
                continue
            key = (
                capture.name,
                f"{row['protocol']} {row['endpoint_a_ip']} {row['endpoint_a_port']}",
            )
            assert key in EXCEPTIONS, f"{capture.name}: {row} not among tshark's IDs"
            excepted.add(key)
    assert excepted == set(EXCEPTIONS)  # the exceptions are still needed, no more
    assert compared > 700  # every other corpus flow (782 today) was compared


def test_icmp_packets_match_tshark() -> None:
    """Our flow table has no ICMP (SPEC §6), but the Zeek conn.log export hashes ICMP
    "connections" with the same function: every ICMP/ICMPv6 packet of the corpus's ICMP
    captures, through ``community_id(src, dst, proto, type, code)``, equals tshark."""
    files = [p for p in corpus_files() if "icmp" in p.name]
    if not files:
        pytest.skip("corpus not available")
    compared = 0
    disagreements: list[str] = []
    for capture in files:
        out = subprocess.run(
            ["tshark", "-r", str(capture), "--enable-protocol", "communityid", "-Y"]
            + ["icmp or icmpv6", "-T", "fields", "-E", "occurrence=f", "-E", "separator=,"]
            + [f"-e{f}" for f in ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "icmp.type")]
            + [f"-e{f}" for f in ("icmp.code", "icmpv6.type", "icmpv6.code", "communityid")],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for line in out.splitlines():
            s4, d4, s6, d6, t4, c4, t6, c6, want = line.split(",")
            if not want:
                continue
            if s4:
                got = community_id(s4, d4, 1, int(t4), int(c4))
            else:
                got = community_id(s6, d6, 58, int(t6), int(c6))
            if got != want:
                # tshark 4.x disagrees with the spec's reference package on a few MLDv2
                # reports (type 143, one-way); we follow the reference there
                proto, t, code = (1, t4, c4) if s4 else (58, t6, c6)
                src, dst = (s4, d4) if s4 else (s6, d6)
                tpl = communityid.FlowTuple(proto, src, dst, int(t), int(code))
                assert got == str(communityid.CommunityID().calc(tpl)), (capture.name, line)
                disagreements.append(line)
                continue
            compared += 1
    assert compared > 50
    assert len(disagreements) <= compared // 10, disagreements

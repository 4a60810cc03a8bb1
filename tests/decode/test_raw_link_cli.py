"""Raw-IP link types dispatch on the IP version nibble, as tcpdump and tshark do.

An IPv6 packet in a LINKTYPE_IPV4 (228) file — or IPv4 in 229, or either in 12/101 — is
decoded, counted into flows (inline and through the pipeline's router) and never a parse
error. Run through the CLI, where a user meets it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netscope.gen import packets as pk
from netscope.gen.pcapfile import write_pcap

V4A, V4B = "192.0.2.1", "192.0.2.2"
V6A, V6B = "2001:db8::1", "2001:db8::2"


def mixed_capture(path: Path, linktype: int) -> None:
    v4 = pk.ipv4(V4A, V4B, 17, pk.udp(V4A, V4B, 1000, 2000, b"four"))
    v6 = pk.ipv6(V6A, V6B, 17, pk.udp(V6A, V6B, 3000, 4000, b"six"))
    write_pcap(
        path, [(1_700_000_000 * 10**9 + i * 1000, p) for i, p in enumerate([v4, v6])], linktype
    )


@pytest.mark.parametrize("linktype", [228, 229])
@pytest.mark.parametrize("pipeline", [False, True])
def test_other_ip_version_in_a_raw_ip_file_is_decoded(
    tmp_path: Path, linktype: int, pipeline: bool, cli: Callable[..., Any]
) -> None:
    path = tmp_path / "raw.pcap"
    mixed_capture(path, linktype)
    args = ["--read-pcap", str(path)] + (["--pipeline", "--workers", "2"] if pipeline else [])
    res = cli(args)
    assert res.code == 0, res.stderr
    assert re.search(r"Parse errors:\s+0$", res.stdout, re.M), res.stdout
    assert re.search(r"Flows:\s+2 active", res.stdout), res.stdout
    if not pipeline:
        assert "IPv6: 2001:db8::1 -> 2001:db8::2" in res.stdout
        assert "IPv4: 192.0.2.1 -> 192.0.2.2" in res.stdout

"""Console compatibility with the original NetScope, through the CLI (issue 14).

Start-up lines on stdout (also with --quiet), ``Success rate:`` in the summary, ``--verbose``
as the counting long form of ``-v``, ``web.tick_ms`` below 16 raised with a warning, and the
warning for Basic auth served without TLS on a non-loopback address.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netscope import __version__
from netscope.config import Config, WebAuthConfig, WebConfig, WebTlsConfig
from netscope.gen import packets as pk
from netscope.gen.pcapfile import write_pcap
from netscope.sinks.startup import insecure_auth_warning, is_loopback_bind

T0 = 1_700_000_000 * 10**9
A, B = "192.0.2.1", "192.0.2.2"


def frames(n: int) -> list[tuple[int, bytes]]:
    seg = pk.tcp(A, B, 1234, 80, 1, 0, "S")
    return [(T0 + i * 10**6, pk.ether_ip(A, B, 6, seg)) for i in range(n)]


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "t.pcap"
    write_pcap(path, frames(4))
    return path


def summary_value(stdout: str, label: str) -> str:
    m = re.search(rf"^  {re.escape(label)}:\s+(.*)$", stdout, re.M)
    assert m, stdout
    return m.group(1)


# --------------------------------------------------------------------------- start-up lines


def test_startup_lines_on_stdout_even_with_quiet(trace: Path, cli: Callable[..., Any]) -> None:
    res = cli(["--read-pcap", str(trace), "--quiet", "-f", "tcp port 80"])
    assert res.code == 0, res.stderr
    assert res.stdout.splitlines()[:5] == [
        f"NetScope v{__version__}",
        f"Reading packets from pcap: {trace}",
        "Filter: tcp port 80",
        "Datalink: Ethernet",
        "",
    ]
    assert "NetScope v" not in res.stderr


def test_startup_lines_pipeline_and_other_link_types(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = tmp_path / "sll.pcap"
    sll = [(ts, pk.sll(2048, data[14:])) for ts, data in frames(2)]
    write_pcap(path, sll, linktype=113)
    res = cli(["--read-pcap", str(path), "--quiet", "--pipeline", "--workers", "3"])
    assert res.code == 0, res.stderr
    assert res.stdout.splitlines()[:5] == [
        f"NetScope v{__version__}",
        f"Reading packets from pcap: {path}",
        "Datalink: Linux SLL",
        "Pipeline: 3 worker shards",
        "",
    ]


def test_startup_datalink_of_a_pcapng_file(
    cli: Callable[..., Any], corpus: Callable[[str], Path]
) -> None:
    path = corpus("pcpp-IcmpPackets.pcapng")
    res = cli(["--read-pcap", str(path), "--quiet"])
    assert res.code == 0, res.stderr
    assert res.stdout.splitlines()[1:4] == [
        f"Reading packets from pcap: {path}",
        "Datalink: Ethernet",
        "",
    ]


def test_startup_datalink_unsupported(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "odd.pcap"
    write_pcap(path, frames(1), linktype=147)
    res = cli(["--read-pcap", str(path), "--quiet"])
    assert res.code == 0, res.stderr
    assert "Datalink: Unsupported(147)" in res.stdout.splitlines()


# --------------------------------------------------------------------------- summary


def test_success_rate_as_the_original_computes_it(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "mixed.pcap"
    good = frames(3)
    write_pcap(path, [*good, (T0 + 10**9, good[0][1][:20])])  # the 4th: a truncated IPv4 header
    res = cli(["--read-pcap", str(path), "--quiet"])
    assert res.code == 0, res.stderr
    assert summary_value(res.stdout, "Parse errors") == "1"
    assert summary_value(res.stdout, "Success rate") == "75.0%"
    lines = res.stdout.splitlines()
    i = lines.index("  Parse errors:      1")
    assert lines[i + 1] == "  Success rate:      75.0%"  # right after Parse errors, aligned


def test_success_rate_of_an_empty_capture(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "empty.pcap"
    write_pcap(path, [])
    res = cli(["--read-pcap", str(path), "--quiet"])
    assert res.code == 0, res.stderr
    assert summary_value(res.stdout, "Success rate") == "0.0%"


# --------------------------------------------------------------------------- flags


def test_verbose_is_the_long_form_of_v_and_counts(trace: Path, cli: Callable[..., Any]) -> None:
    twice = cli(["--read-pcap", str(trace), "--verbose", "--verbose", "-c", "1"])
    assert twice.code == 0, twice.stderr
    assert "Frame #1" in twice.stdout  # -vv: the detailed view
    once = cli(["--read-pcap", str(trace), "--verbose", "-c", "1"])
    assert once.code == 0, once.stderr
    assert "Frame #1" not in once.stdout and "#1 " in once.stdout
    mixed = cli(["--read-pcap", str(trace), "-v", "--verbose", "-c", "1"])
    assert "Frame #1" in mixed.stdout


def test_tick_ms_below_16_is_a_warning_not_an_error(
    trace: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    conf = tmp_path / "n.toml"
    conf.write_text("[web]\ntick_ms = 10\n")
    res = cli(["--config", str(conf), "--read-pcap", str(trace), "--quiet"])
    assert res.code == 0, res.stderr
    assert "warning: web.tick_ms = 10 is below the minimum 16; using 16" in res.stderr


# --------------------------------------------------------------------------- auth without TLS


def web(bind: str, auth: bool = True, tls: bool = False) -> Config:
    return Config(
        web=WebConfig(
            enabled=True,
            bind=bind,
            auth=WebAuthConfig(enabled=auth, username="u", password="p"),
            tls=WebTlsConfig(enabled=tls, cert_path=Path("c"), key_path=Path("k")),
        )
    )


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.0.2.5", False), ("dash.example", False)],
)  # fmt: skip
def test_loopback_binds(bind: str, loopback: bool) -> None:
    assert is_loopback_bind(bind) is loopback


def test_auth_warning_only_for_plain_http_off_loopback() -> None:
    warning = insecure_auth_warning(web("0.0.0.0"))
    assert warning is not None and warning.startswith("warning: ") and "0.0.0.0" in warning
    assert insecure_auth_warning(web("127.0.0.1")) is None
    assert insecure_auth_warning(web("0.0.0.0", tls=True)) is None
    assert insecure_auth_warning(web("0.0.0.0", auth=False)) is None


def test_auth_without_tls_on_all_addresses_warns_at_start(tmp_path: Path) -> None:
    from tests.web.conftest import free_port, start_web

    trace = tmp_path / "t.pcap"
    write_pcap(trace, frames(4))
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    run = start_web(
        ["--read-pcap", str(trace), "--quiet", "--web-bind", "0.0.0.0", "--web-auth",
         "--web-auth-user", "admin", "--web-auth-pass-file", str(pw)],
        free_port(),
    )  # fmt: skip
    try:
        line = run.wait_for("warning: web dashboard serves Basic auth without TLS")
        assert "0.0.0.0" in line
    finally:
        run.stop()

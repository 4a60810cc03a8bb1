"""The Basic-auth password file: read whole minus trailing newlines; empty or unreadable text
is a one-line error with exit code 2, the same refusal as an empty inline password.

Through real ``python -m netscope … --web`` processes (the ``cli`` fixture), and the
stripped password checked against a real server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from netscope.config import EMPTY_PASSWORD, WebAuthConfig, WebConfig
from netscope.errors import UsageError
from netscope.web.password import read_password, read_password_file

from .conftest import free_port, serving

CORE = f"error: {EMPTY_PASSWORD} ("  # what every empty-password refusal starts with


def _web_args(trace: Path) -> list[str]:
    return ["--read-pcap", str(trace), "--quiet", "--web", "--web-port", str(free_port()),
            "--web-auth", "--web-auth-user", "admin"]  # fmt: skip


def _one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n\n\r\n", b" \t\n", b"   "])
def test_empty_password_file_is_refused_like_an_empty_inline_password(
    cli: Callable[..., Any], small_trace: Path, tmp_path: Path, content: bytes
) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(content)
    code, out, err = cli([*_web_args(small_trace), "--web-auth-pass-file", str(pw)])
    assert code == 2, err
    line = _one_error_line(err)
    assert line == f"{CORE}web.auth.password_file {pw} is empty or only whitespace)"
    assert "Capture complete" not in out

    conf = tmp_path / "n.toml"
    inline = '"   "' if content.strip(b"\r\n") else '""'
    conf.write_text(f"[web.auth]\npassword = {inline}\n")
    code, _, err = cli(["--config", str(conf), *_web_args(small_trace)])
    assert code == 2, err
    line = _one_error_line(err)
    assert line == (
        f"error: {conf}: {EMPTY_PASSWORD} (web.auth.password is empty or only whitespace)"
    )


def test_non_utf8_password_file_is_a_one_line_error(
    cli: Callable[..., Any], small_trace: Path, tmp_path: Path
) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"caf\xe9\n")  # Latin-1
    code, _, err = cli([*_web_args(small_trace), "--web-auth-pass-file", str(pw)])
    assert code == 2, err
    line = _one_error_line(err)
    assert re.fullmatch(rf"error: web\.auth\.password_file {re.escape(str(pw))} is not UTF-8 "
                        r"text \(byte 3\) \(write the password as UTF-8\)", line), line  # fmt: skip


@pytest.mark.parametrize(
    ("content", "password"),
    [
        (b"pw\n", "pw"),
        (b"pw\r\n", "pw"),
        (b"pw\n\n\r\n", "pw"),
        (b"pw", "pw"),
        (b" pw \t\n", " pw \t"),  # other whitespace is part of the password
        (b"pw\r", "pw\r"),  # a lone CR is not a line ending
        (b"two\nlines\n", "two\nlines"),  # the whole file, not its first line
        ("pässwörd\n".encode(), "pässwörd"),
    ],
)
def test_password_file_is_read_whole_minus_trailing_newlines(
    tmp_path: Path, content: bytes, password: str
) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(content)
    assert read_password_file(pw) == password


def test_inline_password_is_used_as_given() -> None:
    inline = WebConfig(auth=WebAuthConfig(enabled=True, username="u", password=" in line\n"))
    assert read_password(inline) == " in line\n"
    with pytest.raises(UsageError):  # checked at start as well as by the config
        read_password_file(Path("/dev/null"))


def test_auth_works_with_the_stripped_password(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"open sesame \r\n\n")
    cfg = WebConfig(auth=WebAuthConfig(enabled=True, username="admin", password_file=pw))

    async def status(port: int, password: str) -> int:
        url = f"http://127.0.0.1:{port}/api/health"
        headers = {"Authorization": aiohttp.encode_basic_auth("admin", password)}
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            return resp.status

    with serving(cfg=cfg) as server:
        port = server.cfg.port
        assert asyncio.run(status(port, "open sesame ")) == 200
        for wrong in ("open sesame", "open sesame \r\n", "open sesame \n"):
            assert asyncio.run(status(port, wrong)) == 401, repr(wrong)

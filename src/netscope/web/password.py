"""The Basic-auth password of a dashboard run: inline, or read from ``web.auth.password_file``.

The file is read whole, minus its trailing line endings (``\\n`` and ``\\r\\n``, so a file
written by ``echo`` or a Windows editor works), and nothing else is stripped: a password
may begin or end with spaces. A file that leaves an empty or whitespace-only password is
refused with the same message as an empty inline password (config.py's
:data:`~netscope.config.EMPTY_PASSWORD`), exit code 2: Basic auth with an empty password
would let anyone in while looking enabled. A file that is not UTF-8 is a one-line error,
exit code 2, too. A file that cannot be read at all stays a runtime error (exit code 1), like
an unreadable TLS certificate.
"""

from __future__ import annotations

from pathlib import Path

from netscope.config import EMPTY_PASSWORD, WebConfig
from netscope.errors import NetScopeError, UsageError


def strip_line_endings(text: str) -> str:
    """``text`` without its trailing ``\\n`` / ``\\r\\n`` line endings (a lone ``\\r`` stays)."""
    while text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    return text


def read_password_file(path: Path) -> str:
    """The password held by ``path`` (see the module docstring for the rules)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NetScopeError(
            f"cannot read web.auth.password_file {path}: {exc.strerror or exc}"
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"web.auth.password_file {path} is not UTF-8 text (byte {exc.start})",
            "write the password as UTF-8",
        ) from None
    password = strip_line_endings(text)
    if not password.strip():
        raise UsageError(
            EMPTY_PASSWORD, f"web.auth.password_file {path} is empty or only whitespace"
        )
    return password


def read_password(cfg: WebConfig) -> str:
    """The Basic-auth password: inline (checked by the config), or from password_file."""
    auth = cfg.auth
    if auth.password is not None:
        return auth.password
    assert auth.password_file is not None
    return read_password_file(auth.password_file)

"""The few project exceptions; the CLI maps each to a one-line message and exit code.

SPEC §4: 0 success, 1 runtime failure (I/O, capture, write errors), 2 usage/config errors.
"""

from __future__ import annotations


class NetScopeError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with; ``hint`` an optional 2nd clause."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        """``message`` plus hint, as printed after ``error: ``."""
        text = str(self)
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(NetScopeError):
    """Bad command line, conflicting flags, invalid filter: exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """Bad TOML, unknown key, wrong type or value in a config file: exit code 2."""


class CaptureError(NetScopeError):
    """Reading a file or interface failed (not a capture, unreadable, permissions): exit 1."""


class OutputError(NetScopeError):
    """Writing an export or pcap failed (disk full, directory gone): exit 1."""

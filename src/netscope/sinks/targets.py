"""What an output path names, and how to open it without damaging what is there.

Every file netscope writes (``--export-json``, ``--export-csv``, ``--expired-flows-jsonl``,
``--alerts-jsonl``, ``--write-pcap``) is opened through this module, so one set of rules
holds for all of them (docs/exports.md, "How files are written"):

* ``-`` means standard output, and so does any path that is the same file as the
  process's standard output (``/dev/stdout``, ``/proc/self/fd/1``, a symlink to either).
  Writes go through the already open descriptor, in order with everything else written
  there; nothing is created, renamed or truncated. The same holds for a path that is the
  same file as standard error (``/dev/stderr``).
* A path naming (directly or through symlinks) a character device, a FIFO or a socket is
  written *through*: opened for writing as it is, never replaced. ``/dev/null`` stays a
  device, a FIFO's reader gets the data, ``/dev/full`` reports ENOSPC (exit 1).
* A regular file or a missing path is a *file target*. Symlinks are followed to the file
  they name (:func:`resolve_file`), so replacing it keeps the link. An existing file keeps
  its permission bits (and owner, where we may set it); a new file gets ``0644`` minus the
  umask, like any ordinary program's output.
"""

from __future__ import annotations

import enum
import os
import stat
import sys
from pathlib import Path
from typing import TextIO

NEW_FILE_MODE = 0o644
STDOUT_NAME = "-"


class Kind(enum.Enum):
    """How a path is written."""

    STDOUT = "stdout"  # the process's standard output (``-`` or the same file)
    STDERR = "stderr"  # the same file as standard error (``/dev/stderr``)
    STREAM = "stream"  # a device, FIFO or socket: written through, never replaced
    FILE = "file"  # a regular file or a missing path: written as a file


def _stat(path: str) -> os.stat_result | None:
    """``os.stat`` following symlinks; None for a missing (or dangling) path."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return None  # e.g. EACCES on a parent: opening reports the real reason


def _fd_stat(fd: int) -> os.stat_result | None:
    """What descriptor ``fd`` is (None when it is closed)."""
    try:
        return os.fstat(fd)
    except OSError:
        return None


def classify(path: str | os.PathLike[str]) -> Kind:
    """The :class:`Kind` of ``path`` right now."""
    text = os.fspath(path)
    if text == STDOUT_NAME:
        return Kind.STDOUT
    st = _stat(text)
    if st is None:
        return Kind.FILE
    for fd, kind in ((1, Kind.STDOUT), (2, Kind.STDERR)):
        std = _fd_stat(fd)
        if std is not None and os.path.samestat(st, std):
            return kind
    return Kind.FILE if stat.S_ISREG(st.st_mode) else Kind.STREAM


def resolve_file(path: str | os.PathLike[str]) -> Path:
    """The file a FILE target really names: every symlink followed, even a dangling one
    (``ln -s data/flows.json out; --export-json out`` writes ``data/flows.json``)."""
    return Path(os.path.realpath(os.fspath(path)))


def new_file_mode() -> int:
    """``0644`` minus the current umask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return NEW_FILE_MODE & ~mask


def open_stream_fd(path: str | os.PathLike[str], kind: Kind) -> int:
    """A write descriptor for a STDOUT or STREAM target (OSError on failure).

    STDOUT/STDERR are duplicates of descriptor 1/2 (closing one leaves the stream open,
    and writes continue where the stream is, even when it is redirected to a file); a
    STREAM is opened as it is: no O_CREAT, no O_TRUNC, so nothing is created or replaced.
    """
    if kind is Kind.STDOUT:
        sys.stdout.flush()
        return os.dup(1)
    if kind is Kind.STDERR:
        sys.stderr.flush()
        return os.dup(2)
    return os.open(os.fspath(path), os.O_WRONLY | os.O_CLOEXEC)


def open_in_place_fd(path: str | os.PathLike[str]) -> int:
    """A write descriptor for any target, for outputs that stream as they run (JSON Lines,
    pcap): STDOUT/STREAM as :func:`open_stream_fd`; a FILE is created ``0644`` under the
    umask or truncated in place (keeping its mode, owner and links)."""
    kind = classify(path)
    if kind is not Kind.FILE:
        return open_stream_fd(path, kind)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    return os.open(os.fspath(path), flags, NEW_FILE_MODE)


def open_in_place_text(path: str | os.PathLike[str]) -> TextIO:
    """:func:`open_in_place_fd` as a UTF-8 text stream."""
    fd = open_in_place_fd(path)
    try:
        return os.fdopen(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise

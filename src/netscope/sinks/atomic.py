"""Write an export so that readers see either nothing or the complete file.

For a regular file (or a missing path) the content goes to a temporary file beside the
target, is flushed and fsynced, then renamed over the target (rename is atomic on POSIX
filesystems). A crash or a full disk mid-write leaves the target untouched. Symlinks are
followed first, so the file they name is replaced and the link survives; the replacement
keeps the old file's permission bits (and owner, when we may set it); a new file gets
``0644`` minus the umask.

Standard output (``-``), devices and FIFOs are never renamed over: the content is written
through them (see :mod:`netscope.sinks.targets`), and a write error there (ENOSPC on
``/dev/full``, EPIPE) is an OutputError like any other.

Temporary files are named ``.NAME.netscope-PID-RANDOM.tmp``. A run killed by SIGKILL mid-
export cannot remove its own; the next export to the same target removes those whose PID
is no longer a running process (:func:`remove_stale_temps`). Files of any other pattern,
and those of a live process, are never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from netscope.errors import OutputError
from netscope.sinks import targets

TEMP_MARKER = "netscope"


def temp_prefix(name: str, pid: int | None = None) -> str:
    """``.NAME.netscope-PID-`` : the start of this process's temporary files for ``NAME``."""
    return f".{name}.{TEMP_MARKER}-{os.getpid() if pid is None else pid}-"


def _temp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(f".{name}.{TEMP_MARKER}-") + r"(\d+)-[A-Za-z0-9_]+\.tmp\Z")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    except OverflowError:
        return False
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete the temporary files earlier netscope runs left for ``target`` and whose
    process is gone; returns what was removed. Best effort: errors are ignored (a temp
    file we cannot remove is no reason to fail the export)."""
    folder = target.parent
    pattern = _temp_pattern(target.name)
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if match is None or _process_exists(int(match.group(1))):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_text_file(path: str | os.PathLike[str], newline: str | None = None) -> Iterator[TextIO]:
    """Yield a text stream; on clean exit its content is at ``path`` (see module doc)."""
    kind = targets.classify(path)
    if kind is not targets.Kind.FILE:
        with _write_through(path, kind, newline) as stream:
            yield stream
        return
    with _replace_file(targets.resolve_file(path), os.fspath(path), newline) as stream:
        yield stream


@contextlib.contextmanager
def _write_through(
    path: str | os.PathLike[str], kind: targets.Kind, newline: str | None
) -> Iterator[TextIO]:
    """Stdout, a device or a FIFO: write to it as it is."""
    shown = os.fspath(path)
    try:
        fd = targets.open_stream_fd(path, kind)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot open export: {exc.strerror}") from None
    try:
        stream = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
    except BaseException:
        os.close(fd)
        raise
    try:
        with stream:
            yield stream
            stream.flush()
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write export: {exc.strerror}") from None


@contextlib.contextmanager
def _replace_file(target: Path, shown: str, newline: str | None) -> Iterator[TextIO]:
    """A regular (or missing) file: temp file, fsync, rename over ``target``."""
    directory = target.parent
    remove_stale_temps(target)
    try:
        old: os.stat_result | None = os.stat(target)
    except OSError:
        old = None
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=temp_prefix(target.name), suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise OutputError(f"{shown}: cannot create export: {exc.strerror}") from None
    try:
        _copy_identity(fd, old)
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, target)
        _sync_directory(directory)
    except OSError as exc:
        _remove_quietly(tmp_name)
        raise OutputError(f"{shown}: cannot write export: {exc.strerror}") from None
    except BaseException:
        _remove_quietly(tmp_name)
        raise


def _copy_identity(fd: int, old: os.stat_result | None) -> None:
    """Give the temp file the mode the target will have: the old file's permission bits
    and owner, or 0644 under the umask for a new file (mkstemp creates 0600)."""
    if old is None:
        os.fchmod(fd, targets.new_file_mode())
        return
    with contextlib.suppress(OSError):  # only root (or the owner, for its group) may
        os.fchown(fd, old.st_uid, old.st_gid)
    os.fchmod(fd, stat.S_IMODE(old.st_mode))


def _sync_directory(directory: Path) -> None:
    """fsync the directory so the rename itself survives a power cut (best effort)."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _remove_quietly(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)

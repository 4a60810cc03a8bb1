"""Names of rotated pcap segments, and the series an earlier run left (SPEC §4).

``--write-pcap PATH --write-pcap-rotate-mb MB`` writes ``NAME.000001.EXT``,
``NAME.000002.EXT``, … where ``EXT`` is the final suffix of ``PATH`` (kept, so a file
manager still knows what the segments are) and ``NAME`` the rest:

=================  =======================
``out.pcap``       ``out.000001.pcap``
``cap.dump``       ``cap.000001.dump``
``cap``            ``cap.000001`` (no suffix: none added)
``a.tar.pcap``     ``a.tar.000001.pcap``
=================  =======================

The *series* of ``PATH`` is every file in its directory named ``NAME.<digits>.EXT`` with
at least six digits: exactly the names this writer produces, nothing else. A new run
continues numbering after the highest index already there, and existing segments count
towards ``--write-pcap-max-files`` (the original's rule), so the series on disk never
holds more than N segments of this name and no other file is ever touched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

INDEX_DIGITS = 6


def split_name(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(NAME, EXT)`` of ``path``: ``EXT`` is the final suffix with its dot, or ``""``."""
    text = os.fspath(path)
    folder, base = os.path.split(text)
    stem, ext = os.path.splitext(base)  # ".hidden" -> (".hidden", ""): no suffix
    return os.path.join(folder, stem), ext


def segment_path(path: str | os.PathLike[str], index: int) -> str:
    """The ``index``-th segment of ``path``: ``NAME.000001.EXT``."""
    name, ext = split_name(path)
    return f"{name}.{index:0{INDEX_DIGITS}d}{ext}"


def _series_pattern(path: str | os.PathLike[str]) -> re.Pattern[str]:
    name, ext = split_name(path)
    stem = os.path.basename(name)
    digits = r"(\d{" + str(INDEX_DIGITS) + ",})"
    return re.compile(re.escape(stem) + r"\." + digits + re.escape(ext) + r"\Z")


def segment_index(path: str | os.PathLike[str], candidate: str | os.PathLike[str]) -> int | None:
    """The index of ``candidate`` in the series of ``path``, or None if it is not one
    of its segments (compares names in the same directory only)."""
    if os.path.dirname(os.path.abspath(candidate)) != os.path.dirname(os.path.abspath(path)):
        return None
    match = _series_pattern(path).match(os.path.basename(candidate))
    return int(match.group(1)) if match else None


def existing_series(path: str | os.PathLike[str]) -> list[int]:
    """Indices of the segments of ``path`` already on disk, ascending (regular files and
    symlinks only; a directory that happens to match is not ours)."""
    folder = os.path.dirname(os.fspath(path)) or "."
    pattern = _series_pattern(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return []  # creating the first segment reports the problem
    found = []
    for name in names:
        match = pattern.match(name)
        if match is not None and not os.path.isdir(os.path.join(folder, name)):
            found.append(int(match.group(1)))
    return sorted(found)


def display(path: str | os.PathLike[str], index: int) -> str:
    """A segment's name without its directory (for the summary)."""
    return Path(segment_path(path, index)).name

"""Open a capture file by content (magic number), not by extension.

``-`` is standard input (``tcpdump -w - | netscope --read-pcap -``). Named pipes and other
non-regular files are opened like files; both are read as streams (see ``chunks``): the
format is chosen from the first four bytes, which are then handed to the reader instead of
seeking back, so nothing here needs a seekable input.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from netscope.errors import CaptureError
from netscope.sources.base import DEFAULT_BATCH_PACKETS, DEFAULT_CHUNK_BYTES
from netscope.sources.chunks import read_exact
from netscope.sources.pcap import PcapReader, is_pcap_magic
from netscope.sources.pcapng import PcapngReader, is_pcapng_magic

STDIN_PATH = "-"
STDIN_NAME = "<stdin>"  # how standard input is named in warnings and errors


def open_capture_file(
    path: str | os.PathLike[str],
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    batch_packets: int = DEFAULT_BATCH_PACKETS,
) -> PcapReader | PcapngReader:
    """Open ``path`` (``-``: standard input) as pcap or pcapng; CaptureError (exit 1) for
    anything else."""
    if os.fspath(path) == STDIN_PATH:
        name, fileobj = STDIN_NAME, _open_stdin()
    else:
        name = os.fspath(path)
        fileobj = _open_path(name)
    try:
        first4 = read_exact(fileobj, 4)
        if is_pcapng_magic(first4):
            return PcapngReader(fileobj, name, chunk_bytes, batch_packets, head=first4)
        if is_pcap_magic(first4):
            return PcapReader(fileobj, name, chunk_bytes, batch_packets, head=first4)
    except CaptureError:
        fileobj.close()
        raise
    except OSError as exc:
        fileobj.close()
        raise CaptureError(f"{name}: cannot read: {exc.strerror}") from None
    fileobj.close()
    if not first4:
        raise CaptureError(f"{name}: empty file, not a capture file")
    raise CaptureError(f"{name}: not a capture file (neither pcap nor pcapng)")


def _open_path(name: str) -> BinaryIO:
    try:
        return open(name, "rb", buffering=0)  # noqa: SIM115 - the reader owns it
    except FileNotFoundError:
        raise CaptureError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{name}: is a directory, not a capture file") from None
    except PermissionError:
        raise CaptureError(f"{name}: permission denied") from None
    except OSError as exc:
        raise CaptureError(f"{name}: cannot open: {exc.strerror}") from None


def _open_stdin() -> BinaryIO:
    """A private duplicate of descriptor 0: the reader may close it without closing stdin.

    A terminal is refused rather than waited on: nobody types a capture file.
    """
    try:
        fd = os.dup(0)
    except OSError:
        raise CaptureError(f"{STDIN_NAME}: standard input is closed") from None
    if os.isatty(fd):
        os.close(fd)
        raise CaptureError(
            f"{STDIN_NAME}: standard input is a terminal",
            hint="pipe a capture into it, e.g. tcpdump -w - | netscope --read-pcap -",
        )
    return open(fd, "rb", buffering=0)  # noqa: SIM115 - the reader owns it

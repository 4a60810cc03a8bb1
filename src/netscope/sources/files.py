"""Open a capture file by content (magic number), not by extension."""

from __future__ import annotations

import os

from netscope.errors import CaptureError
from netscope.sources.base import DEFAULT_BATCH_PACKETS, DEFAULT_CHUNK_BYTES
from netscope.sources.pcap import PcapReader, is_pcap_magic
from netscope.sources.pcapng import PcapngReader, is_pcapng_magic


def open_capture_file(
    path: str | os.PathLike[str],
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    batch_packets: int = DEFAULT_BATCH_PACKETS,
) -> PcapReader | PcapngReader:
    """Open ``path`` as pcap or pcapng; CaptureError (exit 1) for anything else."""
    name = os.fspath(path)
    try:
        fileobj = open(name, "rb", buffering=0)  # noqa: SIM115 - the reader owns it
    except FileNotFoundError:
        raise CaptureError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{name}: is a directory, not a capture file") from None
    except PermissionError:
        raise CaptureError(f"{name}: permission denied") from None
    except OSError as exc:
        raise CaptureError(f"{name}: cannot open: {exc.strerror}") from None
    try:
        first4 = fileobj.read(4)
        fileobj.seek(0)
        if is_pcapng_magic(first4):
            return PcapngReader(fileobj, name, chunk_bytes, batch_packets)
        if is_pcap_magic(first4):
            return PcapReader(fileobj, name, chunk_bytes, batch_packets)
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

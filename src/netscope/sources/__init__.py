"""Packet sources: everything that turns files or interfaces into PacketBatches."""

from netscope.sources.base import BatchSource, SourceReport
from netscope.sources.files import open_capture_file

__all__ = ["BatchSource", "SourceReport", "open_capture_file"]

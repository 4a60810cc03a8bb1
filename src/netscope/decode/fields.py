"""Headers as declarations: a fixed header is a table of fields, written once.

A protocol module declares its fixed header as a :class:`Header` — an ordered
table of (field name, struct format or bit slice, formatter, label). The same
table drives

- parsing (one precompiled ``struct.Struct`` read straight out of the packet's
  memoryview: no slicing, no copy of the packet),
- the per-layer ``fields`` list shown by the CLI detail view and the dashboard's
  packet inspector (``Header.describe``).

So a field is named, sized and formatted in exactly one place, and a new protocol
is a short table plus the few lines of logic its header needs. All headers are
network byte order unless a different ``byte_order`` is given.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Formatter = Callable[[Any], str]
"""Turns one raw value (int or bytes) into its display text."""


# --- formatters -------------------------------------------------------------------


def dec(value: int) -> str:
    """Plain decimal (the default)."""
    return str(value)


def hex_width(digits: int) -> Formatter:
    """``0x`` + fixed-width lowercase hex, e.g. ``hex_width(4)(0x800) == "0x0800"``."""

    def fmt(value: int) -> str:
        return f"0x{value:0{digits}x}"

    return fmt


hex2 = hex_width(2)
hex4 = hex_width(4)
hex8 = hex_width(8)


def hex_dec4(value: int) -> str:
    """``0x1234 (4660)``: identifiers people look up in either base."""
    return f"0x{value:04x} ({value})"


def mac(value: bytes) -> str:
    """Colon-separated lowercase MAC address."""
    return ":".join(f"{b:02x}" for b in value)


def ipv4_text(value: bytes) -> str:
    """Dotted quad."""
    return ".".join(str(b) for b in value)


def ipv6_text(value: bytes) -> str:
    """RFC 5952 text (compressed zeros, lowercase)."""
    return str(ipaddress.IPv6Address(bytes(value)))


def flag(value: int) -> str:
    """A one-bit flag: ``set`` / ``not set`` (reads better than 1/0 in a detail tree)."""
    return "set" if value else "not set"


def enum(names: Mapping[int, str], fmt: Formatter = dec) -> Formatter:
    """``value (name)`` when the value is known, else just the formatted value."""

    def show(value: int) -> str:
        name = names.get(value)
        return f"{fmt(value)} ({name})" if name else fmt(value)

    return show


def byte_count(value: int) -> str:
    return f"{value} bytes"


def times(factor: int, unit: str = "bytes") -> Formatter:
    """For fields stored in units: ``times(4)(5) == "20 bytes (5)"`` (IHL, TCP offset)."""

    def show(value: int) -> str:
        return f"{value * factor} {unit} ({value})"

    return show


# --- field declarations -----------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A whole-byte field: ``fmt`` is one struct code (``B``, ``H``, ``I``, ``6s`` …)."""

    name: str
    fmt: str
    show: Formatter = dec
    label: str = ""  # display label; empty → ``name`` with ``_`` replaced by spaces


@dataclass(frozen=True)
class Bit:
    """A bit slice inside a :class:`Bits` storage unit (declared most significant first)."""

    name: str
    width: int
    show: Formatter = dec
    label: str = ""


@dataclass(frozen=True)
class Bits:
    """A storage unit (``B``/``H``/``I``) split into bit slices, e.g. IPv4 version/IHL."""

    fmt: str
    parts: tuple[Bit, ...]


def _label(entry: Field | Bit) -> str:
    return entry.label or entry.name.replace("_", " ")


class Header:
    """A fixed-size header layout; see the module docstring for why it exists.

    ``unpack`` returns ``{field name: value}`` (ints, and ``bytes`` for ``Ns``
    fields — addresses are the only small copies the decoders make).
    """

    def __init__(self, name: str, entries: Sequence[Field | Bits], byte_order: str = "!") -> None:
        self.name = name
        self.entries = tuple(entries)
        self._struct = struct.Struct(byte_order + "".join(e.fmt for e in self.entries))
        self.size = self._struct.size
        # Flattened once: (name, label, formatter) per field in wire order, and for each
        # struct item either its field name or its bit slices as (name, shift, mask).
        self._display: list[tuple[str, str, Formatter]] = []
        self._items: list[str | list[tuple[str, int, int]]] = []
        for entry in self.entries:
            if isinstance(entry, Bits):
                width = struct.calcsize("!" + entry.fmt) * 8
                if sum(p.width for p in entry.parts) != width:
                    raise ValueError(f"{name}: bit slices of {entry.fmt!r} must cover {width} bits")
                slices = []
                for part in entry.parts:
                    width -= part.width
                    slices.append((part.name, width, (1 << part.width) - 1))
                    self._display.append((part.name, _label(part), part.show))
                self._items.append(slices)
            else:
                self._items.append(entry.name)
                self._display.append((entry.name, _label(entry), entry.show))

    def names(self) -> list[str]:
        """Every field name in wire order (bit slices expanded)."""
        return [name for name, _label, _show in self._display]

    def unpack(self, data: memoryview, offset: int) -> dict[str, Any]:
        """Read the header at ``offset``; the caller has checked ``size`` bytes are there."""
        values: dict[str, Any] = {}
        raw_values = self._struct.unpack_from(data, offset)
        for item, raw in zip(self._items, raw_values, strict=True):
            if isinstance(item, str):
                values[item] = raw
            else:
                for name, shift, mask in item:
                    values[name] = (raw >> shift) & mask
        return values

    def describe(
        self, values: Mapping[str, Any], overrides: Mapping[str, str] | None = None
    ) -> list[tuple[str, str]]:
        """``(label, text)`` per field in wire order; ``overrides`` replaces a field's text
        (e.g. a checksum annotated with its verification result)."""
        out: list[tuple[str, str]] = []
        for name, label, show in self._display:
            if overrides and name in overrides:
                out.append((label, overrides[name]))
            elif name in values:
                out.append((label, show(values[name])))
        return out

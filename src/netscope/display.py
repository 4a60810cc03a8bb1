"""Human-readable packet output: the one-line summary, the detail view, hex dumps.

Text only — the layers come from ``netscope.decode``; each layer already carries
its own summary segment and detail fields, so this module only arranges them
(SPEC §6 "Per-packet output"). Used by the CLI per-packet lines and detailed
view (``--hex-dump`` / ``-vv``) and by the dashboard's packet detail messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from netscope.constants import ERR_OK, ERR_UNSUPPORTED_LINK, ERROR_NAMES
from netscope.decode import DecodedPacket
from netscope.decode.link import link_name, link_type_text

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(ts_ns: int) -> str:
    """``HH:MM:SS.micro`` of the UTC time of day, as in the per-packet line.

    Plain integer arithmetic (floor division), so pre-1970 and absurd timestamps
    from damaged files format too instead of raising.
    """
    seconds, micros = divmod(ts_ns // 1000, 1_000_000)
    seconds %= 86_400
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}.{micros:06d}"


def format_datetime(ts_ns: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.micro UTC`` for the detail view."""
    try:
        moment = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    except OverflowError:  # beyond year 1..9999: only possible from a damaged file
        return f"{ts_ns} ns from the epoch (outside the calendar)"
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _error_text(code: int) -> str:
    return ERROR_NAMES.get(code, f"error {code}")


def _payload_text(pkt: DecodedPacket) -> str:
    """``N bytes`` (IP-declared) plus how many were captured when that is fewer."""
    cols = pkt.columns()
    off, length = cols["payload_off"], cols["payload_len"]
    have = max(0, min(length, pkt.caplen - off))
    return f"{length} bytes" if have == length else f"{length} bytes ({have} captured)"


def format_summary(index: int, ts_ns: int, linktype: int, pkt: DecodedPacket) -> str:
    """One line per packet (SPEC §6)::

        #12     13:25:17.270862 Link: Ethernet VLAN:10 | IPv4: 10.0.0.1 -> 10.0.0.2 ttl=64
        len=60 DF | TCP :51234 -> :443 SYN seq=1 ack=0 win=64240

    Layer segments come from each layer's ``summary``; the line ends with
    `` | payload: N bytes`` when there is transport payload and `` | error: …`` when
    the packet did not decode cleanly.
    """
    parts = [f"#{index:<6} {format_time(ts_ns)} Link: {link_name(linktype)}"]
    for layer in pkt.layers:
        if layer.summary:
            parts.append((" " if layer.inline else " | ") + layer.summary)
    if pkt.columns()["payload_len"] > 0:
        parts.append(f" | payload: {_payload_text(pkt)}")
    if pkt.error not in (ERR_OK, ERR_UNSUPPORTED_LINK):
        parts.append(f" | error: {_error_text(pkt.error)}")
    return "".join(parts)


def _block(title: str, fields: list[tuple[str, str]]) -> list[str]:
    """``title`` then ``  label: value`` lines with the values aligned."""
    width = max((len(label) for label, _ in fields), default=0) + 1
    return [title] + [f"  {label + ':':<{width}} {value}" for label, value in fields]


def format_detail(
    index: int,
    ts_ns: int,
    linktype: int,
    caplen: int,
    wirelen: int,
    pkt: DecodedPacket,
    data: memoryview | bytes,
    hex_limit: int | None = None,
) -> str:
    """Detailed view: a frame block, one block per layer, the payload, then a hex dump.

    ``hex_limit`` caps the dump (the dashboard stores at most ``payload_bytes``).
    """
    frame = [
        ("time", format_datetime(ts_ns)),
        ("link type", link_type_text(linktype)),
        ("captured", f"{caplen} bytes"),
        ("on wire", f"{wirelen} bytes"),
    ]
    if pkt.error != ERR_OK:
        frame.append(("error", _error_text(pkt.error)))
    lines = _block(f"Frame #{index}", frame)
    for layer in pkt.layers:
        lines += _block(layer.name, layer.fields)
    cols = pkt.columns()
    if cols["payload_off"] >= 0:
        lines += _block(
            "Payload", [("offset", str(cols["payload_off"])), ("length", _payload_text(pkt))]
        )
    lines.append(hex_dump(data, limit=hex_limit))
    return "\n".join(lines)


def hex_dump(data: memoryview | bytes, limit: int | None = None) -> str:
    """Classic hex dump: offset, 16 bytes in two groups of 8, ASCII ('.' if unprintable).

    With ``limit``, only the first ``limit`` bytes are shown, followed by a line
    saying how many were left out.
    """
    view = memoryview(data)
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    total = view.nbytes
    shown = total if limit is None else max(0, min(limit, total))
    width = max(4, len(f"{max(shown - 1, 0):x}"))
    lines = []
    for start in range(0, shown, 16):
        chunk = view[start : min(start + 16, shown)]
        hexes = [f"{b:02x}" for b in chunk]
        left, right = " ".join(hexes[:8]), " ".join(hexes[8:])
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{start:0{width}x}  {left:<23}  {right:<23}  {text}")
    if shown < total:
        lines.append(f"… {total - shown} more bytes")
    return "\n".join(lines)

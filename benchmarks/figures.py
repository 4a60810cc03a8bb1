"""One measured figure per SPEC §9 target, and the table ``python -m benchmarks`` ends with.

Each benchmark module turns its own results into :class:`Figure`s (a ``figures(...)``
function beside its ``main``); the suite collects them in SPEC order and prints
:func:`format_table`. A figure that was not measured in this run (no browser, ``--cold`` not
given, a trace skipped by ``--quick``) is still a row, with status ``n/a`` and the reason in
the measured column, so the table always has every target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PASS = "PASS"
FAIL = "FAIL"
NA = "n/a"


@dataclass(frozen=True)
class Figure:
    """A measured value against its target.

    ``passed`` is None when nothing was measured (status ``n/a``). ``measured_text``
    overrides the default rendering of ``measured_value`` + ``unit`` when a row needs more
    than one number (e.g. "2.6 Mpps, 4.4x tcpdump's time"). ``samples`` are the raw
    per-repetition values behind the figure, in ``unit``, for ``--json``.
    """

    name: str
    target_text: str
    measured_value: float | None
    unit: str
    passed: bool | None
    measured_text: str | None = None
    samples: tuple[float, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.passed is None:
            return NA
        return PASS if self.passed else FAIL

    @property
    def measured(self) -> str:
        if self.measured_text is not None:
            return self.measured_text
        if self.measured_value is None:
            return "not measured"
        return f"{format_number(self.measured_value)} {self.unit}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target_text,
            "measured_value": self.measured_value,
            "unit": self.unit,
            "measured": self.measured,
            "status": self.status,
            "samples": list(self.samples),
            **({"extra": self.extra} if self.extra else {}),
        }


def format_number(value: float) -> str:
    """Three significant digits, without an exponent for the magnitudes we print."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def at_most(
    name: str,
    limit: float,
    value: float,
    unit: str,
    samples: Sequence[float] = (),
    *,
    strict: bool = False,
    measured_text: str | None = None,
    target_text: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Figure:
    """A "lower is better" target: ``<= limit`` (``< limit`` when ``strict``)."""
    ok = value < limit if strict else value <= limit
    op = "<" if strict else "<="
    return Figure(
        name,
        target_text or f"{op} {limit:g} {unit}".strip(),
        value,
        unit,
        ok,
        measured_text,
        tuple(samples),
        extra or {},
    )


def at_least(
    name: str,
    limit: float,
    value: float,
    unit: str,
    samples: Sequence[float] = (),
    *,
    measured_text: str | None = None,
    target_text: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Figure:
    """A "higher is better" target: ``>= limit``."""
    return Figure(
        name,
        target_text or f">= {limit:g} {unit}".strip(),
        value,
        unit,
        value >= limit,
        measured_text,
        tuple(samples),
        extra or {},
    )


def not_measured(name: str, target_text: str, reason: str) -> Figure:
    """A row for a target this run did not measure (status ``n/a``)."""
    return Figure(name, target_text, None, "", None, measured_text=reason)


def format_table(figures: Iterable[Figure], title: str = "") -> str:
    """A plain-text table with columns figure, target, measured, status.

    Column widths follow the longest cell, so the table stays aligned whatever was measured;
    a trailing line counts each status.
    """
    rows = [(f.name, f.target_text, f.measured, f.status) for f in figures]
    head = ("figure", "target", "measured", "status")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [title] if title else []
    out.append(line(head))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(r) for r in rows)
    counts = {s: sum(1 for r in rows if r[3] == s) for s in (PASS, FAIL, NA)}
    out.append(f"{counts[PASS]} {PASS}, {counts[FAIL]} {FAIL}, {counts[NA]} {NA}")
    return "\n".join(out)

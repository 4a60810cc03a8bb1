"""Replay an offline capture at the pace it was recorded (``--replay-speed X``).

Offline input normally runs as fast as the machine goes, so a five-minute incident is over in a
blink and the dashboard only shows its end. The pacer sits between the source and the processor
and releases packets when the wall clock reaches their capture time (scaled by ``speed``), so
stats lines, top-N, alerts and the dashboard unfold as they did on the wire.

It never touches packets one by one: each batch is cut (``numpy.searchsorted`` on its
timestamps) into windows of ``STEP_S`` of wall time, and the thread sleeps between windows.
Pause, resume and seek come from another thread (the dashboard's event loop) and are honoured
between windows; a seek fast-forwards (packets are still processed, just not waited for) up to
the requested capture time, which is how a recorded capture can "jump": flows and counters stay
exact because nothing is skipped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from netscope.batch import PacketBatch

STEP_S = 0.02  # wall time per released window: smooth enough for a 33 ms dashboard tick
_MAX_WAIT_S = 0.25  # sleep in slices so pause/seek/Ctrl-C are noticed promptly


@dataclass(frozen=True)
class ReplayState:
    """What the dashboard shows about a replay (JSON-able via :meth:`as_dict`)."""

    speed: float
    paused: bool
    position_ns: int | None  # capture time of the last released packet
    start_ns: int | None  # capture time of the first packet
    end_ns: int | None  # capture time of the last packet, when known in advance

    def as_dict(self) -> dict[str, Any]:
        return {
            "speed": self.speed,
            "paused": self.paused,
            "position": None if self.position_ns is None else self.position_ns / 1e9,
            "start": None if self.start_ns is None else self.start_ns / 1e9,
            "end": None if self.end_ns is None else self.end_ns / 1e9,
        }


class ReplayPacer:
    """Releases batches (cut into windows) when their capture time is due.

    ``clock`` and ``sleep`` are injectable so the pacing arithmetic is tested without waiting.
    """

    def __init__(
        self,
        speed: float,
        end_ns: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"replay speed must be > 0, got {speed!r}")
        self.speed = speed
        self.end_ns = end_ns
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._anchor: tuple[float, int] | None = None  # (wall s, capture ns) that line up
        self._paused_at: float | None = None
        self._seek_ns: int | None = None
        self._start_ns: int | None = None
        self._position_ns: int | None = None

    # ------------------------------------------------------------------ control (any thread)

    def pause(self) -> None:
        with self._cond:
            if self._paused_at is None:
                self._paused_at = self._clock()
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            if self._paused_at is not None:
                if self._anchor is not None:  # the paused time does not count
                    wall, cap = self._anchor
                    self._anchor = (wall + self._clock() - self._paused_at, cap)
                self._paused_at = None
            self._cond.notify_all()

    def seek(self, to_ns: int) -> None:
        """Fast-forward to capture time ``to_ns`` (a time already passed is ignored)."""
        with self._cond:
            if self._position_ns is None or to_ns > self._position_ns:
                self._seek_ns = to_ns
            self._cond.notify_all()

    def state(self) -> ReplayState:
        with self._cond:
            return ReplayState(
                self.speed,
                self._paused_at is not None,
                self._position_ns,
                self._start_ns,
                self.end_ns,
            )

    # ------------------------------------------------------------------ the capture thread

    def paced(self, batches: Iterable[PacketBatch]) -> Iterator[PacketBatch]:
        """The same packets, in the same order, released no earlier than their time."""
        for batch in batches:
            if batch.count == 0:
                yield batch
                continue
            for window in self._windows(batch):
                with self._cond:
                    if self._anchor is None:  # the first packet's time is "now"
                        self._anchor = (self._clock(), int(window.ts_ns[0]))
                        self._start_ns = int(window.ts_ns[0])
                self._wait_for(int(window.ts_ns[window.count - 1]))
                with self._cond:
                    self._position_ns = int(window.ts_ns[window.count - 1])
                yield window

    def _windows(self, batch: PacketBatch) -> Iterator[PacketBatch]:
        """Cut ``batch`` where its timestamps cross STEP_S of (scaled) capture time."""
        ts = batch.ts_ns[: batch.count]
        step_ns = max(1, int(STEP_S * self.speed * 1e9))
        first = int(ts[0])
        span = int(ts.max()) - first
        if span < step_ns:
            yield batch
            return
        # timestamps need not be sorted (merged interfaces, clock steps): cut on the running
        # maximum, which is sorted, so every packet is released exactly once and in order
        running = np.maximum.accumulate(ts)
        edges = first + step_ns * np.arange(1, span // step_ns + 1, dtype=np.int64)
        cuts = np.searchsorted(running, edges, side="right")
        start = 0
        for cut in np.unique(cuts).tolist():
            if cut > start:
                yield batch.window(start, cut)
                start = cut
        if start < batch.count:
            yield batch.window(start, batch.count)

    def _wait_for(self, ts_ns: int) -> None:
        with self._cond:
            while True:
                if self._seek_ns is not None:
                    if ts_ns < self._seek_ns:
                        return  # fast-forward: release without waiting
                    self._seek_ns = None
                    self._anchor = (self._clock(), ts_ns)  # continue paced from here
                if self._paused_at is not None:
                    self._cond.wait(_MAX_WAIT_S)
                    continue
                assert self._anchor is not None
                wall, cap = self._anchor
                due = wall + (ts_ns - cap) / 1e9 / self.speed
                delay = due - self._clock()
                if delay <= 0:
                    return
                if self._sleep is not None:  # tests: a fake clock advances by sleeping
                    self._sleep(min(delay, _MAX_WAIT_S))
                else:
                    self._cond.wait(min(delay, _MAX_WAIT_S))


def capture_end_ns(open_source: Callable[[], Any]) -> int | None:
    """The largest timestamp of a capture (a first pass over it), or None if unreadable.

    Only replays with a dashboard want this (its seek bar spans the capture); reading a file
    twice costs a fraction of the replay itself.
    """
    try:
        source = open_source()
    except Exception:  # noqa: BLE001 - the real run reports the error
        return None
    end: int | None = None
    try:
        for batch in source.batches():
            if batch.count:
                top = int(batch.ts_ns[: batch.count].max())
                end = top if end is None else max(end, top)
    except Exception:  # noqa: BLE001 - a damaged tail: the span read so far
        pass
    finally:
        source.close()
    return end

"""--replay-speed: the pacer releases every packet once, in order, never before its time.

The arithmetic runs against a fake clock (sleeping advances it), so these tests are exact and
take no wall time; tests/web/test_replay_browser.py checks the real pacing end to end.
"""

from __future__ import annotations

import numpy as np
import pytest

from netscope.batch import PacketBatch, batch_from_packets
from netscope.pipeline.pacing import STEP_S, ReplayPacer

S = 1_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.on_sleep: list[object] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds
        for hook in self.on_sleep:
            hook()  # type: ignore[operator]


def _batch(ts: list[int], first_index: int = 1) -> PacketBatch:
    return batch_from_packets(
        [bytes([i % 256]) * 3 for i in range(len(ts))], ts, first_index=first_index
    )


def _run(
    pacer: ReplayPacer, clock: FakeClock, batches: list[PacketBatch]
) -> list[tuple[float, PacketBatch]]:
    return [(clock.now, w) for w in pacer.paced(batches)]


def test_every_packet_once_in_order_and_never_early() -> None:
    clock = FakeClock()
    ts = [10 * S + i * 7_000_000 for i in range(1000)]  # 7 s of capture, 7 ms apart
    batches = [_batch(ts[:400]), _batch(ts[400:], first_index=401)]
    pacer = ReplayPacer(2.0, clock=clock, sleep=clock.sleep)
    start = clock.now  # the first packet's capture time is "now"
    out = _run(pacer, clock, batches)
    released = np.concatenate([w.ts_ns[: w.count] for _, w in out])
    assert released.tolist() == ts
    assert [w.first_index for _, w in out][0] == 1
    indices = np.concatenate([np.arange(w.count) + w.first_index for _, w in out])
    assert indices.tolist() == list(range(1, 1001))
    for at, window in out:
        last = int(window.ts_ns[window.count - 1])
        due = start + (last - ts[0]) / S / 2.0
        assert at >= due - 1e-9  # never early
        assert at - due < STEP_S + 0.25  # nor held much past its window
    assert out[-1][0] - start == pytest.approx((ts[-1] - ts[0]) / S / 2.0, abs=1e-6)


def test_windows_are_small_enough_for_a_smooth_dashboard() -> None:
    clock = FakeClock()
    ts = [i * 1_000_000 for i in range(2000)]  # 2 s in one batch
    pacer = ReplayPacer(1.0, clock=clock, sleep=clock.sleep)
    windows = [w for _, w in _run(pacer, clock, [_batch(ts)])]
    spans = [int(w.ts_ns[w.count - 1] - w.ts_ns[0]) / S for w in windows]
    assert len(windows) >= 2.0 / STEP_S * 0.9
    assert max(spans) <= STEP_S


def test_pause_holds_and_resume_does_not_count_the_pause() -> None:
    clock = FakeClock()
    ts = [i * 100_000_000 for i in range(30)]  # 3 s
    pacer = ReplayPacer(1.0, clock=clock, sleep=clock.sleep)
    gen = pacer.paced([_batch(ts)])
    first = next(gen)
    t0 = clock.now
    pacer.pause()
    assert pacer.state().paused
    paused_for = 5.0

    def resume_later() -> None:
        if clock.now - t0 >= paused_for and pacer.state().paused:
            pacer.resume()

    # while paused the pacer waits on its condition (real time): drive it with resume from
    # a thread that advances the fake clock
    import threading

    def driver() -> None:
        import time

        while pacer.state().paused:
            clock.now += 0.5
            resume_later()
            time.sleep(0.001)

    thread = threading.Thread(target=driver)
    thread.start()
    rest = list(gen)
    thread.join()
    assert first.count + sum(w.count for w in rest) == 30
    # the last packet (2.9 s after the first) came 2.9 s of *unpaused* time after t0
    assert clock.now - t0 == pytest.approx(2.9 + paused_for, abs=0.6)


def test_seek_fast_forwards_without_skipping_packets() -> None:
    clock = FakeClock()
    ts = [i * 10_000_000 for i in range(1000)]  # 10 s
    pacer = ReplayPacer(1.0, clock=clock, sleep=clock.sleep)
    gen = pacer.paced([_batch(ts)])
    got = [next(gen)]
    t0 = clock.now
    pacer.seek(8 * S)
    got += list(gen)
    assert sum(w.count for w in got) == 1000  # nothing skipped: flows stay exact
    assert clock.now - t0 == pytest.approx(2.0, abs=0.1)  # only 8 s -> 10 s was paced
    assert pacer.state().position_ns == ts[-1]


def test_seek_backwards_is_ignored() -> None:
    clock = FakeClock()
    ts = [i * 10_000_000 for i in range(300)]
    pacer = ReplayPacer(1.0, clock=clock, sleep=clock.sleep)
    gen = pacer.paced([_batch(ts)])
    next(gen)
    next(gen)
    pacer.seek(0)
    t0 = clock.now
    rest = list(gen)
    assert rest and clock.now - t0 > 2.5


def test_unsorted_timestamps_are_released_once() -> None:
    clock = FakeClock()
    ts = [0, 3 * S, 1 * S, 2 * S, 5 * S, 4 * S]
    pacer = ReplayPacer(1.0, clock=clock, sleep=clock.sleep)
    out = [w for _, w in _run(pacer, clock, [_batch(ts)])]
    assert np.concatenate([w.ts_ns[: w.count] for w in out]).tolist() == ts


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_speed_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        ReplayPacer(bad)


def test_state_for_the_dashboard() -> None:
    pacer = ReplayPacer(10.0, end_ns=20 * S)
    state = pacer.state().as_dict()
    assert state == {"speed": 10.0, "paused": False, "position": None, "start": None, "end": 20.0}

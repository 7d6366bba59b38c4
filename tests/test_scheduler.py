"""The cycle scheduler: first cycle at once, no overlap, interval re-read, stop on an Event."""

from __future__ import annotations

import threading

from agent.scheduler import MAX_JITTER_S, jitter, run_every


class RecordingEvent(threading.Event):
    """A real Event that records how long each wait asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout if timeout is not None else -1)
        return super().wait(0)


def test_first_cycle_runs_before_any_wait_and_the_pace_follows_the_interval() -> None:
    stop = RecordingEvent()
    clock = [100.0]
    intervals = iter([60.0, 60.0, 5.0, 5.0])
    calls: list[tuple[float, int]] = []

    def cycle() -> None:
        calls.append((clock[0], len(stop.waits)))
        clock[0] += 1.0  # each cycle takes one (fake) second
        if len(calls) == 2:
            stop.set()

    n = run_every(cycle, lambda: next(intervals), stop, monotonic=lambda: clock[0])
    assert n == 2
    assert calls[0] == (100.0, 0)  # ran before waiting at all
    # wait = interval (60) + jitter (0..6) - the second the cycle took
    assert 59.0 <= stop.waits[0] <= 65.0


def test_an_overrunning_cycle_is_followed_at_once_not_in_a_burst() -> None:
    stop = RecordingEvent()
    clock = [0.0]

    def slow_cycle() -> None:
        clock[0] += 500.0  # longer than the interval
        if len(stop.waits) == 2:
            stop.set()

    run_every(slow_cycle, lambda: 10.0, stop, monotonic=lambda: clock[0])
    assert stop.waits[:2] == [0.0, 0.0]


def test_cycles_never_overlap() -> None:
    stop = threading.Event()
    active = []
    overlaps = []

    def cycle() -> None:
        active.append(1)
        overlaps.append(len(active) > 1)
        active.pop()
        if len(overlaps) >= 5:
            stop.set()

    run_every(cycle, lambda: 0.001, stop)
    assert overlaps == [False] * 5


def test_jitter_is_bounded() -> None:
    assert jitter(300, rng=lambda a, b: b) == 30.0
    assert jitter(86400, rng=lambda a, b: b) == MAX_JITTER_S
    assert jitter(10, rng=lambda a, b: a) == 0.0

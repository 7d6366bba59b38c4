"""Fixed-interval scheduling on the monotonic clock: first cycle at once, then every interval
plus a little jitter, never two cycles at once, and an idle wait (no polling) in between.

Wall-clock jumps (NTP steps, a Pi without an RTC booting in 1970) do not move the schedule:
only ``time.monotonic`` is used here. Jitter spreads a fleet's reports so thousands of devices
rebooted together do not publish in the same second.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

MAX_JITTER_S = 30.0
JITTER_FRACTION = 0.1


def jitter(interval_s: float, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Up to 10 % of the interval, at most 30 s."""
    return rng(0.0, min(interval_s * JITTER_FRACTION, MAX_JITTER_S))


def run_every(
    cycle: Callable[[], None],
    interval_s: Callable[[], float],
    stop: threading.Event,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``cycle`` until ``stop`` is set; returns the number of cycles run.

    ``interval_s`` is asked after every cycle, so a configuration update changes the pace
    without a restart. A cycle that overruns the interval is followed at once by the next one
    (no overlap, no burst of catch-up cycles).
    """
    cycles = 0
    while not stop.is_set():
        started = monotonic()
        cycle()
        cycles += 1
        wait = started + interval_s() + jitter(interval_s()) - monotonic()
        if stop.wait(max(0.0, wait)):
            break
    return cycles

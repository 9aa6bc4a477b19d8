"""Time as the pipeline's waits see it: one small seam and one poll-until-deadline helper.

Every wait of the project (a target settling, an address answering, a container getting
healthy, a lock being free) is `poll_until` over a `Clock`, so deadlines are tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, overload

T = TypeVar("T")


class Clock(Protocol):
    """Monotonic time and sleeping; replaced by a fake in tests."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class Deadline:
    """How much of a wait is spent: started on a clock, done once `seconds` have passed."""

    def __init__(self, seconds: float, clock: Clock = SYSTEM_CLOCK) -> None:
        """Start counting `seconds` on `clock` now."""
        self.seconds = seconds
        self.clock = clock
        self.started = clock.now()

    @property
    def elapsed(self) -> float:
        """Seconds since the wait started."""
        return self.clock.now() - self.started

    @property
    def passed(self) -> bool:
        """Whether the deadline has passed (to within a nanosecond: sums of float sleeps drift)."""
        return self.elapsed >= self.seconds - 1e-9

    @property
    def fraction(self) -> float:
        """The share of the deadline used, 0.0 .. 1.0 (for progress bars)."""
        return min(self.elapsed / self.seconds, 1.0) if self.seconds > 0 else 1.0


@dataclass(frozen=True)
class GaveUp:
    """What `poll_until` gives back when its deadline passed without an answer (not an error by itself).

    A wait whose deadline is a normal end (a window that closes, a process that may still run)
    checks `isinstance(result, GaveUp)`; a wait for which it is a failure passes `timed_out`.
    """

    deadline: Deadline


@overload
def poll_until(
    look: Callable[[Deadline], T | None],
    seconds: float,
    interval: float | Callable[[], float],
    timed_out: Callable[[Deadline], BaseException],
    *,
    clock: Clock = ...,
) -> T: ...


@overload
def poll_until(
    look: Callable[[Deadline], T | None],
    seconds: float,
    interval: float | Callable[[], float],
    timed_out: None = None,
    *,
    clock: Clock = ...,
) -> T | GaveUp: ...


def poll_until(
    look: Callable[[Deadline], T | None],
    seconds: float,
    interval: float | Callable[[], float],
    timed_out: Callable[[Deadline], BaseException] | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> T | GaveUp:
    """The first non-None answer of `look`, asked every `interval` seconds for up to `seconds`.

    The one wait of the project: every poll of a target, an address, a container or a lock goes
    through it, so every wait has a deadline and tests drive it with a fake clock. `look` gets
    the deadline (to log progress or decide on its own). At the deadline, after one last look
    (the sleep before it is shortened: a wait ends on time, not up to an interval late),
    `timed_out(deadline)` is raised when given; without it the wait gives back `GaveUp`, for
    waits whose deadline is a normal end. `interval` may be a function, asked before each sleep
    (a wait that speeds up once what it waits for has begun).
    """
    deadline = Deadline(seconds, clock)
    while True:
        answer = look(deadline)
        if answer is not None:
            return answer
        if deadline.passed:
            if timed_out is None:
                return GaveUp(deadline)
            raise timed_out(deadline)
        pause = interval() if callable(interval) else interval
        clock.sleep(max(0.0, min(pause, seconds - deadline.elapsed)))

"""`flows.clock`: the one poll-until-deadline helper and its deadline, driven by the fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flows.clock import SYSTEM_CLOCK, Deadline, GaveUp, poll_until
from tests.flows.fakes import FakeClock


class TimedOut(Exception):
    """What the tests' `timed_out` raises, with the deadline it got."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__(f"after {deadline.elapsed:g}s of {deadline.seconds:g}s")
        self.deadline = deadline


def test_the_first_answer_returns_without_sleeping() -> None:
    clock = FakeClock()
    assert poll_until(lambda deadline: "ready", 10, 1, TimedOut, clock=clock) == "ready"
    assert clock.time == 0


def test_none_means_look_again_after_the_interval() -> None:
    clock = FakeClock()
    looks: list[float] = []

    def look(deadline: Deadline) -> int | None:
        looks.append(deadline.elapsed)
        return 42 if len(looks) == 3 else None

    assert poll_until(look, 10, 2, TimedOut, clock=clock) == 42
    assert looks == [0, 2, 4] and clock.time == 4


def test_a_falsy_answer_other_than_none_is_an_answer() -> None:
    clock = FakeClock()
    assert poll_until(lambda deadline: 0, 10, 1, TimedOut, clock=clock) == 0
    assert poll_until(lambda deadline: "", 10, 1, TimedOut, clock=clock) == ""
    assert clock.time == 0


def never_answering(clock: FakeClock) -> tuple[Callable[[Deadline], str | None], list[float]]:
    """A look that never answers, and the times it was asked at."""
    looks: list[float] = []

    def never(deadline: Deadline) -> str | None:
        looks.append(clock.now())
        return None

    return never, looks


def test_at_the_deadline_timed_out_is_raised_after_one_last_look() -> None:
    clock = FakeClock()
    never, looks = never_answering(clock)
    with pytest.raises(TimedOut, match="after 3s of 3s") as failure:
        poll_until(never, 3, 1, TimedOut, clock=clock)
    assert looks == [0, 1, 2, 3]  # the look at the deadline itself still counts
    assert failure.value.deadline.passed and failure.value.deadline.fraction == 1.0
    assert clock.time == 3


def test_without_timed_out_the_deadline_gives_back_gave_up_after_one_last_look() -> None:
    clock = FakeClock()
    never, looks = never_answering(clock)
    result = poll_until(never, 3, 1, clock=clock)
    assert isinstance(result, GaveUp)
    assert result.deadline.passed and result.deadline.elapsed == 3
    assert looks == [0, 1, 2, 3]


def test_without_timed_out_an_answer_is_given_back_as_it_is() -> None:
    clock = FakeClock()
    assert poll_until(lambda deadline: "ready", 3, 1, clock=clock) == "ready"


def test_the_last_sleep_is_cut_to_the_deadline_so_the_wait_ends_on_time() -> None:
    clock = FakeClock()
    never, looks = never_answering(clock)
    with pytest.raises(TimedOut, match=r"after 2\.5s of 2\.5s"):
        poll_until(never, 2.5, 1, TimedOut, clock=clock)
    assert looks == [0, 1, 2, 2.5] and clock.time == 2.5


def test_a_zero_deadline_looks_once() -> None:
    clock = FakeClock()
    looks: list[float] = []

    def never(deadline: Deadline) -> str | None:
        looks.append(clock.now())
        return None

    with pytest.raises(TimedOut):
        poll_until(never, 0, 1, TimedOut, clock=clock)
    assert looks == [0] and clock.time == 0


def test_an_interval_function_is_asked_before_each_sleep() -> None:
    clock = FakeClock()
    intervals = iter([5.0, 0.5, 0.5])
    looks: list[float] = []

    def look(deadline: Deadline) -> str | None:
        looks.append(clock.now())
        return "done" if len(looks) == 4 else None

    assert poll_until(look, 60, lambda: next(intervals), TimedOut, clock=clock) == "done"
    assert looks == [0, 5.0, 5.5, 6.0]


def test_an_exception_from_look_ends_the_wait() -> None:
    clock = FakeClock()

    def failing(deadline: Deadline) -> str | None:
        raise ValueError("the environment failed")

    with pytest.raises(ValueError, match="the environment failed"):
        poll_until(failing, 60, 1, TimedOut, clock=clock)
    assert clock.time == 0


def test_a_deadline_counts_from_its_start_on_its_clock() -> None:
    clock = FakeClock()
    clock.sleep(100)
    deadline = Deadline(10, clock)
    assert deadline.started == 100 and deadline.elapsed == 0 and not deadline.passed
    clock.sleep(2.5)
    assert deadline.elapsed == 2.5 and deadline.fraction == 0.25 and not deadline.passed
    clock.sleep(7.5)
    assert deadline.passed and deadline.fraction == 1.0
    clock.sleep(50)
    assert deadline.fraction == 1.0  # never above the whole


def test_a_zero_second_deadline_is_passed_and_used_up_at_once() -> None:
    deadline = Deadline(0, FakeClock())
    assert deadline.passed and deadline.fraction == 1.0


def test_the_system_clock_is_monotonic_and_sleeps() -> None:
    before = SYSTEM_CLOCK.now()
    SYSTEM_CLOCK.sleep(0.01)
    assert SYSTEM_CLOCK.now() - before >= 0.01

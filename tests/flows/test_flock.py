from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.clock import Deadline
from flows.flock import held, try_lock
from tests.flows.fakes import FakeClock


class Busy(Exception):
    pass


def busy(deadline: Deadline) -> Busy:
    return Busy(f"waited {deadline.seconds:g}s")


def test_try_lock_takes_a_free_lock_once(tmp_path: Path) -> None:
    path = tmp_path / "slot.lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT)
    second = os.open(path, os.O_RDWR)
    try:
        assert try_lock(first)
        assert not try_lock(second)  # flock locks belong to open files, even in one process
        os.close(first)
        with path.open("a") as third:
            assert try_lock(third)
    finally:
        os.close(second)


def test_held_creates_the_file_and_frees_it_after_the_block(tmp_path: Path) -> None:
    path = tmp_path / "records" / "worker.lock"
    with held(path, 1.0, 0.01, busy):
        assert path.is_file()
    with held(path, 0.0, 0.01, busy):  # free again: taken without waiting
        pass


def test_held_raises_the_callers_error_at_its_deadline_on_the_given_clock(tmp_path: Path) -> None:
    path = tmp_path / "ops.lock"
    clock = FakeClock()
    with (
        held(path, 1.0, 0.01, busy),
        pytest.raises(Busy, match="waited 30s"),
        held(path, 30.0, 0.5, busy, clock=clock),
    ):
        pass
    assert clock.time == pytest.approx(30.0, abs=0.5)

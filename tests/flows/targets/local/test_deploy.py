"""The deploy job's bookkeeping without Docker: `settle` waits for the clean-up on the clock seam."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from flows.config import PipelineConfig
from flows.targets.local.settings import LocalSettings
from flows.targets.local.target import LocalTarget
from tests.flows.fakes import FakeClock


class NoDocker:
    """A Docker client stand-in that fails the test if any Docker call is made."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"unexpected Docker call: {name}")


@pytest.fixture
def target(tmp_path: Path) -> LocalTarget:
    made = LocalTarget(PipelineConfig(local=LocalSettings(state_dir=tmp_path / "state")), client=NoDocker())
    made.site.clock = FakeClock()
    return made


def finish(target: LocalTarget) -> None:
    """Let the background threads end in real time (the fake clock does not move them)."""
    for thread in target.deployer._cleanups:
        thread.join(10)


def test_settle_gives_up_at_its_deadline_on_the_clock_and_succeeds_once_the_clean_up_ends(
    target: LocalTarget,
) -> None:
    release = threading.Event()

    def clean_up() -> None:
        release.wait(30)

    target.deployer._in_background("node-1", clean_up)
    clock = target.site.clock
    assert isinstance(clock, FakeClock)
    assert target.settle(deadline=5) is False  # no real waiting: the fake clock moved 5 s
    assert clock.time == pytest.approx(5)
    release.set()
    finish(target)
    assert target.settle(deadline=5) is True


def test_a_failing_clean_up_is_a_warn_event_not_an_error(target: LocalTarget) -> None:
    def broken() -> None:
        raise RuntimeError("engine went away")

    target.deployer._in_background("node-2", broken)
    finish(target)
    assert target.settle(deadline=5)
    from datetime import datetime

    [event] = target.events("node-2", datetime(2000, 1, 1))
    assert (event.severity, event.message) == ("WARN", "clean-up after the deploy failed: engine went away")


def test_nothing_to_wait_for_settles_at_once(target: LocalTarget) -> None:
    assert target.settle(deadline=0)

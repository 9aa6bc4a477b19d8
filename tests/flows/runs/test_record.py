"""The run's record: each step's final state noted from the step itself, in the flow or beside it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.report.artifacts import RunReport
from flows.runs.background import in_background
from flows.runs.record import Step, recording

pytestmark = pytest.mark.slow  # one Prefect test server for the session


class Broken(RuntimeError):
    """A step's own error, which the flow must see as it was raised."""


@dataclass(frozen=True)
class Answer:
    value: int

    def summary(self) -> str:
        return f"answered {self.value}"


@task(name="answer", cache_policy=NO_CACHE)
def answer(value: int) -> Answer:
    return Answer(value)


@task(name="break", cache_policy=NO_CACHE)
def broken(why: str) -> Answer:
    raise Broken(why)


def report() -> RunReport:
    return RunReport(application="app", target="local", repo="/r", ref="HEAD")


def test_a_step_gives_back_its_result_and_notes_its_state_and_summary(prefect_harness: None) -> None:
    run = report()

    @flow
    def body() -> int:
        with recording(run):
            return Step(answer)(41).value + 1

    assert body() == 42
    (step,) = run.steps
    assert (step.name, step.state, step.note) == ("answer", "Completed", "")
    assert step.seconds >= 0
    assert run.verifications == ["answer: answered 41"]


def test_a_failing_step_raises_its_own_error_and_notes_why(prefect_harness: None) -> None:
    run = report()

    @flow
    def body() -> None:
        with recording(run):
            Step(broken)("the engine went away")

    state = body(return_state=True)
    assert state.is_failed()
    with pytest.raises(Broken, match="the engine went away"):
        state.result()
    (step,) = run.steps
    assert step.state == "Failed" and "the engine went away" in step.note


def test_refresh_decides_from_the_calls_arguments(prefect_harness: None) -> None:
    asked: list[int] = []

    def refresh(value: int) -> bool:
        asked.append(value)
        return True

    @flow
    def body() -> Answer:
        return Step(answer, refresh=refresh)(7)

    assert body() == Answer(7)
    assert asked == [7]


def test_steps_in_the_background_are_steps_of_the_run_and_their_errors_come_back(
    prefect_harness: None,
) -> None:
    run = report()

    def build_then_check(value: int) -> Answer:
        Step(answer)(value)
        return Step(answer)(value + 1)

    @flow
    def body() -> tuple[int, str]:
        with recording(run):
            done = in_background(build_then_check, 1)
            failed = in_background(Step(broken), "no engine")
            return done.result().value, type(failed.exception()).__name__

    assert body() == (2, "Broken")
    assert sorted((step.name, step.state) for step in run.steps) == [
        ("answer", "Completed"),
        ("answer", "Completed"),
        ("break", "Failed"),
    ]


def test_no_log_line_only_says_a_hook_ran(prefect_harness: None, caplog: pytest.LogCaptureFixture) -> None:
    run = report()

    @flow
    def body() -> None:
        with recording(run):
            Step(answer)(1)

    with caplog.at_level(logging.INFO):
        body()
    lines = [record.getMessage() for record in caplog.records]
    assert any("Finished in state Completed" in line for line in lines), lines  # task logs are seen
    assert not [line for line in lines if "hook" in line.lower()]

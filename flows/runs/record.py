"""The record of one run: how each step ended and what it proved, read from each step's final state.

The flow is assembled from `Step`s (`flows.pipeline`): a step calls its task for the task's final
state (Completed, Cached, Failed), notes the state, its running time and a one-line summary of the
result in the current run's `RunReport` (which `flows.runs.lifecycle` publishes when the run ends),
then gives back the result or raises the task's error. The stages know nothing of it, and no
Prefect state hook runs (so no log line says one did).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, ParamSpec, TypeVar

from prefect import Task
from prefect.client.schemas.objects import State

from flows import steps
from flows.markdown import shorten
from flows.report.artifacts import RunReport, StepRecord

P = ParamSpec("P")
R = TypeVar("R")

_CURRENT: ContextVar[RunReport | None] = ContextVar("deliverypipeline_run_report", default=None)
NOTE_CHARS = 200
_RECORDING = threading.Lock()


@contextmanager
def recording(report: RunReport) -> Iterator[RunReport]:
    """Make `report` the one the steps note their states in, for the block."""
    token = _CURRENT.set(report)
    try:
        yield report
    finally:
        _CURRENT.reset(token)


def result_line(result: Any) -> str | None:
    """A result's own one-line summary (`summary()` or `line()`), if it has one."""
    for method in ("summary", "line"):
        describe = getattr(result, method, None)
        if callable(describe):
            return str(describe())
    return None


def note_step(name: str, state: State[Any], seconds: float) -> None:
    """Note a step's final state, running time and result line in the current run's report, if any."""
    report = _CURRENT.get()
    if report is None:
        return
    note = ""
    if state.name == "Cached":
        note = "reused from an earlier run"
    if state.is_failed() or state.is_crashed():
        note = shorten(state.message or "", NOTE_CHARS)  # cut after a word
    elif state.is_completed():
        line = result_line(state.result(raise_on_failure=False))
        if line:
            report.verifications.append(f"{name}: {line}")
    with _RECORDING:  # steps side by side (the build beside the unit tests) end in other threads
        report.steps.append(StepRecord(name, str(state.name), seconds, note))
        report.steps.sort(key=_table_order)  # as the step table reads, not as they ended


def _table_order(step: StepRecord) -> int:
    return steps.STEPS.index(step.name) if step.name in steps.STEPS else len(steps.STEPS)


class Step(Generic[P, R]):
    """One step of the flow: its task, called like the task, with its final state on the run's record.

    `refresh`, given the call's arguments, says whether a cached result must be refreshed (the
    image or the pushed tag it names is gone): the task then runs again and replaces it.
    """

    def __init__(self, task: Task[P, R], refresh: Callable[P, bool] | None = None) -> None:
        """The step of `task`; see the class for `refresh`."""
        self.task = task
        self.refresh = refresh

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task to its final state, note it, and give back its result (or raise its error)."""
        task = self.task
        if self.refresh is not None:
            task = task.with_options(refresh_cache=self.refresh(*args, **kwargs))
        started = time.monotonic()
        state: State[R] = task(*args, return_state=True, **kwargs)
        note_step(task.name, state, time.monotonic() - started)
        result: R = state.result()
        return result

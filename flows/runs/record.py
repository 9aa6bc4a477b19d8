"""The record of one run: how each step ended and what it proved, gathered by Prefect task hooks.

Every step task carries `RECORDED` (its completion and failure hooks), so the flow body stays
the task calls in order: the hooks note each step's final state (Completed, Cached, Failed),
its running time and a one-line summary of its result into the current run's `RunReport`,
which `flows.runs.lifecycle` publishes when the run ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun

from flows import steps
from flows.keys import run_name
from flows.report.artifacts import RunReport, StepRecord
from flows.runs.naming import rename_run

_CURRENT: ContextVar[RunReport | None] = ContextVar("deliverypipeline_run_report", default=None)
NOTE_CHARS = 200
_RECORDING = threading.Lock()


@contextmanager
def recording(report: RunReport) -> Iterator[RunReport]:
    """Make `report` the one the step hooks write into, for the block."""
    token = _CURRENT.set(report)
    try:
        yield report
    finally:
        _CURRENT.reset(token)


def current_report() -> RunReport | None:
    """The report of the run in progress in this context, if any."""
    return _CURRENT.get()


def result_line(result: Any) -> str | None:
    """A result's own one-line summary (`summary()` or `line()`), if it has one."""
    for method in ("summary", "line"):
        describe = getattr(result, method, None)
        if callable(describe):
            return str(describe())
    return None


def record_step(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> None:
    """Task hook: note the step's final state, running time and result in the current report."""
    report = _CURRENT.get()
    if report is None:
        return
    seconds = task_run.total_run_time.total_seconds()
    note = ""
    if state.name == "Cached":
        note = "reused from an earlier run"
    if state.is_failed() or state.is_crashed():
        note = (state.message or "")[:NOTE_CHARS]
    elif state.is_completed():
        result = state.result(raise_on_failure=False)
        commit, version = getattr(result, "commit", None), getattr(result, "version", None)
        if isinstance(commit, str) and isinstance(version, str) and report.commit is None:
            report.commit, report.version = commit, version  # the checkout: the run is named after it
            report.workdir = getattr(result, "path", None)
            rename_run(run_name(report.application, version, commit))
        line = result_line(result)
        if line:
            report.verifications.append(f"{task.name}: {line}")
    with _RECORDING:  # steps side by side (the build beside the unit tests) end in other threads
        report.steps.append(StepRecord(task.name, str(state.name), seconds, note))
        report.steps.sort(key=_table_order)  # as the step table reads, not as they ended


def _table_order(step: StepRecord) -> int:
    return steps.STEPS.index(step.name) if step.name in steps.STEPS else len(steps.STEPS)


# The hooks every step task carries: `@task(name=steps.X, **RECORDED, ...)`.
RECORDED: dict[str, Any] = {"on_completion": [record_step], "on_failure": [record_step]}

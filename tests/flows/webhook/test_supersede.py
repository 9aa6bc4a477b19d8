"""Which runs supersede which: newer runs of the same deployment and pushed branch, never a rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from prefect.client.schemas.objects import FlowRun, State, StateType

from flows.webhook.supersede import message, newer_runs, older_waiting, pushed_ref

DEPLOYMENT = uuid4()
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def run(
    n: int,
    state: StateType = StateType.SCHEDULED,
    ref: str | None = "refs/heads/main",
    deployment: UUID = DEPLOYMENT,
) -> FlowRun:
    parameters: dict[str, Any] = {"ref": f"{n:040x}"}
    if ref is not None:
        parameters["pushed_ref"] = ref
    return FlowRun.model_validate(
        {
            "id": uuid4(),
            "flow_id": uuid4(),
            "deployment_id": deployment,
            "parameters": parameters,
            "state": State(type=state),
            "created": T0 + timedelta(seconds=n),
        }
    )


def test_newer_runs_of_the_branch_supersede_newest_first() -> None:
    me, later, latest = run(1), run(2, StateType.RUNNING), run(3, StateType.COMPLETED)
    others = [run(0), later, latest, run(4, StateType.CANCELLED), run(5, ref="refs/heads/release")]
    others += [run(6, ref=None), run(7, deployment=uuid4()), me]
    assert newer_runs(me, others) == [latest, later]


def test_a_run_started_by_hand_is_never_superseded() -> None:
    rollback = run(1, ref=None)
    assert pushed_ref(rollback) is None
    assert newer_runs(rollback, [run(2, ref=None), run(3)]) == []
    assert older_waiting(rollback, [run(0, ref=None), run(0)]) == []


def test_only_older_runs_that_have_not_started_are_cancelled() -> None:
    newest = run(9)
    waiting = [run(1), run(2, StateType.PENDING)]
    started = [run(3, StateType.RUNNING), run(4, StateType.PAUSED), run(5, StateType.COMPLETED)]
    assert older_waiting(newest, [*started, *reversed(waiting), run(10), run(0, ref=None), newest]) == waiting


def test_the_message_names_the_commit() -> None:
    assert message("a" * 40) == "superseded by " + "a" * 40

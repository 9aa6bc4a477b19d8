"""The recover flow on a fake target: a release that died after its swap is swapped back, prod verified."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from flows.config import Deadlines, PipelineConfig
from flows.recovery import flow as recovery_flow
from flows.recovery.decisions import EndedRun
from flows.release import tasks as release_tasks
from flows.release.decisions import release_operation
from flows.release.errors import ProdRejected
from flows.release.lock import holder
from flows.release.settings import VerificationSettings
from tests.flows.fakes import FakeTarget, http_check_of, paths_check_of

READ_ENDED_RUN = recovery_flow.read_crashed  # the real one: the fixture below replaces it
FAST = PipelineConfig(
    deadlines=Deadlines(verify=0.5, swap=1, poll_interval=0.01, target_lock=1),
    verification=VerificationSettings(consistent_answers=2),
)


@pytest.fixture
def crashed(prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> FakeTarget:
    """A target whose release of v2 died after its swap (prod v2, preprod v1), and its crashed run."""
    target = FakeTarget.pair(prod_version="v2", preprod_version="v1")
    target.interrupted = holder(release_operation("v2"), "the-crashed-run")
    parameters = {"target": "local", "config": FAST.model_dump(mode="json")}

    def read_crashed(run_id: Any) -> EndedRun:
        return EndedRun("app-v2", "CRASHED", "Crashed", "exited with -9", parameters)

    monkeypatch.setattr(recovery_flow, "read_crashed", read_crashed)
    monkeypatch.setattr(recovery_flow, "make_target", lambda name, config: target)
    monkeypatch.setattr(release_tasks, "health_check", http_check_of(target))
    monkeypatch.setattr(release_tasks, "paths_check", paths_check_of(target))
    return target


def recovery_report() -> str:
    """The newest recovery report artifact."""
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["recovery"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return str(artifact.data)


def test_a_release_dead_after_its_swap_is_swapped_back_and_prod_verified(crashed: FakeTarget) -> None:
    done = recovery_flow.recover_release(f"prefect.flow-run.{uuid4()}")
    assert crashed.serving("127.0.0.1:8080").version == "v1"  # the previous, verified version
    assert [c for c in crashed.calls if c[0] in ("lock", "swap", "unlock")] == [
        ("lock", "recovery after app-v2"),
        ("swap", "node-2", "node-1"),
        ("unlock", "recovery after app-v2"),
    ]
    assert done.startswith("swapped back the unverified swap of release v2")
    report = recovery_report()
    assert report.startswith("# Recovery of app-v2: prod serves a verified version")
    assert "- **its state**: Crashed: exited with -9" in report
    assert "- **died in**: no step was running" in report


def test_nothing_to_swap_back_still_verifies_prod(crashed: FakeTarget) -> None:
    crashed.interrupted = None  # the release let go of the lock (or a later one recovered already)
    done = recovery_flow.recover_release(str(uuid4()))
    assert not any(call[0] == "swap" for call in crashed.calls)
    assert "nothing to recover" in done and "verified" in done


def test_prod_failing_verification_fails_the_recovery_and_says_what_to_do(
    crashed: FakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(release_tasks, "health_check", http_check_of(crashed, frozenset({"v1"})))
    with pytest.raises(ProdRejected):
        recovery_flow.recover_release(str(uuid4()))
    report = recovery_report()
    assert "**prod is NOT verified: act now**" in report and "deliverypipeline local swap" in report


def open_and_done_steps(
    state: Any, parameters: dict[str, Any] | None = None, step: Any = None
) -> tuple[Any, Any, Any]:
    """A release run in `state` with an open step (analyse traffic, `step`: Running) and a completed one."""
    from prefect import flow, task
    from prefect.states import Completed, Running

    @flow(name="a-release")
    def a_release() -> None: ...

    @task(name="analyse traffic")
    def analyse() -> None: ...

    @task(name="swap")
    def swap() -> None: ...

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(a_release, state=state, parameters=parameters or {})
        open_step = client.create_task_run(
            analyse, run.id, dynamic_key="0", name="analyse traffic-962", state=step or Running()
        )
        done_step = client.create_task_run(swap, run.id, dynamic_key="0", name="swap-292", state=Completed())
    return run, open_step, done_step


CRASHED = EndedRun("a", "CRASHED", "Crashed", "exited with -9", {})
CANCELLED = EndedRun("a", "CANCELLED", "Cancelled", "cancelled in the UI", {})


@pytest.mark.parametrize(
    ("ended", "left_as", "closed_as"),
    [
        (CRASHED, "Running", "CRASHED"),
        (CANCELLED, "Running", "CANCELLED"),
        # Prefect's own clean-up cancelled the step first, without the reason: it gets it.
        (CANCELLED, "Cancelled by the server", "CANCELLED"),
        # The worker's SIGTERM crashed the step as it stopped the cancelled run's process.
        (CANCELLED, "Crashed by the cancel", "CANCELLED"),
    ],
)
def test_the_steps_an_ended_run_left_open_end_crashed_or_cancelled_with_the_reason(
    prefect_harness: None, ended: EndedRun, left_as: str, closed_as: str
) -> None:
    from prefect.logging import disable_run_logger
    from prefect.states import Cancelled, Crashed, Running

    step: Any = {
        "Running": Running(),
        "Cancelled by the server": Cancelled(message="The parent flow run was cancelled."),
        "Crashed by the cancel": Crashed(message="Execution was aborted by a termination signal."),
    }[left_as]
    run, open_step, done_step = open_and_done_steps(Running(), step=step)
    with disable_run_logger():
        names = recovery_flow.close_open_steps.fn(run.id, ended)
    assert names == ["analyse traffic"]
    with get_client(sync_client=True) as client:
        closed = client.read_task_run(open_step.id).state
        untouched = client.read_task_run(done_step.id).state
    assert closed is not None and closed.type.value == closed_as
    assert closed.message is not None and ended.state in closed.message
    assert untouched is not None and untouched.type.value == "COMPLETED"


def test_a_cancelled_run_gets_its_report_and_a_log_line_with_the_reason_and_prod_now(
    crashed: FakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.states import Cancelled

    parameters = {"target": "local", "config": FAST.model_dump(mode="json")}
    run, open_step, _ = open_and_done_steps(Cancelled(message="cancelled in the UI"), parameters)
    monkeypatch.setattr(recovery_flow, "read_crashed", READ_ENDED_RUN)
    recovery_flow.recover_release(f"prefect.flow-run.{run.id}")
    with get_client(sync_client=True) as client:
        step = client.read_task_run(open_step.id).state
        [report] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["release-report"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        tags = client.read_flow_run(run.id).tags
    assert step is not None and step.type.value == "CANCELLED"
    assert {"ended in analyse traffic", "prod verified by recovery"} <= set(tags)
    assert report.flow_run_id == run.id
    assert str(report.data).startswith("# Cancelled: cancelled in the UI in step `analyse traffic`\n")
    assert "version v1" in str(report.data).split("**Prod now:**")[1].split("\n")[0]
    assert "(verified)" in str(report.data)
    assert report.description == "cancelled in the UI in step `analyse traffic`"
    [line] = [log.message for log in logs]
    assert line.startswith(f"cancelled in the UI in step `analyse traffic`. recover {run.name}: swapped back")

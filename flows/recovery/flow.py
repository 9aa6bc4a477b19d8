"""The `recover` flow: what the control plane runs, without a person, when a release run crashed.

It takes the target's lock the way a release does (so never while a live release holds it: it
waits, logging the holder), brings the target back to its record and swaps back a release that
died after its swap (what the release's own `recover` step does, `flows.release.recovery`),
then, still holding the lock, verifies prod on every user path with the release's `verify prod`
step. The run is named after the run it recovers, links to it, and says what it did in a
markdown artifact; the crashed run gets a note linking back.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from prefect.states import Crashed

from flows import steps
from flows.config import PipelineConfig
from flows.recovery.decisions import (
    OPEN_STATES,
    RUN_RESOURCE,
    Outcome,
    closing_message,
    crashed_note_markdown,
    crashed_run_id,
    died_in,
    recovery_name,
    release_settings,
    report_markdown,
)
from flows.release import recovery
from flows.release.decisions import describe
from flows.release.facts import find_roles
from flows.release.lock import holder, locked
from flows.release.tasks import LIVE, verify_prod
from flows.runs.naming import rename_run
from flows.targets.base import LockHolder, Target
from flows.targets.factory import make_target

RECOVERY_OPERATION = "recovery after "  # never a release's operation: a dead recovery is not swapped back


def _log(line: str) -> None:
    get_run_logger().info(line)


def run_url(run_id: object) -> str:
    """The UI address of a flow run on this control plane."""
    return f"{(PREFECT_UI_URL.value() or '').rstrip('/')}/runs/flow-run/{run_id}"


@task(name="read crashed run", **LIVE)
def read_crashed(run_id: UUID) -> tuple[str, str, dict[str, Any]]:
    """The crashed run's name, state (with its message) and parameters."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    state = run.state
    shown = (state.name or state.type.value) if state else "-"
    if state and state.message:
        shown = f"{shown}: {state.message}"
    return run.name, shown, dict(run.parameters)


@task(name="close its open steps", **LIVE)
def close_open_steps(run_id: UUID, crashed_state: str) -> list[str]:
    """Mark Crashed, with the reason, every step the crashed run left open; their names, oldest first.

    A killed process cannot end its own task runs: left alone they show Running for good and
    stretch the run's timeline to "now".
    """
    with get_client(sync_client=True) as client:
        left_open = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
            task_run_filter=TaskRunFilter(
                state=TaskRunFilterState(
                    type=TaskRunFilterStateType(any_=[StateType(name) for name in OPEN_STATES])
                )
            ),
        )
        message = closing_message(crashed_state)
        for task_run in sorted(left_open, key=lambda run: str(run.start_time or run.created or "")):
            client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
    names = [task_run.name.rsplit("-", 1)[0] for task_run in left_open]
    if names:
        get_run_logger().info("closed the step(s) the crashed run left open: %s", ", ".join(names))
    return names


@task(name=steps.LOCK_TARGET, **LIVE)
def take_lock(held: ExitStack, target: Target, crashed: str, config: PipelineConfig) -> LockHolder | None:
    """Wait for the target's lock (logging a live holder) and take it into `held`, the flow's block
    that lets go of it; the holder that died holding it, if one did."""
    who = holder(f"{RECOVERY_OPERATION}{crashed}", str(flow_run.id or "-"))
    return held.enter_context(locked(target, who, config, _log))


@task(name=steps.RECOVER, **LIVE)
def recover(target: Target, interrupted: LockHolder | None, config: PipelineConfig) -> str:
    """Under the lock: the target back to its record, an unverified swap of a dead release swapped back."""
    done = recovery.recover(target, interrupted, config, _log)
    get_run_logger().info(done)
    return done


def _note_on_crashed(run_id: UUID, markdown: str) -> None:
    """A markdown artifact on the crashed run, linking to this recovery; a failure is only logged."""
    try:
        with get_client(sync_client=True) as client:
            client.create_artifact(
                ArtifactCreate(key="recovered-by", type="markdown", data=markdown, flow_run_id=run_id)
            )
    except Exception as exc:  # a note must never fail the recovery
        get_run_logger().warning("could not leave a note on the crashed run %s: %s", run_id, exc)


def initial_name() -> str:
    """The run's name until the crashed run's own name is read: `recover <its id>`."""
    given = str(flow_run.parameters.get("crashed_run", ""))
    return recovery_name(given.removeprefix(RUN_RESOURCE))


@flow(name="recover", flow_run_name=initial_name, log_prints=True)
def recover_release(crashed_run: str) -> str:
    """Make prod serve a verified version after the release run `crashed_run` crashed.

    `crashed_run`: the crashed run's id, or its Crashed event's resource id (what the trigger gives).
    """
    run_id = crashed_run_id(crashed_run)
    name, state, parameters = read_crashed(run_id)
    where_it_died = died_in(close_open_steps(run_id, state))
    rename_run(recovery_name(name))
    create_link_artifact(run_url(run_id), link_text=name, key="recovered-run", description="the crashed run")
    target_name, config = release_settings(parameters)
    where = make_target(target_name, config)
    done, prod, verification, ok = "-", "-", "not verified", False
    try:
        with ExitStack() as held:
            interrupted = take_lock(held, where, name, config)
            done = recover(where, interrupted, config)
            roles = find_roles(where, config)
            prod = describe(roles.prod)
            if roles.prod.version is None:
                verification = "prod runs nothing yet: nothing to verify"
                ok = True
            else:
                verification = verify_prod(where, roles.prod.version, config).summary()
                ok = True
    except BaseException as exc:
        verification = f"failed: {exc}"
        raise
    finally:
        outcome = Outcome(
            name, run_url(run_id), state, target_name, done, prod, verification, ok, where_it_died
        )
        create_markdown_artifact(report_markdown(outcome), key="recovery", description=f"recovery of {name}")
        line = (
            f"died in {where_it_died}; {done}; "
            f"{'prod verified: ' + prod if ok else 'prod NOT verified: ' + verification}"
        )
        _note_on_crashed(run_id, crashed_note_markdown(recovery_name(name), run_url(flow_run.id), line))
    return f"{done}; prod {prod} verified"

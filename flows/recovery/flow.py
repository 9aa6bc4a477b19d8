"""The `recover` flow: what the control plane runs, without a person, when a release run crashed or
was cancelled while it ran.

It first ends the steps the run left open (Crashed, or Cancelled for a cancelled run, with the
reason): a killed process cannot end them itself. Then it takes the target's lock the way a
release does (so never while a live release holds it: it waits, logging the holder), brings the
target back to its record and swaps back a release that died after its swap (what the release's
own `recover` step does, `flows.release.recovery`), then, still holding the lock, verifies prod
on every user path with the release's `verify prod` step. The run is named after the run it
recovers, links to it, and says what it did in a markdown artifact; the ended run gets its report
(the reason and the step first, then what prod serves now) and a line in its log.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import UTC, datetime
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from prefect.states import Cancelled, Crashed

from flows import steps
from flows.config import PipelineConfig
from flows.recovery.decisions import (
    RUN_RESOURCE,
    EndedRun,
    Outcome,
    closing_message,
    crashed_run_id,
    died_in,
    ended_log_line,
    ended_report_markdown,
    ended_tags,
    is_ended_tag,
    left_open,
    reason,
    recovery_name,
    release_settings,
    report_markdown,
    stopped_in,
    why_it_ended,
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
def read_crashed(run_id: UUID) -> EndedRun:
    """The crashed (or cancelled) run: its name, how it ended and why, its parameters."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        history = client.read_flow_run_states(run_id) if run.state and run.state.is_cancelled() else []
    state = run.state
    if state is None:
        return EndedRun(run.name, "CRASHED", "Crashed", "", dict(run.parameters))
    cancelling = [past.message or "" for past in history if past.type == StateType.CANCELLING]
    message = why_it_ended(state.message or "", cancelling)
    shown = state.name or state.type.value.title()
    return EndedRun(run.name, state.type.value, shown, message, dict(run.parameters))


@task(name="close its open steps", **LIVE)
def close_open_steps(run_id: UUID, ended: EndedRun) -> list[str]:
    """End every step the run left open, with the reason: Cancelled for a cancelled run, else
    Crashed; the names of the steps it stopped in, oldest first.

    A killed process cannot end its own task runs: left alone they show Running for good and
    stretch the run's timeline to "now". (For a cancelled run, the server's own clean-up may end
    them first, Cancelled without the reason: they get it too.)
    """
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        task_runs.sort(key=lambda run: str(run.start_time or run.created or ""))
        message = closing_message(ended.state)
        closed = Cancelled if ended.closing_state == "CANCELLED" else Crashed
        stopped = []
        for task_run in task_runs:
            state = task_run.state
            state_type, said = (state.type.value, state.message) if state else ("PENDING", None)
            if left_open(state_type, said, ended.closing_state):
                client.set_task_run_state(task_run.id, closed(message=message), force=True)
            if stopped_in(state_type):
                stopped.append(task_run.name.rsplit("-", 1)[0])
    if stopped:
        get_run_logger().info("the %s run stopped in: %s", ended.state_name.lower(), ", ".join(stopped))
    return stopped


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


def _report_on_ended(run_id: UUID, why: str, markdown: str, log_line: str, tags: list[str]) -> None:
    """The ended run's report (a `release-report` artifact on it) and a line in its log, both
    starting with why and where it ended, and `tags` beside its name; a failure is only logged (it
    must never fail the recovery)."""
    try:
        with get_client(sync_client=True) as client:
            kept = [tag for tag in client.read_flow_run(run_id).tags if not is_ended_tag(tag)]
            client.update_flow_run(run_id, tags=[*kept, *tags])  # a later recovery's tags replace these
            client.create_artifact(
                ArtifactCreate(
                    key="release-report", type="markdown", data=markdown, description=why, flow_run_id=run_id
                )
            )
            line = {
                "name": "deliverypipeline.recovery",
                "level": logging.ERROR,
                "message": log_line,
                "timestamp": datetime.now(UTC).isoformat(),
                "flow_run_id": str(run_id),
            }
            client.create_logs([line])
    except Exception as exc:
        get_run_logger().warning("could not write the report of the ended run %s: %s", run_id, exc)


def initial_name() -> str:
    """The run's name until the crashed run's own name is read: `recover <its id>`."""
    given = str(flow_run.parameters.get("crashed_run", ""))
    return recovery_name(given.removeprefix(RUN_RESOURCE))


@flow(name="recover", flow_run_name=initial_name, log_prints=True)
def recover_release(crashed_run: str) -> str:
    """Make prod serve a verified version after the release run `crashed_run` crashed or was cancelled.

    `crashed_run`: the run's id, or its Crashed (Cancelled) event's resource id (what a trigger gives).
    """
    run_id = crashed_run_id(crashed_run)
    ended = read_crashed(run_id)
    name = ended.name
    open_steps = close_open_steps(run_id, ended)
    where_it_died = died_in(open_steps)
    rename_run(recovery_name(name))
    shown = f"the {ended.state_name.lower()} run"
    create_link_artifact(run_url(run_id), link_text=name, key="recovered-run", description=shown)
    target_name, config = release_settings(ended.parameters)
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
            name, run_url(run_id), ended.state, target_name, done, prod, verification, ok, where_it_died
        )
        create_markdown_artifact(report_markdown(outcome), key="recovery", description=f"recovery of {name}")
        why, me = reason(ended, open_steps), recovery_name(name)
        _report_on_ended(
            run_id,
            why,
            ended_report_markdown(ended, why, outcome, me, run_url(flow_run.id)),
            ended_log_line(why, outcome, me),
            ended_tags(open_steps, outcome),
        )
    return f"{done}; prod {prod} verified"

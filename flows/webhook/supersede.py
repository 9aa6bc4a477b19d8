"""Superseding: of several pushes to one branch waiting for the release slot, only the newest goes out.

Two halves, both keyed on the run's deployment and its `pushed_ref` parameter (runs the webhook
created carry it, and the tag `branch:<name>`; a run started by hand for a ref, a rollback, has
no `pushed_ref` and is never superseded, nor does it supersede anything):

- the receiver, after creating the run of commit S: `older_waiting_runs` + `cancel_superseded`
  end the older runs of the branch that have not started (Scheduled, Late,
  AwaitingConcurrencySlot, Pending) as Cancelled "superseded by S";
- the flow, once it holds its run slot: `superseded_state(client, flow_run_id)` is a
  Cancelled "superseded by <sha>" state to return from the flow when a newer run of the branch
  exists (waiting, running or done: any not cancelled), else None. So an older commit is never
  released after a newer one of the same branch.

"Newer" is the order in which Prefect created the runs (the receiver creates them one at a time,
in the order the deliveries arrived). The selection is pure (`newer_runs`, `older_waiting`) and
the I/O is a read of the branch's runs, so both halves agree on what "newer" means.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flows.webhook.payload import BRANCH_PREFIX, PUSHED_REF_PARAMETER, REF_PARAMETER, branch_tag

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.objects import FlowRun, State

MESSAGE_PREFIX = "superseded by "
SCAN_LIMIT = 200  # the newest runs of a branch looked at; far more than ever wait at once
# State types of a run that has not started (Scheduled covers Late, AwaitingConcurrencySlot, AwaitingRetry).
NOT_STARTED = frozenset({"SCHEDULED", "PENDING"})
# A newer run in these states will not release, so it supersedes nothing.
NOT_RELEASING = frozenset({"CANCELLED", "CANCELLING"})


def message(commit: str) -> str:
    """The Cancelled state's message: `superseded by <commit>`."""
    return f"{MESSAGE_PREFIX}{commit}"


def pushed_ref(run: FlowRun) -> str | None:
    """The branch ref a webhook push named (`refs/heads/main`), None for a run started by hand."""
    value = run.parameters.get(PUSHED_REF_PARAMETER)
    return value if isinstance(value, str) and value.startswith(BRANCH_PREFIX) else None


def _commit(run: FlowRun) -> str:
    value = run.parameters.get(REF_PARAMETER)
    return str(value) if value is not None else str(run.id)


def _state_type(run: FlowRun) -> str:
    return run.state.type.value if run.state is not None else "SCHEDULED"


def _order(run: FlowRun) -> tuple[datetime, str]:
    if run.created is None:
        raise ValueError(f"flow run {run.id} has no creation time; read it from the Prefect API")
    return run.created, str(run.id)


def _same_branch(me: FlowRun, other: FlowRun) -> bool:
    return (
        other.id != me.id
        and other.deployment_id == me.deployment_id
        and pushed_ref(other) is not None
        and pushed_ref(other) == pushed_ref(me)
    )


def _branch_runs(
    me: FlowRun, others: Iterable[FlowRun], newer: bool, states: frozenset[str], keep: bool
) -> list[FlowRun]:
    """`me`'s deployment and branch: runs created after (`newer`) or before it whose state type is
    in `states` (`keep`) or not in it, in order of creation."""
    if pushed_ref(me) is None:
        return []
    mine = _order(me)
    chosen = [
        run
        for run in others
        if _same_branch(me, run)
        and (_order(run) > mine if newer else _order(run) < mine)
        and (_state_type(run) in states) == keep
    ]
    return sorted(chosen, key=_order)


def newer_runs(me: FlowRun, others: Iterable[FlowRun]) -> list[FlowRun]:
    """Runs of `me`'s deployment and branch created after `me` that may still release, newest first."""
    return _branch_runs(me, others, newer=True, states=NOT_RELEASING, keep=False)[::-1]


def older_waiting(newest: FlowRun, others: Iterable[FlowRun]) -> list[FlowRun]:
    """Runs of `newest`'s deployment and branch created before it that have not started, oldest first."""
    return _branch_runs(newest, others, newer=False, states=NOT_STARTED, keep=True)


def branch_filter(run: FlowRun) -> FlowRunFilter:
    """The Prefect filter of the runs of `run`'s deployment tagged with its pushed branch."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId, FlowRunFilterTags

    ref = pushed_ref(run)
    if ref is None or run.deployment_id is None:
        raise ValueError(f"flow run {run.id} was not started by a push to a branch of a deployment")
    return FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[run.deployment_id]),
        tags=FlowRunFilterTags(all_=[branch_tag(ref.removeprefix(BRANCH_PREFIX))]),
    )


def _read_options(run: FlowRun) -> dict[str, Any]:
    from prefect.client.schemas.sorting import FlowRunSort

    return {
        "flow_run_filter": branch_filter(run),
        "sort": FlowRunSort.EXPECTED_START_TIME_DESC,
        "limit": SCAN_LIMIT,
    }


def _applies(run: FlowRun) -> bool:
    return pushed_ref(run) is not None and run.deployment_id is not None


# The flow's half (sync: the pipeline is a sync flow).


def superseded_by(client: SyncPrefectClient, flow_run_id: UUID | str) -> str | None:
    """The commit of the newest run that supersedes flow run `flow_run_id`, or None to go on releasing.

    None for a run without `pushed_ref` (started by hand) or without a deployment. Otherwise the
    `ref` of the newest run of the same deployment and `pushed_ref`, created later and not
    cancelled (waiting, running, completed or failed: the branch has moved past this commit).
    """
    me = client.read_flow_run(UUID(str(flow_run_id)))
    if not _applies(me):
        return None
    newer = newer_runs(me, client.read_flow_runs(**_read_options(me)))
    return _commit(newer[0]) if newer else None


def superseded_state(client: SyncPrefectClient, flow_run_id: UUID | str) -> State[Any] | None:
    """`Cancelled("superseded by <sha>")` for the flow to return if a newer push supersedes it, else None.

    Call it in the flow once the run holds its run slot, before any release step; returning
    the state from the flow function ends the run Cancelled with that message, shown in the UI.
    """
    from prefect.states import Cancelled

    commit = superseded_by(client, flow_run_id)
    return None if commit is None else Cancelled(message=message(commit))


# The receiver's half (async: it runs in the receiver's event loop).


async def older_waiting_runs(client: PrefectClient, newest: FlowRun) -> list[FlowRun]:
    """The runs `newest` supersedes: same deployment and branch, created before it, not started."""
    if not _applies(newest):
        return []
    return older_waiting(newest, await client.read_flow_runs(**_read_options(newest)))


async def cancel_superseded(client: PrefectClient, run: FlowRun, commit: str) -> bool:
    """End `run` Cancelled "superseded by `commit`" if it still has not started; whether it was.

    The run is read again first, so one that a worker just started is left to the flow's own
    check (`superseded_state`) rather than cancelled under a running process.
    """
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled

    current = await client.read_flow_run(run.id)
    if _state_type(current) not in NOT_STARTED:
        return False
    result: Any = await client.set_flow_run_state(run.id, Cancelled(message=message(commit)))
    return bool(result.status == SetStateStatus.ACCEPT)

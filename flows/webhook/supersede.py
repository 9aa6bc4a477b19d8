"""Superseding: an older commit of a branch is never released after a newer one.

Which push is newer is decided by git ancestry and the push's own fields, never by the order in
which deliveries arrived (GitHub delivers out of order, and a redelivery can come hours later).
The webhook's runs carry the pushed branch (`pushed_ref`, tag `branch:<name>`), the commit the
branch held before the push (tag `before:<sha>`) and GitHub's force-push flag (tag `forced`);
a run started by hand for a ref (a rollback) has no `pushed_ref`: it is never superseded, nor
does it supersede anything.

One rule, `is_newer`: a state of the branch (a commit, pushed over `before`) is newer than a push
P of commit C when it is another commit and
- it is not what P replaced, if P is a force-push (GitHub's `forced`, or C does not descend from
  the commit the branch held before): a force-push is released even over newer-looking commits;
- and either the branch moved on from C to it (its `before` is C), or C is an ancestor of it.

`superseded_by` applies it to the other pushes of the branch (naming the newest: the end of the
chain of newer ones) and to the commit prod serves (a push of that commit, or of an ancestor, is
superseded too). Two halves use it:
- the receiver, after creating a run, ends the not-started runs of the branch that a push it
  knows of supersedes (`cancel_superseded_waiting`), without git: its ancestry knows nothing,
  so only the pushes' own fields count;
- the flow, once it holds its run slot and before it builds, asks `superseded_run` with the
  repository's history and prod's commit; a Cancelled "superseded by <sha>" ends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from flows.controlplane.api import ControlPlaneApi
from flows.controlplane.records import FlowRun, RunState
from flows.webhook.payload import (
    BEFORE_TAG_PREFIX,
    BRANCH_PREFIX,
    FORCED_TAG,
    PUSHED_REF_PARAMETER,
    REF_PARAMETER,
    branch_tag,
)

MESSAGE_PREFIX = "superseded by "
# State types of a run that has not started (Scheduled covers Late, AwaitingConcurrencySlot, AwaitingRetry).
NOT_STARTED = frozenset({"SCHEDULED", "PENDING"})

# Whether commit `older` is a strict ancestor of commit `newer`; None when the history cannot tell.
Ancestry = Callable[[str, str], bool | None]


def no_history(older: str, newer: str) -> bool | None:
    """The ancestry of a caller without the repository (the receiver): it never knows."""
    return None


class History(Protocol):
    """A repository's commit graph, as the flow reads it (see flows/webhook/history.py)."""

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        """Whether `older` is a strict ancestor of `newer`; None when unknown."""
        ...

    def commit_of(self, name: str) -> str | None:
        """The full commit a version, tag or abbreviated commit names; None when unknown."""
        ...


@dataclass(frozen=True)
class Push:
    """What superseding knows of one pushed run: its commit and the push's own fields."""

    run_id: UUID
    commit: str
    before: str | None = None
    forced: bool = False
    state_type: str = "SCHEDULED"


def message(commit: str) -> str:
    """The Cancelled state's message: `superseded by <commit>`."""
    return f"{MESSAGE_PREFIX}{commit}"


def pushed_ref(run: FlowRun) -> str | None:
    """The branch ref a webhook push named (`refs/heads/main`), None for a run started by hand."""
    value = run.parameters.get(PUSHED_REF_PARAMETER)
    return value if isinstance(value, str) and value.startswith(BRANCH_PREFIX) else None


def push_of(run: FlowRun) -> Push | None:
    """The push behind a run, None for a run started by hand."""
    commit = run.parameters.get(REF_PARAMETER)
    if pushed_ref(run) is None or not isinstance(commit, str):
        return None
    befores = [tag.removeprefix(BEFORE_TAG_PREFIX) for tag in run.tags if tag.startswith(BEFORE_TAG_PREFIX)]
    before = befores[0] if befores else None
    return Push(run.id, commit, before, FORCED_TAG in run.tags, run.state_type)


def is_force_push(push: Push, ancestry: Ancestry) -> bool:
    """GitHub's flag, or a commit that does not descend from the one the branch held before."""
    return push.forced or (push.before is not None and ancestry(push.before, push.commit) is False)


def is_newer(commit: str, before: str | None, me: Push, ancestry: Ancestry) -> bool:
    """Whether the branch at `commit` (pushed over `before`, None if unknown) is newer than push `me`."""
    if commit == me.commit:
        return False
    if (
        me.before is not None
        and is_force_push(me, ancestry)
        and (commit == me.before or ancestry(commit, me.before) is True)
    ):
        return False  # what this force-push replaced
    if before == me.commit and me.before != commit:
        return True  # the branch moved on from this commit
    return ancestry(me.commit, commit) is True


def _newest(start: Push, pushes: Sequence[Push], seen: set[UUID], ancestry: Ancestry) -> Push:
    """The end of the chain of ever newer pushes from `start` (each push visited once)."""
    current = start
    while True:
        seen.add(current.run_id)
        follower = next(
            (p for p in pushes if p.run_id not in seen and is_newer(p.commit, p.before, current, ancestry)),
            None,
        )
        if follower is None:
            return current
        current = follower


def superseded_by(
    me: Push, others: Iterable[Push], prod: str | None, ancestry: Ancestry = no_history
) -> str | None:
    """The commit that supersedes push `me`, None to release it (pure: the history is `ancestry`).

    The newest of the other pushes of the branch newer than `me`; else `prod` (the commit prod
    serves, None if unknown) when it is `me`'s commit or newer than it.
    """
    pushes = [push for push in others if push.run_id != me.run_id]
    newer = next((p for p in pushes if is_newer(p.commit, p.before, me, ancestry)), None)
    if newer is not None:
        return _newest(newer, pushes, {me.run_id}, ancestry).commit
    if prod is not None and (prod == me.commit or is_newer(prod, None, me, ancestry)):
        return prod
    return None


def superseded_waiting(pushes: Sequence[Push], ancestry: Ancestry = no_history) -> list[tuple[Push, str]]:
    """The pushes that have not started and that another push of the branch supersedes, with its commit."""
    found = []
    for push in pushes:
        if push.state_type in NOT_STARTED and (commit := superseded_by(push, pushes, None, ancestry)):
            found.append((push, commit))
    return found


# The I/O, over the control plane's API.


def branch_pushes(api: ControlPlaneApi, deployment_id: UUID, ref: str) -> list[Push]:
    """The pushes of branch `ref` (`refs/heads/...`) to the deployment, as the API lists them."""
    tag = branch_tag(ref.removeprefix(BRANCH_PREFIX))
    runs = api.read_flow_runs(deployment_id, [tag])
    return [push for run in runs if pushed_ref(run) == ref and (push := push_of(run)) is not None]


def superseded_run(
    api: ControlPlaneApi,
    run_id: UUID,
    history: Callable[[str], History],
    prod_version: Callable[[], str | None],
) -> str | None:
    """The commit that supersedes flow run `run_id`, None to release it (the flow's half).

    `history(repo)` gives the repository's history; `prod_version()` the version prod serves,
    asked only when no newer push of the branch exists.
    """
    run = api.read_flow_run(run_id)
    me, ref = push_of(run), pushed_ref(run)
    if me is None or ref is None or run.deployment_id is None:
        return None
    pushes = branch_pushes(api, run.deployment_id, ref)
    repository = history(str(run.parameters.get("repo", ".")))
    commit = superseded_by(me, pushes, None, repository.is_ancestor)
    if commit is not None:
        return commit
    version = prod_version()
    prod = repository.commit_of(version) if version else None
    return superseded_by(me, pushes, prod, repository.is_ancestor)


def cancel_if_waiting(api: ControlPlaneApi, run_id: UUID, commit: str) -> bool:
    """End the run Cancelled "superseded by `commit`" if it still has not started; whether it was.

    The run is read again first, so one that a worker just started is left to the flow's own
    check rather than cancelled under a running process.
    """
    if api.read_flow_run(run_id).state_type not in NOT_STARTED:
        return False
    verdict = api.set_flow_run_state(run_id, RunState("CANCELLED", "Cancelled", message(commit)))
    return verdict == "ACCEPT"

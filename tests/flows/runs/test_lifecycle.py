"""`Run.superseded`: a pushed run's own decision before it builds, with the repository's history,
the branch's pushes (a fake API) and prod's version (a fake target)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID

import pytest

from flows.config import PipelineConfig
from flows.controlplane import api as api_module
from flows.report.artifacts import RunReport
from flows.runs import lifecycle
from flows.webhook.payload import Deploy
from tests.flows.fakes import FakeTarget
from tests.flows.webhook.test_trigger import DEPLOYMENT, FakeApi
from tests.support import git


def commits(repo: Path, count: int) -> list[str]:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "root")
    git(repo, "tag", "v1.0")
    made = []
    for n in range(count):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"c{n}")
        made.append(git(repo, "rev-parse", "HEAD"))
    return made


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SimpleNamespace:
    api = FakeApi()
    target = FakeTarget.pair(prod_version=None, preprod_version=None)
    monkeypatch.setattr(api_module, "for_current_run", lambda: api)
    monkeypatch.setattr(lifecycle, "make_target", lambda name, config: target)
    monkeypatch.setattr(lifecycle, "get_run_logger", lambda: logging.getLogger("test"))
    repo = tmp_path / "app"
    return SimpleNamespace(api=api, target=target, repo=repo, shas=commits(repo, 3), monkeypatch=monkeypatch)


def serve(world: SimpleNamespace, version: str) -> None:
    """Prod (the environment on the prod address) serves `version`."""
    world.target.envs["node-1"] = replace(world.target.envs["node-1"], version=version)


def pushed(world: SimpleNamespace, commit: str, before: str | None, forced: bool = False) -> UUID:
    push = Deploy(str(world.repo), commit, "main", f"delivery-{commit}-{forced}", before, forced)
    run = world.api.create_flow_run_from_deployment(
        DEPLOYMENT, push.parameters(), tags=push.tags(), idempotency_key=push.delivery
    )
    return UUID(str(run.id))


def decide(world: SimpleNamespace, run_id: UUID, pushed_ref: str | None = "refs/heads/main") -> str | None:
    world.monkeypatch.setattr(lifecycle, "flow_run", SimpleNamespace(id=run_id))
    config = PipelineConfig()
    report = RunReport(application="app", target="fake", repo=str(world.repo), ref="x")
    state = lifecycle.Run(report, config, pushed_ref=pushed_ref).superseded()
    if state is None:
        return None
    assert state.is_cancelled() and report.ok and report.outcome.endswith(": not released")
    return state.message


def test_a_late_push_of_an_ancestor_of_what_prod_serves_is_superseded_by_prod(world: SimpleNamespace) -> None:
    a, b, c = world.shas
    serve(world, f"v1.0-3-g{c[:7]}")  # as `git describe` names it
    late = pushed(world, a, None)  # no other push of the branch is known: prod decides, by ancestry
    assert decide(world, late) == f"superseded by {c}"
    same = pushed(world, c, b)
    assert decide(world, same) == f"superseded by {c}"  # prod serves it already


def test_an_older_push_is_superseded_by_a_newer_one_by_ancestry_alone(world: SimpleNamespace) -> None:
    a, _, c = world.shas
    late, newest = pushed(world, a, None), pushed(world, c, None)  # no `before` links them
    assert decide(world, late) == f"superseded by {c}"
    assert decide(world, newest) is None  # prod unknown, nothing newer: released


def test_a_force_push_back_to_an_older_commit_is_released_and_a_run_by_hand_never_superseded(
    world: SimpleNamespace,
) -> None:
    a, _, c = world.shas
    serve(world, c[:7])
    reset = pushed(world, a, c, forced=True)
    assert decide(world, reset) is None
    by_hand = world.api.create_flow_run_from_deployment(DEPLOYMENT, {"ref": a}, idempotency_key="hand")
    assert decide(world, UUID(str(by_hand.id)), pushed_ref=None) is None


def test_a_run_its_worker_stopped_says_so_in_its_report_not_an_empty_error() -> None:
    from prefect.exceptions import TerminationSignal

    stopped = lifecycle.outcome_of(TerminationSignal(15))
    assert stopped.startswith("stopped by signal 15 from its worker (the run was cancelled")
    assert lifecycle.outcome_of(ValueError("no such ref")) == "ValueError: no such ref"
    assert lifecycle.stopped_by_worker(TerminationSignal(15))
    assert not lifecycle.stopped_by_worker(ValueError("no such ref"))

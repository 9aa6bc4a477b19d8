"""Reading the release history from a real Prefect server (the session's test harness)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows import steps
from flows.controlplane.api import ControlPlaneApi
from flows.metrics.dora import four_keys
from flows.metrics.history import application_of, commit_of, git_commit_time, read
from tests.support import git


def test_the_commit_comes_from_the_run_name_else_a_full_ref() -> None:
    assert commit_of("deliverypipeline-9a3327cd", "deliverypipeline", "HEAD") == "9a3327cd"
    assert commit_of("deliverypipeline-9a3327cd-dirty", "deliverypipeline", "HEAD") == "9a3327cd"
    assert commit_of("shop-v1.4-3-g0badcafe", "shop", "main") == "0badcafe"
    assert commit_of("shop-v1.4.0@0badcafe", "shop", "v1.4.0") == "0badcafe"
    assert commit_of("shop-main", "shop", "main") is None
    assert commit_of("shop-main", "shop", "0badcafe" * 5) == "0badcafe" * 5


def test_the_application_comes_from_the_config_parameter() -> None:
    assert application_of({}) == "deliverypipeline"
    assert application_of({"config": {"application": "shop"}}) == "shop"
    assert application_of({"config": '{"application": "shop"}'}) == "shop"
    assert application_of({"config": "not json"}) == "deliverypipeline"


def _repo(path: Path) -> str:
    git(path, "init", "-q")
    pinned = {"GIT_COMMITTER_DATE": "2026-12-01T10:00:00Z"}
    git(path, "commit", "-q", "--allow-empty", "-m", "one", env=pinned)
    return git(path, "rev-parse", "HEAD")


def test_a_commit_time_is_read_from_a_repository_here_and_unknown_elsewhere(tmp_path: Path) -> None:
    commit = _repo(tmp_path)
    assert git_commit_time(str(tmp_path), commit[:8]) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert git_commit_time("https://example.com/repo.git", commit) is None
    assert git_commit_time(str(tmp_path), "0badcafe") is None


@pytest.mark.slow  # starts a Prefect server (the session's test harness)
def test_a_failed_and_a_recovered_release_are_read_back_from_the_server(
    prefect_harness: None, tmp_path: Path
) -> None:
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Completed, Failed, Running

    commit = _repo(tmp_path)

    @flow(name="deliverypipeline")
    def release(repo: str = ".", ref: str = "HEAD", target: str = "local", config: Any = None) -> None:
        """A stand-in with the release flow's name and parameters."""

    @flow(name="recover")
    def recover(crashed_run: str) -> None:
        """A stand-in with the recovery flow's name and parameter."""

    @task
    def a_step() -> None:
        """A stand-in step."""

    with get_client(sync_client=True) as client:

        def run(of: Any, name: str, parameters: dict[str, Any], *ran: tuple[str, bool]) -> str:
            made = client.create_flow_run(of, name=name, parameters=parameters, state=Running())
            for index, (step, passed) in enumerate(ran):
                task_run = client.create_task_run(
                    a_step.with_options(name=step),
                    made.id,
                    f"{index}",
                    name=f"{step}-{index:03x}",
                    state=Running(),
                )
                client.set_task_run_state(task_run.id, Completed() if passed else Failed(), force=True)
            client.set_flow_run_state(made.id, Completed(), force=True)
            return str(made.id)

        # an application of its own: other tests' runs on the session's server are not counted
        where = {"repo": str(tmp_path), "ref": commit, "target": "local", "config": {"application": "shop"}}
        stayed = run(release, f"shop-{commit[:8]}", where, (steps.SWAP, True), (steps.VERIFY_PROD, True))
        run(
            release,
            "shop-back",
            where,
            (steps.SWAP, True),
            (steps.VERIFY_PROD, False),
            (steps.SWAP_BACK, True),
        )
        crashed = run(release, "shop-crashed", {**where, "ref": "HEAD"}, (steps.SWAP, True))
        recovery = run(
            recover,
            "recover shop-crashed",
            {"crashed_run": f"prefect.flow-run.{crashed}"},
            (steps.RECOVER, True),
            (steps.VERIFY_PROD, True),
        )
        run(
            release,
            "shop-other",
            {**where, "target": "aws", "repo": "https://example.com/r.git"},
            (steps.BUILD_IMAGE, False),
        )

    url = PREFECT_API_URL.value()
    assert url, "the Prefect test harness sets PREFECT_API_URL"
    with ControlPlaneApi(url) as api:
        releases, recoveries = read(api, datetime.now(UTC) + timedelta(seconds=5), 7)

    ours = {r.ref.name: r for r in releases}
    assert ours[f"shop-{commit[:8]}"].commit_time == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert [s.name for s in ours["shop-back"].steps] == [steps.SWAP, steps.VERIFY_PROD, steps.SWAP_BACK]
    assert [(r.ref.run_id, r.recovered_run_id) for r in recoveries if r.ref.run_id == recovery] == [
        (recovery, crashed)
    ]
    keys = {
        k.target: {f.key: f for f in k.figures}
        for k in four_keys(releases, recoveries, datetime.now(UTC) + timedelta(seconds=5), 7)
        if k.application == "shop"
    }
    local = keys["local"]
    assert [r.run_id for r in local["deployment_frequency"].runs] == [stayed]
    assert local["lead_time"].value is not None and local["lead_time"].value > 0
    assert local["change_failure_rate"].shown == "67 % (2 of 3)"
    assert [r.name for r in local["recovery_time"].runs] == [
        "shop-back",
        "shop-crashed",
        "recover shop-crashed",
    ]
    assert keys["aws"]["deployment_frequency"].shown == "0 in 7 d (0.00/day)"

"""GitHub push → receiver → Prefect deployment → worker → flow run, with real processes.

A real Prefect server, the deployments of prefect.yaml deployed from a fresh copy of the
checkout, a process worker, and `deliverypipeline webhook`. The flow is the real
`flows/pipeline.py:pipeline`, releasing commits of a committed copy of this working tree to a
local target of its own (free ports, temp state; needs the Docker engine, the registry on
127.0.0.1:5000 and HAProxy). DELIVERY_E2E_STANDIN=1 swaps in tests/e2e/standin_pipeline.py
(same name and parameters, no Docker) to test the trigger chain alone.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from flows.webhook.signature import sign
from tests.e2e.servers import (
    PREFECT,
    VENV_BIN,
    api_post,
    background,
    committed_copy,
    fresh_checkout,
    prefect_env,
    prefect_server,
    run_cli,
    wait_http,
)
from tests.support import free_port, git

pytestmark = pytest.mark.docker  # real servers and subprocesses; slow

SECRET = "e2e-secret-" + uuid.uuid4().hex
REAL = os.environ.get("DELIVERY_E2E_STANDIN") != "1"
STANDIN_ENTRYPOINT = "tests/e2e/standin_pipeline.py:pipeline"
RUN_DEADLINE_S = 900 if REAL else 180
PID = os.getpid()


@dataclass
class Stack:
    api_url: str
    webhook_url: str
    app_repo: Path
    records: Path
    logs: Path
    config: dict[str, Any]

    def push(
        self, sha: str, delivery: str, ref: str = "refs/heads/main", before: str | None = None
    ) -> httpx.Response:
        payload: dict[str, Any] = {
            "ref": ref,
            "after": sha,
            "deleted": False,
            "repository": {"clone_url": str(self.app_repo)},
        }
        if before is not None:
            payload["before"] = before
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
        }
        return httpx.post(self.webhook_url, content=body, headers=headers, timeout=15)

    def flow_runs(self) -> list[dict[str, Any]]:
        answer = httpx.post(
            f"{self.api_url}/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_ASC"}, timeout=10
        )
        answer.raise_for_status()
        runs: list[dict[str, Any]] = answer.json()
        return runs

    def wait_final(self, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_DEADLINE_S
        while time.monotonic() < deadline:
            run: dict[str, Any] = httpx.get(f"{self.api_url}/flow_runs/{run_id}", timeout=10).json()
            if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return run
            time.sleep(1)
        raise AssertionError(f"flow run {run_id} not finished within {RUN_DEADLINE_S} s; see {self.logs}")


def commit(repo: Path, message: str) -> str:
    with (repo / "CHANGES").open("a") as changes:
        changes.write(message + "\n")
    git(repo, "add", "CHANGES")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def real_config(tmp: Path) -> dict[str, Any]:
    """A local target of its own: free ports, a temp state dir, an image repository named by pid."""
    return {
        "application": f"e2e-{PID}",
        "prod_address": f"127.0.0.1:{free_port()}",
        "preprod_address": f"127.0.0.1:{free_port()}",
        "image_repository": f"deliverypipeline-test-e2e-{PID}",
        "deadlines": {"verify": 10, "ready": 120},
        "local": {"state_dir": str(tmp / "target-state"), "stop_grace": 1},
    }


def use_flow(checkout: Path, config: dict[str, Any]) -> None:
    """Point the copy's deployments at the stand-in, or give the real pipeline its own target."""
    manifest = checkout / "prefect.yaml"
    if not REAL:
        manifest.write_text(manifest.read_text().replace("flows/pipeline.py:pipeline", STANDIN_ENTRYPOINT))
        return
    data = yaml.safe_load(manifest.read_text())
    for deployment in data["deployments"]:
        if deployment["entrypoint"] == "flows/pipeline.py:pipeline":  # the releases, not the recovery
            deployment["parameters"]["config"] = config
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))


def tear_down_target(client: Any, config: dict[str, Any]) -> None:
    """Remove the real pipeline's containers, proxy and images (nothing to do for the stand-in)."""
    if client is None:
        return
    from flows.config import PipelineConfig
    from flows.targets.local.target import LocalTarget

    LocalTarget(PipelineConfig.model_validate(config), client=client).down(purge=True)
    for image in client.images.list():
        for tag in image.tags:
            if f"/{config['image_repository']}:" in tag:
                client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"e2e-{PID}")
    docker_client = request.getfixturevalue("docker_client") if REAL else None  # fails loudly if absent
    checkout = fresh_checkout(tmp / "checkout").resolve()
    config = real_config(tmp)
    use_flow(checkout, config)
    app_repo = tmp / "app"
    if REAL:
        committed_copy(app_repo)
    else:
        app_repo.mkdir()
        git(app_repo, "init", "-q", "-b", "main")
        commit(app_repo, "first")
    records = tmp / "records.jsonl"
    records.touch()
    home = tmp / "prefect-home"
    with prefect_server(home) as api_url:
        env = prefect_env(
            home,
            api_url,
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="2",
            DELIVERY_E2E_RECORDS=str(records),
            DELIVERYPIPELINE_WORK_DIR=str(tmp / "work"),
        )
        run_cli([PREFECT, "work-pool", "create", "deliverypipeline", "--type", "process"], env)
        run_cli([PREFECT, "--no-prompt", "deploy", "--all"], env, cwd=checkout)
        port = free_port()
        receiver_env = {**env, "DELIVERY_WEBHOOK_SECRET": SECRET}
        receiver = [str(VENV_BIN / "deliverypipeline"), "webhook", "--host", "127.0.0.1", "--port", str(port)]
        worker = [PREFECT, "worker", "start", "--pool", "deliverypipeline"]
        try:
            with (
                background(worker, env, tmp / "worker.log", cwd=checkout),
                background(receiver, receiver_env, tmp / "webhook.log") as receiver_process,
            ):
                wait_http(f"http://127.0.0.1:{port}/healthz", receiver_process, tmp / "webhook.log", 60)
                webhook_url = f"http://127.0.0.1:{port}/webhooks/github"
                yield Stack(api_url, webhook_url, app_repo, records, tmp, config)
        finally:
            tear_down_target(docker_client, config)


def test_push_of_a_new_commit_runs_the_deployment_once(stack: Stack) -> None:
    sha = commit(stack.app_repo, "second")
    delivery = str(uuid.uuid4())
    answer = stack.push(sha, delivery)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["flow_run_id"]

    run = stack.wait_final(run_id)
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["parameters"]["repo"] == str(stack.app_repo)
    assert run["parameters"]["ref"] == sha
    assert run["parameters"]["pushed_ref"] == "refs/heads/main"
    assert "branch:main" in run["tags"]

    again = stack.push(sha, delivery)  # GitHub's "Redeliver"
    assert again.status_code == 202, again.text
    assert again.json()["flow_run_id"] == run_id
    assert [r["id"] for r in stack.flow_runs() if r["parameters"].get("ref") == sha] == [run_id]


def test_ignored_pushes_start_nothing(stack: Stack) -> None:
    before = len(stack.flow_runs())
    sha = commit(stack.app_repo, "on a feature branch")
    answer = stack.push(sha, str(uuid.uuid4()), ref="refs/heads/feature")
    assert answer.status_code == 202
    assert answer.json()["status"] == "ignored"
    forged = httpx.post(stack.webhook_url, content=b"{}", headers={"X-GitHub-Event": "push"}, timeout=15)
    assert forged.status_code == 401
    assert len(stack.flow_runs()) == before


def test_two_quick_pushes_run_one_after_the_other(stack: Stack) -> None:
    shas = [commit(stack.app_repo, "third"), commit(stack.app_repo, "fourth")]
    run_ids = []
    for sha in shas:
        answer = stack.push(sha, str(uuid.uuid4()))
        assert answer.status_code == 202, answer.text
        run_ids.append(answer.json()["flow_run_id"])
        if len(run_ids) == 1:  # once started, a newer push waits for it instead of superseding it
            wait_state(stack, run_ids[0], "RUNNING")
    assert len(set(run_ids)) == 2
    runs = [stack.wait_final(run_id) for run_id in run_ids]
    assert [run["state_type"] for run in runs] == ["COMPLETED", "COMPLETED"], [run["state"] for run in runs]
    # As Prefect saw them: the second run started only after the first ended.
    times = sorted(
        (datetime.fromisoformat(r["start_time"]), datetime.fromisoformat(r["end_time"])) for r in runs
    )
    (_, first_end), (second_start, _) = times
    assert first_end <= second_start, f"runs overlapped: {times}"
    if REAL:
        return
    # As the flows themselves saw them.
    spans = sorted(
        (record["start"], record["end"])
        for record in map(json.loads, stack.records.read_text().splitlines())
        if record["ref"] in shas
    )
    assert len(spans) == 2
    (_, first_end), (second_start, _) = spans
    assert first_end <= second_start, f"runs overlapped: {spans}"


def test_a_burst_of_five_pushes_releases_the_newest_once_and_cancels_the_others(stack: Stack) -> None:
    shas = [commit(stack.app_repo, f"burst {n}") for n in range(5)]
    run_ids = []
    for sha in shas:  # as GitHub delivers a quick series of pushes: one after the other, in order
        answer = stack.push(sha, str(uuid.uuid4()))
        assert answer.status_code == 202, answer.text
        run_ids.append(answer.json()["flow_run_id"])
    runs = [stack.wait_final(run_id) for run_id in run_ids]
    newest = shas[-1]
    assert runs[-1]["state_type"] == "COMPLETED", runs[-1]["state"]
    for n, run in enumerate(runs[:-1]):  # each by a newer push of the burst (the next, when it came in time)
        assert run["state_type"] == "CANCELLED", run["state"]
        assert run["state"]["message"] in {f"superseded by {sha}" for sha in shas[n + 1 :]}
    if REAL:  # prod serves the newest commit of the burst, and no older run of it released
        from flows.release.health import fetch_health

        served = fetch_health(f"http://{stack.config['prod_address']}").version
        assert served is not None and newest[:7] in served, served
        return
    released = [json.loads(line)["ref"] for line in stack.records.read_text().splitlines()]
    assert [ref for ref in released if ref in shas] == [newest]  # released once, nothing older after it


def test_a_late_push_of_an_older_commit_leaves_prod_on_the_newer_one(stack: Stack) -> None:
    older = commit(stack.app_repo, "late: older")
    middle = commit(stack.app_repo, "late: middle")
    newer = commit(stack.app_repo, "late: newer")
    answer = stack.push(newer, str(uuid.uuid4()), before=middle)
    assert answer.status_code == 202, answer.text
    released = stack.wait_final(answer.json()["flow_run_id"])
    assert released["state_type"] == "COMPLETED", released["state"]["message"]

    # The push of the older commit, delivered after the newer one was released (GitHub delivers
    # out of order; a redelivery can come hours later). No push names it as its `before`, so the
    # receiver lets it through: the flow decides, by git ancestry, before it builds.
    late = stack.push(older, str(uuid.uuid4()), before=git(stack.app_repo, "rev-parse", f"{older}~1"))
    assert late.status_code == 202, late.text
    run = stack.wait_final(late.json()["flow_run_id"])
    assert run["state_type"] == "CANCELLED", run["state"]
    assert run["state"]["message"] == f"superseded by {newer}"
    if REAL:
        from flows.release.health import fetch_health

        served = fetch_health(f"http://{stack.config['prod_address']}").version
        assert served is not None and newer[:7] in served, served
        return
    records = [json.loads(line)["ref"] for line in stack.records.read_text().splitlines()]
    assert records[-1] == newer and older not in records


def wait_state(stack: Stack, run_id: str, state_type: str) -> dict[str, Any]:
    """Wait until the run reaches `state_type`; fail at once if it ends first."""
    deadline = time.monotonic() + RUN_DEADLINE_S
    while time.monotonic() < deadline:
        run: dict[str, Any] = httpx.get(f"{stack.api_url}/flow_runs/{run_id}", timeout=10).json()
        if run["state_type"] == state_type:
            return run
        if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            raise AssertionError(f"flow run ended {run['state_type']} before {state_type}: {run['state']}")
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} not {state_type} within {RUN_DEADLINE_S} s; see {stack.logs}")


@pytest.mark.skipif(not REAL, reason="the stand-in pipeline has no approval step and no target")
def test_rejected_approval_leaves_prod_as_it_was_and_notifies_with_version_and_link(stack: Stack) -> None:
    from flows.release.health import fetch_health
    from tests.flows.report.test_notify import Hook

    prod_url = f"http://{stack.config['prod_address']}"
    if fetch_health(prod_url).version is None:  # run alone: first put a version on prod
        answer = stack.push(commit(stack.app_repo, "first release"), str(uuid.uuid4()))
        assert answer.status_code == 202, answer.text
        assert stack.wait_final(answer.json()["flow_run_id"])["state_type"] == "COMPLETED"
    served = fetch_health(prod_url).version
    assert served is not None
    sha = commit(stack.app_repo, "needs approval")

    hook = Hook()
    listening = threading.Thread(
        target=hook.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    listening.start()
    try:
        # The UI's "Run" → "Custom run" on the deployment: the same API call.
        deployment = httpx.get(f"{stack.api_url}/deployments/name/deliverypipeline/local", timeout=10).json()
        parameters = {
            "repo": str(stack.app_repo),
            "ref": sha,
            "require_approval": True,
            "notify_url": hook.url,
        }
        created = api_post(
            f"{stack.api_url}/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters}
        )
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]

        wait_state(stack, run_id, "PAUSED")
        assert fetch_health(prod_url).version == served  # waiting for a person: prod untouched
        preprod = fetch_health(f"http://{stack.config['preprod_address']}").version
        assert preprod is not None and preprod.endswith(sha[:8])

        # The UI's Resume form posts the answer here. The server may answer a transient error
        # (e.g. its SQLite database busy under the suite's load): answer again, as a person would.
        deadline = time.monotonic() + 30
        while True:
            resumed = httpx.post(
                f"{stack.api_url}/flow_runs/{run_id}/resume",
                json={"run_input": {"approve": False, "reason": "not today"}},
                timeout=10,
            )
            accepted = resumed.status_code < 300 and resumed.json().get("status") == "ACCEPT"
            if accepted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert accepted, f"HTTP {resumed.status_code}: {resumed.text}"
        run = stack.wait_final(run_id)
        assert run["state_type"] == "FAILED", run["state"]
        assert "was not approved (not today)" in run["state"]["message"]
        assert fetch_health(prod_url).version == served

        deadline = time.monotonic() + 30
        while not hook.received and time.monotonic() < deadline:
            time.sleep(0.2)
        [(_, _, message)] = hook.received
        assert f"{preprod} was NOT released" in message["text"]
        assert f"{stack.api_url.removesuffix('/api')}/runs/flow-run/{run_id}" in message["text"]
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        listening.join(timeout=5)


def test_unknown_deployment_is_a_clear_503(stack: Stack) -> None:
    import asyncio

    from flows.webhook.payload import Deploy
    from flows.webhook.trigger import PrefectTrigger, TriggerUnavailable

    trigger = PrefectTrigger("deliverypipeline/nowhere", stack.api_url, timeout_s=5)
    push = Deploy(repository=str(stack.app_repo), commit="a" * 40, branch="main", delivery=str(uuid.uuid4()))

    async def attempt() -> None:
        await trigger.start()  # what the receiver's start-up does; it only logs the missing deployment
        try:
            await trigger(push)
        finally:
            await trigger.close()

    with pytest.raises(TriggerUnavailable, match="'deliverypipeline/nowhere' not found"):
        asyncio.run(attempt())

"""The whole pipeline against the real Docker engine, registry and HAProxy: releases and faults.

One local target (free ports, a temp state dir) serves the module: a first release puts the
template repository's commit on prod, then each test releases a new commit of a temp git
repository (a copy of this working tree, committed) and checks prod afterwards. Every fault
test proves prod keeps serving the version it served before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from flows.config import PipelineConfig
from flows.image.push import image_in_registry
from flows.release.health import HealthReport, fetch_health
from tests.support import free_port, git

# Prefect and the flow are imported inside the tests: this module is collected (then
# deselected) by the pipeline's own fast unit-test step, which must not pay for Prefect.

pytestmark = pytest.mark.docker

PID = os.getpid()
MAIN = Path(__file__).resolve().parents[2]
REGISTRY = "127.0.0.1:5000"
IMAGE_REPOSITORY = f"deliverypipeline-test-pipeline-{PID}"
SKIP_NAMES = {
    ".venv",
    ".git",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".wheelhouse",
    ".state",
    "__pycache__",
}
# The temp repository keeps only a few fast tests: the pipeline's unit-test step is under test
# here, not the project's whole suite.
KEEP_IN = {
    MAIN / "tests": {"__init__.py", "conftest.py", "flows"},
    MAIN / "tests" / "flows": {"__init__.py", "steps"},
}


def _ignore(directory: str, names: list[str]) -> set[str]:
    keep = KEEP_IN.get(Path(directory))
    skipped = {n for n in names if n in SKIP_NAMES or n.endswith(".egg-info")}
    if keep is not None:
        skipped |= {n for n in names if n not in keep}
    return skipped


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree (uncommitted files included) committed into a fresh repository."""
    repo = tmp_path_factory.mktemp("template") / "repo"
    shutil.copytree(MAIN, repo, ignore=_ignore, symlinks=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the project as it is")
    git(repo, "tag", "v1.0.0")
    return repo


@dataclass
class Stack:
    """The module's target and repository, and the last commit known good."""

    repo: Path
    config: PipelineConfig
    good: str

    @property
    def prod_url(self) -> str:
        return f"http://{self.config.prod_address}"

    @property
    def preprod_url(self) -> str:
        return f"http://{self.config.preprod_address}"

    def prod_version(self) -> str | None:
        return fetch_health(self.prod_url).version

    def calls(self) -> dict[str, Any]:
        response = requests.get(self.prod_url, headers={"Accept": "application/json"}, timeout=5)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def commit(self, name: str, files: dict[str, str]) -> str:
        """A new commit on top of the last good one (on its own branch), changing `files`."""
        git(self.repo, "checkout", "-q", "-B", name, self.good)
        for path, text in files.items():
            (self.repo / path).parent.mkdir(parents=True, exist_ok=True)
            (self.repo / path).write_text(text)
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-qm", name)
        return git(self.repo, "rev-parse", "HEAD")


def run_flow(stack: Stack, ref: str, config: PipelineConfig | None = None) -> tuple[Any, Any]:
    """Run the pipeline in this process; (final state, result or exception)."""
    from flows.pipeline import pipeline

    state = pipeline(
        repo=str(stack.repo), ref=ref, target="local", config=config or stack.config, return_state=True
    )
    return state, state.result(raise_on_failure=False)


def task_runs(state: Any) -> dict[str, Any]:
    """The flow run's task runs by step name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    return {run.name.rsplit("-", 1)[0]: run for run in runs}


def flow_run_name(state: Any) -> str:
    """The flow run's name as the server has it now."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.read_flow_run(state.state_details.flow_run_id).name)


def artifacts(state: Any) -> dict[str, str]:
    """The flow run's artifacts (the last one of each key), as markdown by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    ordered = sorted(found, key=lambda artifact: artifact.created or 0)
    return {str(artifact.key): str(artifact.data) for artifact in ordered if artifact.key}


def remove_images(client: Any, repository: str) -> None:
    """Remove every tag of `repository`, whatever the registry host in front of it."""
    for image in client.images.list():
        for tag in image.tags:
            if f"/{repository}:" in tag:
                client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def stack(
    prefect_harness: None,
    template_repo: Path,
    docker_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A local target on free ports with the template's commit released to prod."""
    from flows.targets.local.target import LocalTarget

    base = tmp_path_factory.mktemp(f"pipeline-{PID}")
    os.environ["DELIVERYPIPELINE_WORK_DIR"] = str(base / "work")
    repo = base / "repo"
    subprocess.run(["git", "clone", "-q", str(template_repo), str(repo)], check=True, timeout=60)
    config = PipelineConfig.model_validate(
        {
            "application": f"pipeline-test-{PID}",
            "prod_address": f"127.0.0.1:{free_port()}",
            "preprod_address": f"127.0.0.1:{free_port()}",
            "registry": REGISTRY,
            "image_repository": IMAGE_REPOSITORY,
            "deadlines": {"verify": 5, "ready": 60, "poll_interval": 0.5},
            "analysis": {"window": 2},
            "local": {"state_dir": str(base / "state"), "stop_grace": 1},
        }
    )
    first = git(repo, "rev-parse", "HEAD")
    stack = Stack(repo=repo, config=config, good=first)
    try:
        state, result = run_flow(stack, first)
        assert state.is_completed(), result
        assert stack.prod_version() == result["version"] == "v1.0.0"
        yield stack
    finally:
        LocalTarget(config, client=docker_client).down(purge=True)
        remove_images(docker_client, IMAGE_REPOSITORY)
        os.environ.pop("DELIVERYPIPELINE_WORK_DIR", None)


def test_second_commit_reaches_prod_and_the_count_continues(stack: Stack) -> None:
    before = stack.calls()
    sha = stack.commit("second", {"webapp/release_note.txt": "second release\n"})
    state, result = run_flow(stack, sha)
    assert state.is_completed(), result
    assert result["version"] == f"v1.0.0-1-g{sha[:8]}" and result["commit"] == sha
    after = stack.calls()
    assert after["version"] == result["version"] == stack.prod_version()
    # same store: the count goes on across versions (the probe and the verifications request `/` too)
    assert after["calls"] > before["calls"]
    assert [h["version"] for h in after["deploy_history"]][:2] == [result["version"], "v1.0.0"]
    assert result["probe"]["requests"] > 0 and result["probe"]["failures"] == 0
    assert fetch_health(stack.preprod_url).version == "v1.0.0"  # the old prod is preprod now
    assert flow_run_name(state) == f"{stack.config.application}-{result['version']}"
    shown = artifacts(state)
    report = shown["release-report"]
    assert report.startswith(f"# {stack.config.application} {result['version']}: released")
    assert f"commit `{sha}`" in report
    assert f"- **prod now** {result['prod']}" in report and result["version"] in result["prod"]
    for step in ("checkout", "unit tests", "build image", "push", "swap", "verify prod"):
        assert f"| {step} | Completed |" in report or f"| {step} | Cached |" in report
    assert "## Verifications" in report and f"expected {result['version']}" in report
    probe = shown["zero-downtime"]
    assert "zero downtime held: 0 of" in probe
    for phase in ("before", "during", "after"):
        assert f"| {phase} |" in probe
    assert "![latency of prod over the release, the swap shaded](data:image/svg+xml;base64," in probe
    assert "(shaded); 0 failed requests (red lines)" in probe  # the swap marked, no failed request
    assert "# Unit tests passed" in shown["unit-tests"]
    stack.good = sha


def test_failing_unit_tests_stop_the_run_before_anything_is_pushed(stack: Stack) -> None:
    from flows.source.tasks import UnitTestsFailed

    served = stack.prod_version()
    failing = "def test_broken_on_purpose() -> None:\n    assert 1 == 2, 'broken on purpose'\n"
    sha = stack.commit("failing-tests", {"tests/flows/source/test_broken_on_purpose.py": failing})
    state, error = run_flow(stack, sha)
    assert state.is_failed()
    assert isinstance(error, UnitTestsFailed)
    assert "1 failed" in str(error) and "test_broken_on_purpose" in str(error)
    runs = task_runs(state)
    assert runs["unit tests"].run_count == 1  # never retried
    assert "push" not in runs and "deploy" not in runs  # the image built alongside goes nowhere
    version = git(stack.repo, "describe", "--tags", "--always")
    assert not image_in_registry(REGISTRY, stack.config.image, version)
    assert stack.prod_version() == served


def test_image_that_does_not_start_is_never_pushed(stack: Stack) -> None:
    served = stack.prod_version()
    sha = stack.commit("no-start", {"webapp/__main__.py": "raise SystemExit('broken on purpose')\n"})
    state, error = run_flow(stack, sha)
    assert state.is_failed()
    assert type(error).__name__ == "SmokeTestFailed"
    version = git(stack.repo, "describe", "--tags", "--always")
    assert not image_in_registry(REGISTRY, stack.config.image, version)
    assert "push" not in task_runs(state)
    assert stack.prod_version() == served


def test_unreachable_registry_is_retried_then_fails_clearly(stack: Stack) -> None:
    served = stack.prod_version()
    down = stack.config.model_copy(update={"registry": f"127.0.0.1:{free_port()}"})
    state, error = run_flow(stack, stack.good, down)
    assert state.is_failed()
    assert type(error).__name__ == "RegistryUnreachable"
    assert "unreachable" in str(error)
    assert task_runs(state)["push"].run_count == 4  # the first try and three retries
    assert stack.prod_version() == served


def test_preprod_never_healthy_fails_at_the_deadline_without_a_swap(stack: Stack) -> None:
    served = stack.prod_version()
    hang = (
        "import os, sys, time\n"
        "if os.environ.get('DELIVERY_CONF'):  # only where the target runs it, not in the smoke test\n"
        "    time.sleep(3600)\n"
        "from webapp.server import main\n"
        "sys.exit(main())\n"
    )
    sha = stack.commit("never-healthy", {"webapp/__main__.py": hang})
    deadlines = stack.config.deadlines.model_copy(update={"ready": 6})
    state, error = run_flow(stack, sha, stack.config.model_copy(update={"deadlines": deadlines}))
    assert state.is_failed(), error
    assert "after 6s" in str(error) and "deadline" in str(error)  # which wait, and how long
    runs = task_runs(state)
    assert "deploy" in runs and "swap" not in runs
    assert stack.prod_version() == served


def test_failed_prod_verification_swaps_back_and_a_rerun_reuses_the_build(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.release import tasks as release_steps

    served = stack.prod_version()
    sha = stack.commit("verify-fails", {"webapp/release_note.txt": "verify fails once\n"})

    def refuse(url: str) -> HealthReport:
        return HealthReport(url, 503, None, error="HTTP 503 (injected)")

    monkeypatch.setattr(release_steps, "prod_health_check", refuse)
    state, error = run_flow(stack, sha)
    assert state.is_failed()
    assert type(error).__name__ == "SwappedBack" and "swapped back" in str(error)
    runs = task_runs(state)
    assert runs["swap"].state.is_completed()
    assert "swapped back" in (runs["swap back"].state.message or "")  # the error that ends the run
    assert stack.prod_version() == served  # the old version serves prod again
    new_version = fetch_health(stack.preprod_url).version
    assert new_version is not None and new_version.endswith(sha[:8])

    monkeypatch.setattr(release_steps, "prod_health_check", fetch_health)
    state, result = run_flow(stack, sha)
    assert state.is_completed(), result
    assert stack.prod_version() == result["version"] == new_version
    steps = result["steps"]
    reused = ("unit tests", "build image", "smoke test", "push")
    assert {step: steps[step] for step in reused} == dict.fromkeys(reused, "Cached")
    assert "deploy" in steps  # preprod already ran it: the deploy step only checked
    stack.good = sha


def test_already_live_version_is_a_quick_success(stack: Stack) -> None:
    state, result = run_flow(stack, stack.good)
    assert state.is_completed(), result
    assert "already live" in result["outcome"]
    assert "deploy" not in result["steps"] and "swap" not in result["steps"]


def test_a_page_failing_only_in_the_environments_never_reaches_prod(stack: Stack) -> None:
    served = stack.prod_version()
    broken = (
        (stack.repo / "webapp" / "app.py")
        .read_text()
        .replace(
            "            body = service.body(wants_json(_accept(scope)))",
            '            if os.environ.get("DELIVERY_CONF"):  # the production configuration\n'
            '                raise RuntimeError("broken on purpose")\n'
            "            body = service.body(wants_json(_accept(scope)))",
        )
    )
    assert "broken on purpose" in broken
    if "\nimport os\n" not in broken:
        broken = broken.replace(
            "from __future__ import annotations\n", "from __future__ import annotations\n\nimport os\n"
        )
    sha = stack.commit("page-fails-in-envs", {"webapp/app.py": broken})
    state, error = run_flow(stack, sha)
    assert state.is_failed()
    assert "user path / (text/html): HTTP 500" in str(error)
    assert "swap" not in task_runs(state)
    assert stack.prod_version() == served
    assert requests.get(stack.prod_url + "/", timeout=5).status_code == 200


def test_a_page_failing_under_real_traffic_is_swapped_back_by_the_analysis(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault the page checks do not see (they are made to pass here) is caught by HAProxy's counters."""
    from flows.release import tasks as release_steps
    from flows.release.health import PathAnswer

    served = stack.prod_version()
    broken = (
        (stack.repo / "webapp" / "app.py")
        .read_text()
        .replace(
            "            body = service.body(wants_json(_accept(scope)))",
            '            if os.environ.get("DELIVERY_CONF") == "/app/application.conf":\n'
            '                raise RuntimeError("broken in the environments")\n'
            "            body = service.body(wants_json(_accept(scope)))",
        )
    )
    if "\nimport os\n" not in broken:
        broken = broken.replace(
            "from __future__ import annotations\n", "from __future__ import annotations\n\nimport os\n"
        )
    assert "broken in the environments" in broken
    sha = stack.commit("page-fails-under-traffic", {"webapp/app.py": broken})
    monkeypatch.setattr(
        release_steps, "paths_check", lambda url, paths: [PathAnswer(path, 200, 0.001) for path in paths]
    )
    state, error = run_flow(stack, sha)
    assert state.is_failed()
    message = str(error)
    assert "failed the traffic analysis" in message and "5xx share" in message, message
    assert "swapped back" in message
    runs = task_runs(state)
    assert runs["verify prod"].state.is_completed()
    assert "swapped back" in (runs["swap back"].state.message or "")  # the error that ends the run
    assert stack.prod_version() == served
    assert requests.get(stack.prod_url + "/", timeout=5).status_code == 200
    report = artifacts(state)["release-report"]
    assert "## Traffic analysis" in report and "| after the swap | 100 % | FAILED" in report


def test_a_second_release_waits_for_the_target_lock_instead_of_overlapping(stack: Stack) -> None:
    from flows.release.lock import holder
    from flows.targets.local.target import LocalTarget

    held = threading.Event()
    release_lock = threading.Event()

    def hold() -> None:
        with LocalTarget(stack.config).lock(holder("manual swap", "test"), 30, print):
            held.set()
            release_lock.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(30)
    timer = threading.Timer(3.0, release_lock.set)
    timer.start()
    started = time.monotonic()
    state, result = run_flow(stack, stack.good)
    waited = time.monotonic() - started
    thread.join(30)
    assert state.is_completed(), result
    assert waited >= 3.0

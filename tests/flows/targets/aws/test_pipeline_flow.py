"""The pipeline *flow* with `target="aws"`: push with registry login, then the release on EB.

`flows.pipeline.pipeline` runs for real (Prefect test server, the real tasks from preflight and
push on, `make_target("aws")`, the real HTTP checks of `/health` and the user paths, the real
zero-downtime probe), with:
- checkout, unit tests, build and smoke test replaced by tasks returning their results
  (they are the same on every target and tested against Docker elsewhere);
- Docker's push and the registry's manifest check replaced by recorders, so the test sees
  which credentials the push step obtained (an ECR token from a stubbed ECR, or a Prefect
  Secret block);
- EB and S3 answered by `EbWorld`'s botocore stubbers in the order the flow asks (preflight,
  the S3 release lock, the bundle, deploy, the waits, the swap waiting for both Ready, the
  traffic read from DescribeEnvironmentHealth over a short analysis window), and HTTP to the
  EB CNAMEs (`/health`, `/` as HTML and JSON) answered from `EbWorld` by a requests adapter
  (no name leaves the process).
Each test asserts what happened to prod.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from botocore.stub import Stubber
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows import pipeline as pipeline_module
from flows import steps
from flows.config import Deadlines, PipelineConfig
from flows.image import registry_auth as registry_module
from flows.image import tasks as image_steps
from flows.image.build import BuiltImage
from flows.image.smoke import SmokeResult
from flows.release import watch as watch_module
from flows.release.health import fetch_health
from flows.release.settings import AnalysisSettings, VerificationSettings
from flows.report.artifacts import RunReport, publish_run
from flows.runs.record import Step
from flows.source.junit import TestSummary
from flows.source.tasks import Checkout
from flows.targets.aws import target as target_module
from flows.targets.aws.settings import AwsSettings
from tests.flows.targets.aws.eb_world import (
    ACCOUNT,
    APPLICATION,
    BUCKET,
    NODE_1,
    NODE_2,
    NOWHERE,
    PREPROD_CNAME,
    PROD_CNAME,
    REGION,
    EbWorld,
    _session,
    aws_config,
)

pytestmark = pytest.mark.slow  # starts a Prefect server (the session's test harness): marked `server`

MAIN = Path(__file__).resolve().parents[4]
VERSION = "v2"
ECR = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
TOKEN_PASSWORD = "ecr-token-for-the-push"
# The waits use real time. A 0.25 s look makes the 0.5 s analysis window exactly three looks
# (at 0, 0.25 and 0.5 s: the analysis polls every min(poll, max(window / 20, 0.25)) s), so the
# DescribeEnvironmentHealth answers can be queued like every other EB answer.
POLL_S = 0.25
WINDOW_S = 0.5


def aws_settings(**changes: Any) -> AwsSettings:
    """The stubbed account's settings; the lock's lease outlasts the run (no renewal is answered)."""
    settings: dict[str, Any] = {
        "region": REGION,
        "bucket": BUCKET,
        "endpoint_url": NOWHERE,
        "poll_interval": 0.01,
        "lock_lease": 600,
        "lock_renew": 300,
    }
    settings.update(changes)
    return AwsSettings(**settings)


def flow_config(**changes: Any) -> PipelineConfig:
    """The seed's EB set-up with deadlines and an analysis window short enough for a test."""
    settings: dict[str, Any] = {
        "aws": aws_settings(),
        "deadlines": Deadlines(
            preprod_free=5, ready=10, verify=1.0, swap=5, target_lock=5, poll_interval=POLL_S
        ),
        "analysis": AnalysisSettings(window=WINDOW_S),
        "verification": VerificationSettings(consistent_answers=2),
    }
    settings.update(changes)
    return aws_config(**settings)


@dataclass
class Recorder:
    """What the push step did: manifest checks and pushes, with the credentials each carried."""

    checks: list[tuple[str, str, str, tuple[str, str] | None]] = field(default_factory=list)
    pushes: list[tuple[str, str, dict[str, str] | None]] = field(default_factory=list)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Recorder:
    """Checkout, unit tests, build and smoke test faked in the flow; Docker's push and the check recorded."""
    record = Recorder()

    @task(name=steps.CHECKOUT, cache_policy=NO_CACHE)
    def checkout(repo: str, ref: str) -> Checkout:
        path = tmp_path / "checkout"
        path.mkdir()
        shutil.copy(MAIN / "Dockerrun.aws.json", path / "Dockerrun.aws.json")
        return Checkout(str(path), repo, ref, "c0ffee" * 6 + "beef", "tree", VERSION, "2026-11-27T09:00:00Z")

    @task(name=steps.UNIT_TESTS, cache_policy=NO_CACHE)
    def unit_tests(source: Checkout, deadline_s: float) -> TestSummary:
        return TestSummary(tests=3, failed=0, errors=0, skipped=0, seconds=0.1)

    @task(name=steps.BUILD_IMAGE, cache_policy=NO_CACHE)
    def build_image(source: Checkout, config: PipelineConfig) -> BuiltImage:
        return BuiltImage(tag=f"{config.image}:{source.version}", image_id="sha256:" + "ab" * 32)

    @task(name=steps.SMOKE_TEST, cache_policy=NO_CACHE)
    def smoke_test(image: BuiltImage, version: str, deadline_s: float) -> SmokeResult:
        return SmokeResult(image.tag, version, "http://127.0.0.1:9", 0.5)

    def image_in_registry(
        registry: str, repository: str, tag: str, *, auth: tuple[str, str] | None = None, timeout: float = 10
    ) -> bool:
        record.checks.append((registry, repository, tag, auth))
        return False

    def push_image(
        client: Any, repository: str, tag: str, auth_config: dict[str, str] | None = None, log: Any = print
    ) -> str:
        record.pushes.append((repository, tag, auth_config))
        return "sha256:" + "cd" * 32

    monkeypatch.setattr(pipeline_module, "checkout", Step(checkout))
    monkeypatch.setattr(pipeline_module, "unit_tests", Step(unit_tests))
    monkeypatch.setattr(pipeline_module, "build_image", Step(build_image))
    monkeypatch.setattr(pipeline_module, "smoke_test", Step(smoke_test))
    monkeypatch.setattr(image_steps, "image_in_registry", image_in_registry)
    monkeypatch.setattr(image_steps, "push_image", push_image)
    monkeypatch.setattr(image_steps, "docker_client", lambda: None)
    return record


def _answer(
    request: requests.PreparedRequest, status: int, body: bytes, content_type: str
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    response.encoding = "utf-8"
    response.url = request.url or ""
    response.request = request
    return response


def page(request: requests.PreparedRequest, world: EbWorld) -> requests.Response:
    """What the environment behind the request's host answers, as the application would.

    `/health` is JSON with the version; `/` is the page, as JSON for a client asking only for
    JSON, else HTML; a broken version answers 502 from the load balancer; an unknown host does
    not answer at all.
    """
    parts = urlsplit(request.url or "")
    report = world.check(f"http://{parts.hostname}")
    if report.status_code is None:
        raise requests.ConnectionError(report.error)
    if report.status_code != 200 or report.version is None:
        html = f"<html><body><h1>{report.status_code} Bad Gateway</h1></body></html>"
        return _answer(request, report.status_code, html.encode(), "text/html")
    if parts.path == "/health":
        health = {"status": "ok", "version": report.version}
        return _answer(request, 200, json.dumps(health).encode(), "application/json")
    if parts.path == "/":
        accept = str(request.headers.get("Accept", ""))
        if "application/json" in accept and "text/html" not in accept:
            body = {"application": APPLICATION, "version": report.version}
            return _answer(request, 200, json.dumps(body).encode(), "application/json")
        html = f"<html><body><h1>{APPLICATION}</h1><p>version {report.version}</p></body></html>"
        return _answer(request, 200, html.encode(), "text/html; charset=utf-8")
    return _answer(request, 404, b"<html><body>not found</body></html>", "text/html")


@pytest.fixture
def http_to(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EbWorld]]:
    """Route HTTP to EB hosts to the world under test; any other AWS host is refused."""
    worlds: list[EbWorld] = []
    original = requests.adapters.HTTPAdapter.send

    def send(self: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        host = urlsplit(request.url or "").hostname or ""
        if not host.endswith((".elasticbeanstalk.com", ".amazonaws.com")):
            return original(self, request, **kwargs)
        if not worlds:
            raise requests.ConnectionError(f"the test routes no HTTP to {request.url}")
        return page(request, worlds[0])

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    yield worlds


def stubbed_ecr(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """ECR answering one GetAuthorizationToken for the account, as the push's login asks."""
    client = _session().client("ecr", endpoint_url=NOWHERE)
    stubber = Stubber(client)
    token = base64.b64encode(f"AWS:{TOKEN_PASSWORD}".encode()).decode()
    stubber.add_response(
        "get_authorization_token",
        {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": datetime.now(UTC) + timedelta(hours=12),
                    "proxyEndpoint": f"https://{ECR}",
                }
            ]
        },
        {"registryIds": [ACCOUNT]},
    )
    stubber.activate()
    monkeypatch.setattr(registry_module, "_ecr_client", lambda config, region: client)
    return stubber


class FlowWorld(EbWorld):
    """The stubbed EB of one flow run, and the run's report once published."""

    def __init__(self, config: PipelineConfig) -> None:
        super().__init__(config)
        self.reports: list[RunReport] = []


def eb_world(monkeypatch: pytest.MonkeyPatch, config: PipelineConfig, http: list[EbWorld]) -> FlowWorld:
    """EbWorld behind `make_target("aws", config)`: the flow's target gets the stubbed clients.

    The probe is lighter than in production (2 threads, a short tail): 2 shared cores.
    """
    world = FlowWorld(config)
    world.event_clock = datetime.now(UTC) + timedelta(minutes=5)  # events come after the deploy starts
    monkeypatch.setattr(target_module, "make_clients", lambda config, session=None: world.clients)
    monkeypatch.setattr(watch_module, "PROBE_THREADS", 2)
    monkeypatch.setattr(watch_module, "PROBE_TAIL_S", 0.3)

    def published(report: RunReport) -> None:
        world.reports.append(report)
        publish_run(report)

    monkeypatch.setattr("flows.runs.lifecycle.publish_run", published)
    http.append(world)
    return world


def queue_until_swap(world: EbWorld) -> None:
    """EB's and S3's answers in the order the flow asks, from the preflight up to the swap."""
    world.preflight_ok()  # preflight: the application, both environments, the bucket
    world.lock_taken()  # recover: the lock taken for the recovery alone, before the build...
    world.lock_released()  # ... nothing to recover (EB replaces its instances), let go
    world.lock_taken()  # lock target: no lock object, the conditional put wins
    world.version_answer(VERSION, None)  # release bundle: not registered yet
    world.upload(VERSION)
    world.create_version(VERSION)
    world.version_answer(VERSION, "Processing")
    world.version_answer(VERSION, "Processed")
    world.describe()  # pick preprod: node-2 (preprod CNAME) is Ready
    world.describe()  # the probe looks up the prod URL
    world.environment_health(NODE_1, 200)  # the previous prod's traffic when the watch begins
    world.update(NODE_2, VERSION)  # deploy
    world.events(NODE_2, ("INFO", "Environment update is starting."))
    world.describe()  # still Updating
    world.events(NODE_2, ("INFO", "Environment update completed successfully."))
    world.describe(node_2={"status": "Ready", "health": "Green", "version": VERSION})
    world.describe()  # verify preprod: its URL
    world.environment_health(NODE_1, 200)  # the previous prod measured just before the swap
    world.describe()  # both Ready: swappable
    world.swap(NODE_2, NODE_1)
    world.describe()  # the swap settled
    world.describe()  # verify prod: its URL


def queue_analysis(world: EbWorld, percent_5xx: int = 0) -> None:
    """The new prod's traffic over the analysis window: a reading, then its three looks."""
    world.environment_health(NODE_2, 5)  # the start: what preprod served before the swap
    world.environment_health(NODE_2, 5, new_window=False)  # at 0 s: no new window yet
    world.environment_health(NODE_2, 300, percent_5xx)  # at 0.25 s
    world.environment_health(NODE_2, 300, percent_5xx)  # at 0.5 s: the window is over


def queue_swap_back(world: EbWorld) -> None:
    """The swap back: both Ready, node-1 to prod again, settled."""
    world.describe()
    world.swap(NODE_1, NODE_2)
    world.describe()


def queue_end(world: EbWorld) -> None:
    """The end of the run: the lock removed (still ours), the run report reads the roles."""
    world.lock_released()
    world.describe()


def steps_of(world: FlowWorld) -> dict[str, str]:
    """How each step of the run ended, as its report (published at the end) records it."""
    (report,) = world.reports
    return {step.name: step.state for step in report.steps}


def run(config: PipelineConfig, tmp_path: Path) -> tuple[Any, Any]:
    """The flow, in this process, as `deliverypipeline run --target aws` calls it."""
    repo = tmp_path / "repo"  # the checkout is a stand-in: the path only has to exist
    repo.mkdir(exist_ok=True)
    state = pipeline_module.pipeline(
        repo=str(repo), ref="main", target="aws", config=config, return_state=True
    )
    return state, state.result(raise_on_failure=False)


def uploaded_bundle(world: EbWorld) -> dict[str, Any]:
    """The Dockerrun.aws.json the flow put in S3 (the other PutObject is the release lock)."""
    key = world.bundle_key(VERSION)
    bodies = [params["Body"] for name, params in world.calls if name == "PutObject" and params["Key"] == key]
    assert len(bodies) == 1
    body = bodies[0]
    data: dict[str, Any] = json.loads(body if isinstance(body, (bytes, str)) else body.read())
    return data


def s3_operations(world: EbWorld) -> list[str]:
    """The successful S3 calls, in order, naming the object each was about."""
    return [
        f"{name} {params.get('Key', params.get('Bucket'))}"
        for name, params in world.calls
        if name in ("HeadBucket", "GetObject", "PutObject", "DeleteObject")
    ]


def test_flow_pushes_with_an_ecr_login_and_puts_the_version_behind_the_prod_cname(
    prefect_harness: None,
    recorder: Recorder,
    http_to: list[EbWorld],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    config = flow_config(registry=ECR)
    ecr = stubbed_ecr(monkeypatch)
    world = eb_world(monkeypatch, config, http_to)
    queue_until_swap(world)
    queue_analysis(world)
    queue_end(world)

    state, result = run(config, tmp_path)

    assert state.is_completed(), result
    # Prod: node-2 behind the prod CNAME, serving v2 over HTTP; node-1 (v1) kept as the rollback.
    assert world.behind(PROD_CNAME) == NODE_2 and fetch_health(f"http://{PROD_CNAME}").version == VERSION
    assert world.behind(PREPROD_CNAME) == NODE_1 and world.serving[NODE_1] == "v1"
    assert NODE_2 in result["prod"] and VERSION in result["prod"]
    assert result["outcome"] == f"{VERSION} is live on prod ({NODE_2})"
    assert list(result["steps"]) == [step for step in steps.STEPS if step != steps.SWAP_BACK]
    assert set(result["steps"].values()) == {"Completed"}
    assert result["probe"]["requests"] > 0 and result["probe"]["failures"] == 0
    # Push with login: the ECR token from GetAuthorizationToken went to the check and the push.
    login = {"username": "AWS", "password": TOKEN_PASSWORD, "serveraddress": f"https://{ECR}"}
    assert recorder.pushes == [(f"{ECR}/deliverypipeline", VERSION, login)]
    assert (ECR, f"{ECR}/deliverypipeline", VERSION, ("AWS", TOKEN_PASSWORD)) in recorder.checks
    ecr.assert_no_pending_responses()
    # The registered bundle names the pushed image; EB was driven through every step.
    bundle = uploaded_bundle(world)
    assert bundle["Image"]["Name"] == f"{ECR}/deliverypipeline:{VERSION}"
    operations = world.operations()
    for name in ("CreateApplicationVersion", "UpdateEnvironment", "DescribeEvents", "SwapEnvironmentCNAMEs"):
        assert name in operations
    assert operations.index("UpdateEnvironment") < operations.index("SwapEnvironmentCNAMEs")
    # The new prod's traffic was judged after the swap: the window's 600 requests, no 5xx.
    health = [
        params["EnvironmentName"] for name, params in world.calls if name == "DescribeEnvironmentHealth"
    ]
    assert health == [NODE_1, NODE_1, NODE_2, NODE_2, NODE_2, NODE_2]
    swap_at = operations.index("SwapEnvironmentCNAMEs")
    assert operations[swap_at:].count("DescribeEnvironmentHealth") == 4  # the analysis: after the swap
    # Under the S3 release lock: taken and let go by the recovery before the build, taken again
    # before the bundle was uploaded, removed at the end.
    lock = world.lock_key()
    assert s3_operations(world) == [
        f"HeadBucket {BUCKET}",
        f"PutObject {lock}",
        f"DeleteObject {lock}",
        f"PutObject {lock}",
        f"PutObject {world.bundle_key(VERSION)}",
        f"DeleteObject {lock}",
    ]
    assert world.failed_calls == [("GetObject", "NoSuchKey")] * 2  # the lock was free both times
    world.done()


def test_flow_pushes_with_the_prefect_secret_block_login(
    prefect_harness: None,
    recorder: Recorder,
    http_to: list[EbWorld],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from prefect.blocks.system import Secret
    from pydantic import SecretStr

    block = f"registry-login-{os.getpid()}"
    Secret(value=SecretStr("deployer:from-the-block")).save(block, overwrite=True)
    config = flow_config(registry="registry.example.org", aws=aws_settings(registry_secret_block=block))
    monkeypatch.setenv("DELIVERY_REGISTRY_USER", "not-this-one")
    monkeypatch.setenv("DELIVERY_REGISTRY_PASSWORD", "not-this-either")
    world = eb_world(monkeypatch, config, http_to)
    queue_until_swap(world)
    queue_analysis(world)
    queue_end(world)

    state, result = run(config, tmp_path)

    assert state.is_completed(), result
    assert world.behind(PROD_CNAME) == NODE_2 and fetch_health(f"http://{PROD_CNAME}").version == VERSION
    login = {"username": "deployer", "password": "from-the-block"}
    assert recorder.pushes == [("registry.example.org/deliverypipeline", VERSION, login)]
    assert uploaded_bundle(world)["Image"]["Name"] == f"registry.example.org/deliverypipeline:{VERSION}"
    world.done()


def test_flow_swaps_back_when_prod_does_not_verify(
    prefect_harness: None,
    recorder: Recorder,
    http_to: list[EbWorld],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from flows.release.errors import SwappedBack

    config = flow_config(registry=ECR)
    stubbed_ecr(monkeypatch)
    world = eb_world(monkeypatch, config, http_to)
    world.dns_lag = True  # clients keep reaching node-1 (v1) at the prod CNAME after the swap
    queue_until_swap(world)
    queue_swap_back(world)  # prod never served v2: no traffic analysis, the swap back
    queue_end(world)

    state, error = run(config, tmp_path)

    assert state.is_failed()
    assert isinstance(error, SwappedBack), error
    assert f"prod is {NODE_1}" in str(error)
    assert f"prod does not serve {VERSION} to users" in str(error)
    # Prod: node-1 again behind the prod CNAME, still on v1; node-2 (v2) back behind preprod.
    assert world.behind(PROD_CNAME) == NODE_1 and world.serving[NODE_1] == "v1"
    assert world.behind(PREPROD_CNAME) == NODE_2
    swaps = [params for name, params in world.calls if name == "SwapEnvironmentCNAMEs"]
    assert swaps == [
        {"SourceEnvironmentName": NODE_2, "DestinationEnvironmentName": NODE_1},
        {"SourceEnvironmentName": NODE_1, "DestinationEnvironmentName": NODE_2},
    ]
    steps_run = steps_of(world)
    assert steps_run[steps.VERIFY_PROD] == "Failed" and steps_run[steps.SWAP_BACK] == "Failed"
    assert steps.ANALYSE_TRAFFIC not in steps_run
    assert world.operations()[-1] == "DescribeEnvironments" and "DeleteObject" in world.operations()
    world.done()


def test_flow_swaps_back_when_the_new_prods_traffic_fails_the_analysis(
    prefect_harness: None,
    recorder: Recorder,
    http_to: list[EbWorld],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from flows.release.errors import SwappedBack

    config = flow_config(registry=ECR)
    stubbed_ecr(monkeypatch)
    world = eb_world(monkeypatch, config, http_to)
    queue_until_swap(world)
    # The new prod verifies over HTTP, but EB's enhanced health counts 50 % 5xx in its real traffic:
    # the analysis fails at the first window that shows it.
    world.environment_health(NODE_2, 5)
    world.environment_health(NODE_2, 300, percent_5xx=50)
    queue_swap_back(world)
    queue_end(world)

    state, error = run(config, tmp_path)

    assert state.is_failed()
    assert isinstance(error, SwappedBack), error
    assert "failed the traffic analysis" in str(error) and "5xx share 50.0 %" in str(error)
    assert f"prod is {NODE_1}" in str(error)
    # Prod: node-1 (v1) again behind the prod CNAME; node-2 (v2) back behind preprod.
    assert world.behind(PROD_CNAME) == NODE_1 and world.serving[NODE_1] == "v1"
    assert fetch_health(f"http://{PROD_CNAME}").version == "v1"
    assert world.behind(PREPROD_CNAME) == NODE_2
    steps_run = steps_of(world)
    assert steps_run[steps.VERIFY_PROD] == "Completed" and steps_run[steps.ANALYSE_TRAFFIC] == "Failed"
    assert steps_run[steps.SWAP_BACK] == "Failed"  # raising SwappedBack, the error that ends the run
    assert [name for name, _ in world.calls].count("SwapEnvironmentCNAMEs") == 2
    world.done()

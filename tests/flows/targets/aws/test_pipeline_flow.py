"""The pipeline *flow* with `target="aws"`: push with registry login, then the release on EB.

`flows.pipeline.pipeline` runs for real (Prefect test server, the real tasks from push on,
`make_target("aws")`, the real HTTP checks and zero-downtime probe), with:
- checkout, unit tests, build and smoke test replaced by tasks returning their results
  (they are the same on every target and tested against Docker elsewhere);
- Docker's push and the registry's manifest check replaced by recorders, so the test sees
  which credentials the push step obtained (an ECR token from a stubbed ECR, or a Prefect
  Secret block);
- EB and S3 answered by `EbWorld`'s botocore stubbers, and HTTP to the EB CNAMEs answered
  from `EbWorld` by a requests adapter (no name leaves the process).
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

from flows.config import Deadlines, PipelineConfig
from flows.targets.aws.settings import AwsSettings
from flows.image import registry_auth as registry_module
from flows.image import tasks as image_steps
from flows.image.build import BuiltImage
from flows.image.smoke import SmokeResult
from flows.release.health import fetch_health
from flows.source import tasks as source_steps
from flows.source.junit import TestSummary
from flows.source.tasks import Checkout
from flows.targets.aws import target as target_module
from tests.flows.targets.aws.eb_world import (
    ACCOUNT,
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

pytestmark = pytest.mark.docker  # starts a Prefect server (the session's test harness)

MAIN = Path(__file__).resolve().parents[4]
VERSION = "v2"
ECR = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
TOKEN_PASSWORD = "ecr-token-for-the-push"


def flow_config(**changes: Any) -> PipelineConfig:
    """The seed's EB set-up with deadlines short enough for a test (the waits use real time)."""
    settings: dict[str, Any] = {
        "aws": AwsSettings(region=REGION, bucket=BUCKET, endpoint_url=NOWHERE, poll_interval=0.01),
        "deadlines": Deadlines(preprod_free=5, ready=10, verify=0.6, swap=5, poll_interval=0.05),
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
    """Steps 1-4 faked, Docker's push and the registry's manifest check recorded."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    record = Recorder()

    @task(name="checkout", cache_policy=NO_CACHE)
    def checkout(repo: str, ref: str) -> Checkout:
        path = tmp_path / "checkout"
        path.mkdir()
        shutil.copy(MAIN / "Dockerrun.aws.json", path / "Dockerrun.aws.json")
        return Checkout(str(path), repo, ref, "c0ffee" * 6 + "beef", "tree", VERSION, "2026-11-27T09:00:00Z")

    @task(name="unit tests", cache_policy=NO_CACHE)
    def unit_tests(source: Checkout, deadline_s: float) -> TestSummary:
        return TestSummary(tests=3, failed=0, errors=0, skipped=0, seconds=0.1)

    @task(name="build image", cache_policy=NO_CACHE)
    def build(source: Checkout, config: PipelineConfig) -> BuiltImage:
        return BuiltImage(tag=f"{config.image}:{source.version}", image_id="sha256:" + "ab" * 32)

    @task(name="smoke test", cache_policy=NO_CACHE)
    def smoke(image: BuiltImage, version: str, deadline_s: float) -> SmokeResult:
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

    monkeypatch.setattr(source_steps, "checkout", checkout)
    monkeypatch.setattr(source_steps, "unit_tests", unit_tests)
    monkeypatch.setattr(image_steps, "build", build)
    monkeypatch.setattr(image_steps, "smoke", smoke)
    monkeypatch.setattr(image_steps, "image_in_registry", image_in_registry)
    monkeypatch.setattr(image_steps, "push_image", push_image)
    monkeypatch.setattr(image_steps, "docker_client", lambda: None)
    return record


def _answer(request: requests.PreparedRequest, status: int, body: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.encoding = "utf-8"
    response.url = request.url or ""
    response.request = request
    return response


@pytest.fixture
def http_to(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EbWorld]]:
    """Route HTTP to EB hosts to the world under test; any other AWS host is refused."""
    worlds: list[EbWorld] = []
    original = requests.adapters.HTTPAdapter.send

    def send(self: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        host = urlsplit(request.url or "").hostname or ""
        if not host.endswith((".elasticbeanstalk.com", ".amazonaws.com")):
            return original(self, request, **kwargs)
        if not worlds or urlsplit(request.url or "").path != "/health":
            raise requests.ConnectionError(f"the test routes no HTTP to {request.url}")
        report = worlds[0].check(f"http://{host}")
        if report.status_code is None:
            raise requests.ConnectionError(report.error)
        return _answer(request, report.status_code, {"version": report.version} if report.version else {})

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


def eb_world(monkeypatch: pytest.MonkeyPatch, config: PipelineConfig, http: list[EbWorld]) -> EbWorld:
    """EbWorld behind `make_target("aws", config)`: the flow's target gets the stubbed clients."""
    world = EbWorld(config)
    world.event_clock = datetime.now(UTC) + timedelta(minutes=5)  # events come after the deploy starts
    monkeypatch.setattr(target_module, "make_clients", lambda config, session=None: world.clients)
    http.append(world)
    return world


def queue_until_swap(world: EbWorld) -> None:
    """EB's answers in the order the flow asks, from registering v2 up to the swap."""
    world.version_answer(VERSION, None)  # release bundle: not registered yet
    world.upload(VERSION)
    world.create_version(VERSION)
    world.version_answer(VERSION, "Processing")
    world.version_answer(VERSION, "Processed")
    world.describe()  # pick preprod: node-2 (preprod CNAME) is Ready
    world.describe()  # the probe looks up the prod URL
    world.update(NODE_2, VERSION)  # deploy
    world.events(NODE_2, ("INFO", "Environment update is starting."))
    world.describe()  # still Updating
    world.events(NODE_2, ("INFO", "Environment update completed successfully."))
    world.describe(node_2={"status": "Ready", "health": "Green", "version": VERSION})
    world.describe()  # verify preprod: its URL
    world.swap(NODE_2, NODE_1)
    world.describe()  # the swap settled
    world.describe()  # verify prod: its URL


def run(config: PipelineConfig, tmp_path: Path) -> tuple[Any, Any]:
    """The flow, in this process, as `deliverypipeline run --target aws` calls it."""
    from flows.pipeline import pipeline

    state = pipeline(
        repo=str(tmp_path / "not-a-local-repo"), ref="main", target="aws", config=config, return_state=True
    )
    return state, state.result(raise_on_failure=False)


def uploaded_bundle(world: EbWorld) -> dict[str, Any]:
    """The Dockerrun.aws.json the flow put in S3."""
    bodies = [params["Body"] for name, params in world.calls if name == "PutObject"]
    assert len(bodies) == 1
    body = bodies[0]
    data: dict[str, Any] = json.loads(body if isinstance(body, (bytes, str)) else body.read())
    return data


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
    world.describe()  # the run report reads the roles at the end

    state, result = run(config, tmp_path)

    assert state.is_completed(), result
    # Prod: node-2 behind the prod CNAME, serving v2 over HTTP; node-1 (v1) kept as the rollback.
    assert world.behind(PROD_CNAME) == NODE_2 and fetch_health(f"http://{PROD_CNAME}").version == VERSION
    assert world.behind(PREPROD_CNAME) == NODE_1 and world.serving[NODE_1] == "v1"
    assert NODE_2 in result["prod"] and VERSION in result["prod"]
    assert result["outcome"] == f"{VERSION} is live on prod ({NODE_2})"
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
    config = flow_config(
        registry="registry.example.org",
        aws=AwsSettings(
            region=REGION,
            bucket=BUCKET,
            endpoint_url=NOWHERE,
            poll_interval=0.01,
            registry_secret_block=block,
        ),
    )
    monkeypatch.setenv("DELIVERY_REGISTRY_USER", "not-this-one")
    monkeypatch.setenv("DELIVERY_REGISTRY_PASSWORD", "not-this-either")
    world = eb_world(monkeypatch, config, http_to)
    queue_until_swap(world)
    world.describe()

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
    from flows.release.operations import SwappedBack

    config = flow_config(registry=ECR)
    stubbed_ecr(monkeypatch)
    world = eb_world(monkeypatch, config, http_to)
    world.dns_lag = True  # clients keep reaching node-1 (v1) at the prod CNAME after the swap
    queue_until_swap(world)
    world.swap(NODE_1, NODE_2)  # the swap back
    world.describe()  # the swap back settled
    world.describe()  # the run report

    state, error = run(config, tmp_path)

    assert state.is_failed()
    assert isinstance(error, SwappedBack), error
    assert f"prod is {NODE_1}" in str(error)
    # Prod: node-1 again behind the prod CNAME, still on v1; node-2 (v2) back behind preprod.
    assert world.behind(PROD_CNAME) == NODE_1 and world.serving[NODE_1] == "v1"
    assert world.behind(PREPROD_CNAME) == NODE_2
    swaps = [params for name, params in world.calls if name == "SwapEnvironmentCNAMEs"]
    assert swaps == [
        {"SourceEnvironmentName": NODE_2, "DestinationEnvironmentName": NODE_1},
        {"SourceEnvironmentName": NODE_1, "DestinationEnvironmentName": NODE_2},
    ]
    world.done()

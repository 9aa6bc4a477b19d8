"""Every target passes the target contract (`contract.py`): one stage fixture per target.

Adding a target: write one more `stage_<name>` fixture below yielding a `Stage` (the target,
a bundle of a deployable version, the clock its waits run on) and add its name to `TARGETS`
(with `pytest.param(..., marks=pytest.mark.docker)` when it needs the engine or servers).
Every check of `CHECKS` then runs against it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.clock import SYSTEM_CLOCK
from flows.config import Deadlines, PipelineConfig
from tests.flows.fakes import FakeClock, FakeTarget
from tests.flows.targets.aws.eb_live import live_target
from tests.flows.targets.aws.eb_world import PREPROD_CNAME, PROD_CNAME, dockerrun
from tests.flows.targets.contract import CHECKS, Stage
from tests.support import free_port

REPO = Path(__file__).resolve().parents[3]
PID = str(os.getpid())
TEST_LABEL = {"deliverypipeline.test": f"contract-{PID}"}

TARGETS = ["fake", "aws", pytest.param("local", marks=pytest.mark.docker)]


def bundle_of(image: str) -> Callable[[str], dict[str, Any]]:
    """The Dockerrun.aws.json of `<image>:<version>`."""
    return lambda version: {"AWSEBDockerrunVersion": "1", "Image": {"Name": f"{image}:{version}"}}


@pytest.fixture
def stage_fake() -> Iterator[Stage]:
    """The tests' in-memory target, strict about registered versions."""
    target = FakeTarget.pair()
    target.known_versions = {"v0", "v1"}
    yield Stage(
        target,
        "127.0.0.1:8080",
        "127.0.0.1:8081",
        bundle_of("app"),
        ("v2", "v3"),
        FakeClock(),
        emits_events=False,
    )


@pytest.fixture
def stage_aws() -> Iterator[Stage]:
    """Elastic Beanstalk answered from state (`eb_live`), S3 on moto, a fake clock."""
    with live_target() as (target, _world):
        yield Stage(
            target, PROD_CNAME, PREPROD_CNAME, dockerrun, ("v2", "v3"), target.clock, ready_within=600
        )


@pytest.fixture(scope="module")
def contract_image(docker_client: Any) -> Iterator[str]:
    """The repository's webapp image, built once (never pulled), tagged as two versions."""
    from flows.image.wheelhouse import ensure_wheelhouse

    ensure_wheelhouse(REPO)
    name = f"dp-contract-{PID}"
    image, _ = docker_client.images.build(
        path=str(REPO), tag=f"{name}:c1", buildargs={"VERSION": "contract"}, rm=True
    )
    image.tag(name, tag="c2")
    yield name
    for tag in ("c1", "c2"):
        docker_client.images.remove(f"{name}:{tag}", force=True)


@pytest.fixture
def stage_local(docker_client: Any, contract_image: str) -> Iterator[Stage]:
    """The local target with real Docker and HAProxy, on free ports and its own state dir."""
    from flows.targets.local.settings import LocalSettings
    from flows.targets.local.target import LocalTarget

    state_dir = Path(tempfile.mkdtemp(prefix=f"dpc-{PID}-"))
    config = PipelineConfig(
        application=f"dpcontract{PID}",
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        deadlines=Deadlines(ready=60),
        local=LocalSettings(state_dir=state_dir, drain_seconds=0.2, stop_grace=2),
    )
    target = LocalTarget(config, client=docker_client, extra_labels=TEST_LABEL)
    try:
        yield Stage(
            target,
            config.prod_address,
            config.preprod_address,
            bundle_of(contract_image),
            ("c1", "c2"),
            SYSTEM_CLOCK,
        )
    finally:
        target.down(purge=True)
        shutil.rmtree(state_dir, ignore_errors=True)
        for container in docker_client.containers.list(all=True, filters={"label": "deliverypipeline.test"}):
            if container.labels.get("deliverypipeline.test") == TEST_LABEL["deliverypipeline.test"]:
                container.remove(force=True)


@pytest.fixture(params=TARGETS)
def stage(request: pytest.FixtureRequest) -> Stage:
    """The stage of one target (`stage_<name>`)."""
    made: Stage = request.getfixturevalue(f"stage_{request.param}")
    return made


@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__.removeprefix("check_") for check in CHECKS])
def test_the_target_keeps_the_contract(stage: Stage, check: Callable[[Stage], None]) -> None:
    check(stage)

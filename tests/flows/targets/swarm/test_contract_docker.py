"""The swarm target keeps the target contract (`tests/flows/targets/contract.py`) on a real local swarm.

A two-node lab of its own (its own bridge, address range and directories, so a lab a person has
up is untouched), two images that answer /health with their own version pushed to the host
registry, one application name per check. Needs root, Docker and HAProxy.
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
from flows.image.push import push_image
from flows.targets.swarm.lab_executor import LabExecutor
from flows.targets.swarm.lab_plans import LabLayout
from flows.targets.swarm.settings import SwarmSettings
from flows.targets.swarm.target import SwarmTarget
from tests.flows.targets.contract import CHECKS, Stage
from tests.support import free_port

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[4]
PID = os.getpid()
VERSIONS = ("c1", "c2")
REGISTRY = "127.0.0.1:5000"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabLayout]:
    """A two-node swarm of its own for this module."""
    layout = LabLayout(
        nodes=2,
        run_dir=Path(f"/run/dpswc{PID}"),
        state_dir=Path(tempfile.mkdtemp(prefix=f"dpswc-{PID}-")),
        subnet="10.233.0",
        bridge="dpswc0",
        prefix="dpswc",
    )
    executor = LabExecutor(say=lambda _: None)
    executor.up(layout)
    try:
        yield layout
    finally:
        executor.down(layout)
        shutil.rmtree(layout.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def swarm_image(docker_client: Any) -> Iterator[str]:
    """The webapp image built as each version (so /health says which), pushed to the host registry."""
    from flows.image.wheelhouse import ensure_wheelhouse

    ensure_wheelhouse(REPO)
    name = f"{REGISTRY}/dp-contract-swarm"
    for version in VERSIONS:
        docker_client.images.build(
            path=str(REPO), tag=f"{name}:{version}", buildargs={"VERSION": version}, rm=True
        )
        push_image(docker_client, name, version, log=lambda _: None)
    yield name
    for version in VERSIONS:
        docker_client.images.remove(f"{name}:{version}", force=True)


def bundle_of(image: str) -> Callable[[str], dict[str, Any]]:
    """The Dockerrun.aws.json of `<image>:<version>`."""
    return lambda version: {"AWSEBDockerrunVersion": "1", "Image": {"Name": f"{image}:{version}"}}


@pytest.fixture
def stage_swarm(lab: LabLayout, swarm_image: str) -> Iterator[Stage]:
    """The swarm target on the lab: its own application, edge addresses and state dir."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"dpsws-{PID}-"))
    application = f"dpc{PID}x{free_port()}"
    config = PipelineConfig(
        application=application,
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        deadlines=Deadlines(ready=90, poll_interval=0.5),
        swarm=SwarmSettings(
            manager=f"unix://{lab.node(1).socket}",
            registry=lab.registry,
            nodes=2,
            ports=(free_port(), free_port()),
            state_dir=state_dir,
        ),
    )
    target = SwarmTarget(config)
    try:
        yield Stage(
            target,
            config.prod_address,
            config.preprod_address,
            bundle_of(swarm_image),
            VERSIONS,
            SYSTEM_CLOCK,
        )
    finally:
        target.down()
        target.engine.close()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__.removeprefix("check_") for check in CHECKS])
def test_the_swarm_target_keeps_the_contract(stage_swarm: Stage, check: Callable[[Stage], None]) -> None:
    check(stage_swarm)

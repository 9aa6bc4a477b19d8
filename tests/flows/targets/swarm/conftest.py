"""A real local swarm for the Docker tests of this folder: three nodes of its own, and two versions.

Its own bridge, address range and directories, so a lab a person has up is untouched; brought
up once per session and removed after. The images answer /health with their own version and are
pushed to the host registry. Needs root, Docker and HAProxy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.config import Deadlines, PipelineConfig
from flows.image.push import push_image
from flows.targets.swarm.lab_executor import LabExecutor
from flows.targets.swarm.lab_plans import LabLayout
from flows.targets.swarm.settings import SwarmSettings
from flows.targets.swarm.target import SwarmTarget
from tests.support import free_port

REPO = Path(__file__).resolve().parents[4]
PID = os.getpid()
VERSIONS = ("c1", "c2")
REGISTRY = "127.0.0.1:5000"


def reachable_dir(prefix: str) -> Path:
    """A new temp directory the store's PostgreSQL (run as the `postgres` user) can enter."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def lab() -> Iterator[LabLayout]:
    """A three-node swarm of its own for the session."""
    layout = LabLayout(
        nodes=3,
        run_dir=Path(f"/run/dpswc{PID}"),
        state_dir=reachable_dir(f"dpswc-{PID}-"),
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


@pytest.fixture(scope="session")
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


def target_on(lab: LabLayout, state_dir: Path, **swarm: Any) -> SwarmTarget:
    """A swarm target on the lab: its own application, edge addresses, ports and state dir."""
    config = PipelineConfig(
        application=f"dpc{PID}x{free_port()}",
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        deadlines=Deadlines(ready=90, poll_interval=0.5),
        swarm=SwarmSettings(
            manager=f"unix://{lab.node(1).socket}",
            registry=lab.registry,
            nodes=lab.nodes,
            ports=(free_port(), free_port()),
            state_dir=state_dir,
            **swarm,
        ),
    )
    return SwarmTarget(config)


def bundle_of(image: str) -> Callable[[str], dict[str, Any]]:
    """The Dockerrun.aws.json of `<image>:<version>`."""
    return lambda version: {"AWSEBDockerrunVersion": "1", "Image": {"Name": f"{image}:{version}"}}

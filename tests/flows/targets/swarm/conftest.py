"""A real local swarm for the Docker tests of this folder: three nodes of its own, and two versions.

Its own bridge, address range and directories, so a lab a person has up is untouched; brought
up once per session and removed after. The images answer /health with their own version and are
pushed to the host registry. Needs root, Docker and HAProxy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.clock import Deadline, poll_until
from flows.config import Deadlines, PipelineConfig
from flows.image.push import push_image
from flows.release.settings import AnalysisSettings
from flows.targets.base import GREEN, READY, Environment
from flows.targets.swarm.lab_executor import LabExecutor
from flows.targets.swarm.lab_plans import LabLayout
from flows.targets.swarm.settings import SwarmSettings
from flows.targets.swarm.target import SwarmTarget
from tests.support import free_port

REPO = Path(__file__).resolve().parents[4]
PID = os.getpid()
VERSIONS = ("c1", "c2")  # the two versions the contract deploys
BUILT = (*VERSIONS, "c3")  # retention needs one more release than it keeps
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
    for version in BUILT:
        docker_client.images.build(
            path=str(REPO), tag=f"{name}:{version}", buildargs={"VERSION": version}, rm=True
        )
        push_image(docker_client, name, version, log=lambda _: None)
    yield name
    for version in BUILT:
        docker_client.images.remove(f"{name}:{version}", force=True)


def target_on(
    lab: LabLayout, state_dir: Path, analysis: AnalysisSettings | None = None, **swarm: Any
) -> SwarmTarget:
    """A swarm target on the lab: its own application, edge addresses, ports and state dir."""
    config = PipelineConfig(
        application=f"dpc{PID}x{free_port()}",
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        deadlines=Deadlines(ready=90, poll_interval=0.5),
        analysis=analysis or AnalysisSettings(),
        swarm=SwarmSettings(
            manager=f"unix://{lab.node(1).socket}",
            registry=lab.registry,
            run_dir=lab.run_dir,  # the nodes' engine sockets (retention reaches each node there)
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


def ready(target: SwarmTarget, name: str, version: str, within: float) -> Environment:
    """The environment `name` once it is Ready and Green with `version` on every up node."""

    def look(_: Deadline) -> Environment | None:
        env = next(e for e in target.environments() if e.name == name)
        return env if (env.status, env.version, env.health) == (READY, version, GREEN) else None

    return poll_until(
        look, within, 1.0, lambda _: AssertionError(f"{name} not ready: {target.environments()}")
    )


@contextlib.contextmanager
def target_in(
    lab: LabLayout, prefix: str, analysis: AnalysisSettings | None = None, **swarm: Any
) -> Iterator[SwarmTarget]:
    """`target_on` in a new state dir named `prefix...`, its services and edge removed after."""
    made = target_on(lab, Path(tempfile.mkdtemp(prefix=prefix)), analysis, **swarm)
    try:
        yield made
    finally:
        made.down()
        made.engine.close()


def prod_serving(
    target: SwarmTarget, image: str, versions: tuple[str, ...] = ("c1", "c2")
) -> tuple[str, str]:
    """Register `versions`; prod then runs the first on every node, preprod nothing yet.

    Returns the environments as (the one preprod is on now, the one holding prod).
    """
    bundle = bundle_of(image)
    for version in versions:
        target.register_version(version, bundle(version))
    first, second = target.environment_names
    target.deploy(second, versions[0])  # the empty target's preprod
    ready(target, second, versions[0], 120)
    target.swap(first, second)
    return first, second

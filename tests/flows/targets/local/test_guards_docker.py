"""One target per address, orphans of a SIGKILLed deploy, and retention: real Docker, HAProxy, registry.

The webapp image is built once; each "version" is a one-label image on top of it (distinct image
ids, instant to build), pushed to the host's registry for the retention test.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from flows.clock import poll_until
from flows.config import Deadlines, PipelineConfig
from flows.registry.client import delete_from_registry, manifest_digest
from flows.targets.local.containers import LABEL_TARGET
from flows.targets.local.settings import LocalSettings
from flows.targets.local.target import LocalTarget, LocalTargetError
from tests.support import free_port

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[4]
PID = str(os.getpid())
TEST_LABEL = {"deliverypipeline.test": f"guards-{PID}"}
REGISTRY = "127.0.0.1:5000"
REPOSITORY = f"{REGISTRY}/dp-guards-test-{PID}"
VERSIONS = ("g1", "g2", "g3", "g4")


@pytest.fixture(scope="module")
def images(docker_client: Any) -> Iterator[dict[str, str]]:
    """Versions g1..g4 as registry-named images (pushed), distinct by one label each."""
    from flows.image.wheelhouse import ensure_wheelhouse

    ensure_wheelhouse(REPO)
    base = f"dp-guards-test-{PID}:base"
    docker_client.images.build(path=str(REPO), tag=base, buildargs={"VERSION": "guards"}, rm=True)
    tags = {}
    for version in VERSIONS:
        ref = f"{REPOSITORY}:{version}"
        dockerfile = io.BytesIO(f"FROM {base}\nLABEL dp.test.version={version}\n".encode())
        docker_client.images.build(fileobj=dockerfile, tag=ref, rm=True)
        for line in docker_client.images.push(REPOSITORY, tag=version, stream=True, decode=True):
            assert "error" not in line, line
        tags[version] = ref
    yield tags
    for ref in [*tags.values(), base]:
        try:
            docker_client.images.remove(ref, force=True)
        except Exception as exc:  # pruned by the retention test: fine; anything else: say so
            if "No such image" not in str(exc):
                print(f"image {ref}: {exc}")
    for version in VERSIONS:
        digest = manifest_digest(REGISTRY, REPOSITORY, version)
        if digest:
            delete_from_registry(REGISTRY, REPOSITORY, digest)


def make_config(**local: Any) -> PipelineConfig:
    return PipelineConfig(
        application=f"dpguards{PID}",
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        deadlines=Deadlines(ready=90),
        local=LocalSettings(
            state_dir=Path(tempfile.mkdtemp(prefix=f"dpg-{PID}-")), drain_seconds=0.2, stop_grace=2, **local
        ),
    )


@pytest.fixture
def made(docker_client: Any, images: dict[str, str]) -> Iterator[list[LocalTarget]]:
    """A list to put targets in; each is torn down (containers, proxy, state dir) afterwards."""
    targets: list[LocalTarget] = []
    yield targets
    for target in targets:
        target.down(purge=True)
        shutil.rmtree(target.state_dir, ignore_errors=True)
    for container in docker_client.containers.list(all=True, filters={"label": "deliverypipeline.test"}):
        if container.labels.get("deliverypipeline.test") == TEST_LABEL["deliverypipeline.test"]:
            container.remove(force=True)


def new_target(
    made: list[LocalTarget], docker_client: Any, images: dict[str, str], config: PipelineConfig
) -> LocalTarget:
    target = LocalTarget(config, client=docker_client, extra_labels=TEST_LABEL, run="test-run")
    for version, ref in images.items():
        target.register_version(version, {"AWSEBDockerrunVersion": "1", "Image": {"Name": ref}})
    made.append(target)
    return target


def release(target: LocalTarget, version: str) -> None:
    """Deploy into whichever environment holds preprod, swap, then wait for the clean-up (as the
    release lock's exit does)."""
    envs = {env.address: env for env in target.environments()}
    preprod = envs[target.config.preprod_address].name
    prod = envs[target.config.prod_address].name
    target.deploy(preprod, version)
    target.swap(prod, preprod)
    assert target.settle()


def containers(docker_client: Any, target: LocalTarget) -> list[Any]:
    return list(
        docker_client.containers.list(all=True, filters={"label": f"{LABEL_TARGET}={target.identity}"})
    )


def prod_versions(target: LocalTarget, times: int) -> set[str]:
    url = target.url(target.config.prod_address)
    return {
        requests.get(url + "/", headers={"Connection": "close", "Accept": "application/json"}, timeout=10)
        .json()
        .get("version", "?")
        for _ in range(times)
    }


def test_a_second_state_dir_on_the_same_addresses_is_refused(
    made: list[LocalTarget], docker_client: Any, images: dict[str, str]
) -> None:
    first = new_target(made, docker_client, images, make_config())
    release(first, "g1")
    served = prod_versions(first, 5)
    assert len(served) == 1
    container = first.environments()[1].details["container"]
    assert first.identity in container
    labels = docker_client.containers.get(container).labels
    assert (labels[LABEL_TARGET], labels["deliverypipeline.run"], labels["deliverypipeline.version"]) == (
        first.identity,
        "test-run",
        "g1",
    )

    clash = first.config.model_copy(update={"local": make_config().local})
    second = new_target(made, docker_client, images, clash)
    problems = second.preflight()
    print("\npreflight of the second state dir:\n  " + "\n  ".join(problems))
    assert len(problems) == 2
    assert all(
        f"another deliverypipeline target (state dir {first.state_dir}, haproxy pid {first.proxy.pid()}" in p
        for p in problems
    )
    assert f"`deliverypipeline local down --state-dir {first.state_dir}`" in problems[0]
    with pytest.raises(LocalTargetError, match=f"state dir {first.state_dir}"):
        second.deploy("node-2", "g2")
    assert second.proxy.pid() is None
    assert containers(docker_client, second) == []
    assert prod_versions(first, 40) == served  # no second proxy shares the port
    assert first.preflight() == []

    # The same version next to it on other addresses: its own container name, no Docker conflict.
    elsewhere = new_target(made, docker_client, images, make_config())
    release(elsewhere, "g1")
    assert prod_versions(elsewhere, 3) == served
    assert {c.name for c in containers(docker_client, elsewhere)}.isdisjoint(
        {c.name for c in containers(docker_client, first)}
    )

    # `down` releases the first target's claims: the addresses are free for the second.
    first.down()
    assert second.preflight() == []


def answers(target: LocalTarget, address: str) -> int | None:
    """The HTTP status `/health` gets on an address, None when nothing answers."""
    try:
        url = target.url(address) + "/health"
        return requests.get(url, headers={"Connection": "close"}, timeout=5).status_code
    except requests.ConnectionError:
        return None


def test_after_an_engine_restart_the_next_release_first_brings_prod_back(
    made: list[LocalTarget], docker_client: Any, images: dict[str, str]
) -> None:
    target = new_target(made, docker_client, images, make_config())
    release(target, "g1")
    release(target, "g2")  # both environments serve: g2 on prod, g1 on preprod
    config = target.config
    before = {env.name: env.details["port"] for env in target.environments()}

    # The host restarted: the engine stopped every container, and the proxy process is gone.
    for container in containers(docker_client, target):
        container.stop(timeout=1)
    assert target.haproxy.stop()
    assert answers(target, config.prod_address) is None
    assert {env.health for env in target.environments()} == {"Red"}

    repairs = target.reconcile()  # what the next release's `recover` step does first
    print("\nrepairs:\n  " + "\n  ".join(repairs))
    assert len(repairs) == 3
    assert all(line.startswith("started again the stopped container ") for line in repairs[:2])
    assert repairs[2] == f"started the proxy on {config.prod_address} and {config.preprod_address}"
    assert answers(target, config.prod_address) == 200 and answers(target, config.preprod_address) == 200
    envs = {env.address: env for env in target.environments()}
    assert (envs[config.prod_address].version, envs[config.preprod_address].version) == ("g2", "g1")
    assert {env.health for env in envs.values()} == {"Green"}
    assert target.reconcile() == []  # nothing left to repair

    # The engine alone restarted (the proxy lives on): the containers come back on new ports.
    for container in containers(docker_client, target):
        container.stop(timeout=1)
    assert answers(target, config.prod_address) == 503
    repairs = target.reconcile()
    print("repairs, proxy alive:\n  " + "\n  ".join(repairs))
    assert [line.split(" at ")[0] for line in repairs[2:]] == [
        f"re-pointed the proxy's prod address {config.prod_address}",
        f"re-pointed the proxy's preprod address {config.preprod_address}",
    ]
    assert answers(target, config.prod_address) == 200 and answers(target, config.preprod_address) == 200
    after = {env.name: env.details["port"] for env in target.environments()}
    assert set(after) == set(before) and after != before  # served from the new ports


DEPLOY = textwrap.dedent(
    """
    import sys
    import docker
    from flows.config import PipelineConfig
    from flows.targets.local.target import LocalTarget
    config = PipelineConfig.model_validate_json(open(sys.argv[1]).read())
    labels = {"deliverypipeline.test": sys.argv[2]}
    target = LocalTarget(config, client=docker.from_env(), extra_labels=labels)
    target.deploy(sys.argv[3], sys.argv[4])
    """
)


def _killed_mid_deploy(target: LocalTarget, docker_client: Any, config_file: Path, version: str) -> None:
    """Start deploying `version` to node-1 in another process and SIGKILL it once its container exists."""
    deploy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            DEPLOY,
            str(config_file),
            TEST_LABEL["deliverypipeline.test"],
            "node-1",
            version,
        ],
        cwd=REPO,
    )
    try:

        def started(_: object) -> bool | None:
            assert deploy.poll() is None, "the deploy ended before it could be killed"
            versions = {c.labels.get("deliverypipeline.version") for c in containers(docker_client, target)}
            return True if version in versions else None

        poll_until(started, 60, 0.1, lambda _: AssertionError("the deploy never created its container"))
    finally:
        deploy.send_signal(signal.SIGKILL)
        deploy.wait(timeout=10)


def test_a_deploy_killed_mid_way_leaves_an_orphan_the_next_deploy_removes(
    made: list[LocalTarget], docker_client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    target = new_target(made, docker_client, images, make_config())
    release(target, "g1")  # node-2 on prod with g1; node-1 on preprod, empty
    config_file = tmp_path / "config.json"
    config_file.write_text(target.config.model_dump_json())

    _killed_mid_deploy(target, docker_client, config_file, "g2")
    orphans = target.orphans()
    assert [(o.environment, o.version) for o in orphans] == [("node-1", "g2")]
    assert prod_versions(target, 5) == {"guards"}  # prod untouched
    # What the next release's `recover` step does first, whether or not it deploys:
    assert target.reconcile() == [f"removed orphan container {orphans[0].name}: no environment pointed at it"]
    assert target.orphans() == [] and target.reconcile() == []

    _killed_mid_deploy(target, docker_client, config_file, "g2")
    assert [(o.environment, o.version) for o in target.orphans()] == [("node-1", "g2")]
    release(target, "g3")  # completes: the deploy removes the orphan first
    left = containers(docker_client, target)
    serving = {env.details["container"] for env in target.environments()}
    print(f"\nafter the recovering deploy: {sorted(c.name for c in left)}")
    assert len(left) <= 2
    assert {c.name for c in left} == serving
    assert target.orphans() == []
    assert any("removed orphan container" in e.message for e in target.events("node-1", target_start()))


def target_start() -> Any:
    from datetime import datetime

    return datetime(2000, 1, 1)


def test_retention_keeps_k_releases_and_never_the_running_ones(
    made: list[LocalTarget], docker_client: Any, images: dict[str, str]
) -> None:
    target = new_target(made, docker_client, images, make_config(keep_releases=2))
    for version in VERSIONS:
        release(target, version)
    running = {env.version for env in target.environments()}
    assert running == {"g3", "g4"}
    local = {version for version in VERSIONS if docker_client.images.list(name=images[version])}
    remote = {version for version in VERSIONS if manifest_digest(REGISTRY, REPOSITORY, version)}
    print(f"\nkeep_releases=2 after 4 releases: engine {sorted(local)}, registry {sorted(remote)}")
    assert local == {"g3", "g4"} and remote == {"g3", "g4"}
    assert sorted(target.state.read().versions) == ["g3", "g4"]
    messages = [
        e.message for e in target.events("node-1", target_start()) + target.events("node-2", target_start())
    ]
    assert sum("pruned image" in m for m in messages) == 2
    assert all("engine, registry" in m for m in messages if "pruned image" in m)

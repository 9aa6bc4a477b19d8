"""Recovery with real Docker and HAProxy: after an engine or host restart, and a SIGKILLed deploy."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flows.clock import poll_until
from flows.targets.local.target import LocalTarget
from tests.flows.targets.local.registry_world import (
    EPOCH,
    REPO,
    TEST_LABEL,
    NewTarget,
    answers,
    containers,
    make_config,
    prod_versions,
    release,
)

pytestmark = pytest.mark.docker


def test_after_an_engine_restart_the_next_release_first_brings_prod_back(
    new_target: NewTarget, docker_client: Any
) -> None:
    target = new_target(make_config())
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
    new_target: NewTarget, docker_client: Any, tmp_path: Path
) -> None:
    target = new_target(make_config())
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
    assert any("removed orphan container" in e.message for e in target.events("node-1", EPOCH))

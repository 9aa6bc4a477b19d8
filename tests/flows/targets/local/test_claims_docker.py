"""One target per address (real Docker and HAProxy): a second state dir on the same addresses is refused."""

from __future__ import annotations

from typing import Any

import pytest

from flows.targets.local.containers import LABEL_TARGET
from flows.targets.local.target import LocalTargetError
from tests.flows.targets.local.registry_world import (
    NewTarget,
    containers,
    make_config,
    prod_versions,
    release,
)

pytestmark = pytest.mark.docker


def test_a_second_state_dir_on_the_same_addresses_is_refused(
    new_target: NewTarget, docker_client: Any
) -> None:
    first = new_target(make_config())
    release(first, "g1")
    served = prod_versions(first, 5)
    assert len(served) == 1
    container = first.environments()[1].details["container"]
    assert first.site.identity in container
    labels = docker_client.containers.get(container).labels
    assert (labels[LABEL_TARGET], labels["deliverypipeline.run"], labels["deliverypipeline.version"]) == (
        first.site.identity,
        "test-run",
        "g1",
    )

    clash = first.config.model_copy(update={"local": make_config().local})
    second = new_target(clash)
    problems = second.preflight()
    print("\npreflight of the second state dir:\n  " + "\n  ".join(problems))
    assert len(problems) == 2
    assert all(
        f"another deliverypipeline target (state dir {first.site.state_dir}, haproxy pid {first.proxy.pid()}"
        in p
        for p in problems
    )
    assert f"`deliverypipeline local down --state-dir {first.site.state_dir}`" in problems[0]
    with pytest.raises(LocalTargetError, match=f"state dir {first.site.state_dir}"):
        second.deploy("node-2", "g2")
    assert second.proxy.pid() is None
    assert containers(docker_client, second) == []
    assert prod_versions(first, 40) == served  # no second proxy shares the port
    assert first.preflight() == []

    # The same version next to it on other addresses: its own container name, no Docker conflict.
    elsewhere = new_target(make_config())
    release(elsewhere, "g1")
    assert prod_versions(elsewhere, 3) == served
    assert {c.name for c in containers(docker_client, elsewhere)}.isdisjoint(
        {c.name for c in containers(docker_client, first)}
    )

    # `down` releases the first target's claims: the addresses are free for the second.
    first.down()
    assert second.preflight() == []

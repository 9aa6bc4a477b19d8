"""Retention with real Docker and the registry: the last K releases are kept, never the running ones."""

from __future__ import annotations

from typing import Any

import pytest

from flows.registry.client import manifest_digest
from tests.flows.targets.local.registry_world import (
    EPOCH,
    REGISTRY,
    REPOSITORY,
    VERSIONS,
    NewTarget,
    make_config,
    release,
)

pytestmark = pytest.mark.docker


def test_retention_keeps_k_releases_and_never_the_running_ones(
    new_target: NewTarget, docker_client: Any, registry_images: dict[str, str]
) -> None:
    target = new_target(make_config(keep_releases=2))
    for version in VERSIONS:
        release(target, version)
    running = {env.version for env in target.environments()}
    assert running == {"g3", "g4"}
    local = {version for version in VERSIONS if docker_client.images.list(name=registry_images[version])}
    remote = {version for version in VERSIONS if manifest_digest(REGISTRY, REPOSITORY, version)}
    print(f"\nkeep_releases=2 after 4 releases: engine {sorted(local)}, registry {sorted(remote)}")
    assert local == {"g3", "g4"} and remote == {"g3", "g4"}
    assert sorted(target.site.state.read().versions) == ["g3", "g4"]
    messages = [e.message for e in target.events("node-1", EPOCH) + target.events("node-2", EPOCH)]
    assert sum("pruned image" in m for m in messages) == 2
    assert all("engine, registry" in m for m in messages if "pruned image" in m)

"""Fixtures of the local target's Docker tests: registry-named versions, targets torn down after."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from flows.config import PipelineConfig
from flows.registry.client import delete_from_registry, manifest_digest
from flows.targets.local.target import LocalTarget
from tests.flows.targets.local.registry_world import (
    PID,
    REGISTRY,
    REPO,
    REPOSITORY,
    TEST_LABEL,
    VERSIONS,
    NewTarget,
)


@pytest.fixture(scope="module")
def registry_images(docker_client: Any) -> Iterator[dict[str, str]]:
    """Versions g1..g4 as registry-named images (pushed), distinct by one label each; per module,
    as retention prunes some of them."""
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


@pytest.fixture
def new_target(docker_client: Any, registry_images: dict[str, str]) -> Iterator[NewTarget]:
    """Make targets on this test's label with every version registered; each is torn down
    (containers, proxy, state dir) afterwards."""
    targets: list[LocalTarget] = []

    def make(config: PipelineConfig) -> LocalTarget:
        target = LocalTarget(config, client=docker_client, extra_labels=TEST_LABEL, run="test-run")
        for version, ref in registry_images.items():
            target.register_version(version, {"AWSEBDockerrunVersion": "1", "Image": {"Name": ref}})
        targets.append(target)
        return target

    yield make
    for target in targets:
        target.down(purge=True)
        shutil.rmtree(target.site.state_dir, ignore_errors=True)
    for container in docker_client.containers.list(all=True, filters={"label": "deliverypipeline.test"}):
        if container.labels.get("deliverypipeline.test") == TEST_LABEL["deliverypipeline.test"]:
            container.remove(force=True)

"""The build operations against the real engine and the registry on 127.0.0.1:5000."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from flows.image.build import BuiltImage
from flows.image.errors import RegistryUnreachable, SmokeTestFailed
from flows.image.push import delete_from_registry, image_in_registry, push_image
from flows.image.smoke import smoke_test
from flows.source.version import VersionInfo
from tests.image.support import (
    REGISTRY,
    TEST_LABEL,
    build_repo_image,
    labels_for_test,
    remove_image,
    repository_for_test,
)

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def release(docker_client: Any) -> Iterator[tuple[VersionInfo, BuiltImage, str]]:
    repository = repository_for_test("build")
    info, built = build_repo_image(docker_client, repository)
    yield info, built, repository
    remove_image(docker_client, built.tag)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _own_containers(client: Any) -> list[Any]:
    return list(
        client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={labels_for_test()[TEST_LABEL]}"})
    )


def test_built_image_carries_the_version(
    docker_client: Any, release: tuple[VersionInfo, BuiltImage, str]
) -> None:
    info, built, _repository = release
    image = docker_client.images.get(built.tag)
    assert image.id == built.image_id
    labels = image.labels
    assert labels["org.opencontainers.image.version"] == info.version
    assert labels["org.opencontainers.image.revision"] == info.revision
    assert labels["org.opencontainers.image.created"] == info.build_time


def test_smoke_test_passes_and_leaves_nothing(
    docker_client: Any, release: tuple[VersionInfo, BuiltImage, str]
) -> None:
    info, built, _repository = release
    result = smoke_test(docker_client, built.tag, info.version, deadline_s=60, labels=labels_for_test())
    assert result.version == info.version
    assert result.url.startswith("http://127.0.0.1:")
    assert _own_containers(docker_client) == []


def test_push_then_found_in_registry(
    docker_client: Any, release: tuple[VersionInfo, BuiltImage, str]
) -> None:
    info, _built, repository = release
    assert not image_in_registry(REGISTRY, repository, info.version)
    digest = push_image(docker_client, repository, info.version, log=lambda _line: None)
    try:
        assert digest.startswith("sha256:")
        assert image_in_registry(REGISTRY, repository, info.version)
        assert not image_in_registry(REGISTRY, repository, "no-such-tag")
        assert push_image(docker_client, repository, info.version, log=lambda _line: None) == digest
    finally:
        delete_from_registry(REGISTRY, repository, digest)
    assert not image_in_registry(REGISTRY, repository, info.version)


def test_push_to_a_closed_port_is_unreachable(
    docker_client: Any, release: tuple[VersionInfo, BuiltImage, str]
) -> None:
    info, built, _repository = release
    repository = f"127.0.0.1:{_closed_port()}/deliverypipeline-test"
    docker_client.images.get(built.tag).tag(repository, info.version)
    try:
        with pytest.raises(RegistryUnreachable, match="connection refused"):
            push_image(docker_client, repository, info.version, log=lambda _line: None)
    finally:
        remove_image(docker_client, f"{repository}:{info.version}")


def test_crashing_image_fails_the_smoke_test_and_is_removed(
    docker_client: Any, release: tuple[VersionInfo, BuiltImage, str]
) -> None:
    _info, built, _repository = release
    dockerfile = f'FROM {built.tag}\nCMD ["python", "-c", "raise SystemExit(\'store unavailable\')"]\n'
    crashing, _logs = docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), labels=labels_for_test(), pull=False, rm=True
    )
    try:
        with pytest.raises(SmokeTestFailed, match="store unavailable") as caught:
            smoke_test(docker_client, crashing.id, "v-never", deadline_s=30, labels=labels_for_test())
        assert "exit code 1" in str(caught.value)
        assert _own_containers(docker_client) == []
    finally:
        docker_client.images.remove(crashing.id, noprune=True)

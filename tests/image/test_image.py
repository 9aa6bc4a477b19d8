"""The release image, built by the real engine and run on 127.0.0.1 as a target would run it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flows import http
from flows.image.build import BuiltImage
from flows.image.smoke import published_port
from flows.source.version import VersionInfo
from tests.image.support import build_repo_image, labels_for_test, remove_image, repository_for_test

pytestmark = pytest.mark.docker
Run = Callable[..., Any]
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def release(docker_client: Any) -> Iterator[tuple[VersionInfo, BuiltImage]]:
    info, built = build_repo_image(docker_client, repository_for_test("image"))
    yield info, built
    remove_image(docker_client, built.tag)


@pytest.fixture
def run(docker_client: Any, release: tuple[VersionInfo, BuiltImage]) -> Iterator[Run]:
    """Start the image detached on an engine-chosen 127.0.0.1 port; removed after the test."""
    started: list[Any] = []

    def _run(**kwargs: Any) -> Any:
        container = docker_client.containers.run(
            release[1].tag,
            detach=True,
            ports={"8080/tcp": ("127.0.0.1",)},
            labels=labels_for_test(),
            **kwargs,
        )
        started.append(container)
        container.reload()
        return container

    yield _run
    for container in started:
        container.remove(force=True, v=True)


def _base_url(container: Any) -> str:
    port = published_port(container.attrs)
    assert port is not None, container.attrs["NetworkSettings"]
    return f"http://127.0.0.1:{port}"


def _wait_for_health(container: Any, deadline_s: float = 60) -> dict[str, Any]:
    url = f"{_base_url(container)}/health"
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        answer = http.get(url, timeout=2)
        if answer.status == 200:
            return dict(json.loads(answer.body))
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.25)
    logs = container.logs(tail=30).decode(errors="replace")
    raise AssertionError(f"{url} did not answer 200 within {deadline_s}s; status {container.status}\n{logs}")


def _wait_for_state(container: Any, check: Callable[[Any], bool], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not check(container) and time.monotonic() < deadline:
        time.sleep(0.5)
        container.reload()
    assert check(container), container.attrs["State"]


def test_image_serves_health_and_the_built_version(run: Run, release: tuple[VersionInfo, BuiltImage]) -> None:
    info = release[0]
    container = run()
    health = _wait_for_health(container)
    assert health["version"] == info.version
    assert health["revision"] == info.revision
    assert health["build_time"] == info.build_time

    first = json.loads(http.get(f"{_base_url(container)}/", timeout=5, headers=JSON).body)
    second = json.loads(http.get(f"{_base_url(container)}/", timeout=5, headers=JSON).body)
    assert first["version"] == info.version
    assert second["calls"] == first["calls"] + 1  # the default store (LevelDB in /app/data) is writable

    # The image's own HEALTHCHECK (curl on /health) turns the container healthy.
    _wait_for_state(container, lambda c: c.attrs["State"].get("Health", {}).get("Status") == "healthy", 30)


def test_image_runs_as_non_root_with_oci_labels(
    docker_client: Any, run: Run, release: tuple[VersionInfo, BuiltImage]
) -> None:
    info, built = release
    image = docker_client.images.get(built.tag)
    assert image.labels["org.opencontainers.image.version"] == info.version
    assert image.labels["org.opencontainers.image.revision"] == info.revision
    assert image.labels["org.opencontainers.image.created"] == info.build_time
    assert image.attrs["Config"]["Cmd"] == ["python", "-m", "webapp"]
    assert "8080/tcp" in image.attrs["Config"]["ExposedPorts"]
    container = run()
    _wait_for_health(container)
    exit_code, output = container.exec_run(["id", "-u"])
    assert exit_code == 0
    assert output.decode().strip() != "0"


def test_config_file_mounted_like_elastic_beanstalk(run: Run, tmp_path: Path) -> None:
    """DELIVERY_CONF names /app/application.conf, mounted from the host as Dockerrun.aws.json maps it."""
    conf = tmp_path / "application.conf"
    conf.write_text('[store]\nkind = "sqlite"\npath = "/app/data/delivery.sqlite3"\n')
    conf.chmod(0o644)
    container = run(
        environment={"DELIVERY_CONF": "/app/application.conf"},
        volumes={str(conf): {"bind": "/app/application.conf", "mode": "ro"}},
    )
    _wait_for_health(container)
    assert http.get(f"{_base_url(container)}/", timeout=5, headers=JSON).status == 200
    exit_code, _output = container.exec_run(["test", "-s", "/app/data/delivery.sqlite3"])
    assert exit_code == 0, "the configured SQLite store was not used"


def test_unreadable_config_stops_the_container_with_a_message(run: Run) -> None:
    container = run(environment={"DELIVERY_CONF": "/app/application.conf"})  # nothing mounted
    _wait_for_state(container, lambda c: c.status == "exited", 30)
    assert container.attrs["State"]["ExitCode"] != 0
    assert "/app/application.conf" in container.logs().decode(errors="replace")

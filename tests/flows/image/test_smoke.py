"""Smoke test parts that need no engine: reading ports and versions, and the cleanup contract."""

from __future__ import annotations

from typing import Any

import pytest

from flows.image.errors import SmokeTestFailed
from flows.image.smoke import published_port, reported_version, smoke_test


def test_published_port_reads_the_engine_binding() -> None:
    attrs = {"NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]}}}
    assert published_port(attrs) == 49153
    assert published_port({"NetworkSettings": {"Ports": {"8080/tcp": None}}}) is None
    assert published_port({}) is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"version": "v1"}, "v1"),
        ({"build": {"version": "v2"}}, "v2"),
        ({"hits": 3}, None),
        (["v1"], None),
    ],
)
def test_reported_version(payload: Any, expected: str | None) -> None:
    assert reported_version(payload) == expected


class _ExitedContainer:
    """A container that has already stopped, as a crashing CMD leaves it."""

    def __init__(self) -> None:
        self.status = "exited"
        self.attrs: dict[str, Any] = {
            "State": {"ExitCode": 3},
            "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "1"}]}},
        }
        self.removed = False

    def start(self) -> None:
        pass

    def reload(self) -> None:
        pass

    def logs(self, tail: int) -> bytes:
        return b"Traceback...\nRuntimeError: no store\n"

    def remove(self, force: bool, v: bool) -> None:
        self.removed = True


class _Containers:
    def __init__(self, container: _ExitedContainer) -> None:
        self.container = container

    def create(self, image: str, **kwargs: Any) -> _ExitedContainer:
        return self.container


class _Client:
    def __init__(self, container: _ExitedContainer) -> None:
        self.containers = _Containers(container)


@pytest.mark.parametrize("ports_left", [True, False])
def test_exited_container_fails_with_its_logs_and_is_removed(ports_left: bool) -> None:
    container = _ExitedContainer()
    if not ports_left:  # what the engine reports once the container has exited
        container.attrs["NetworkSettings"] = {"Ports": {}}
    with pytest.raises(SmokeTestFailed, match="exit code 3") as caught:
        smoke_test(_Client(container), "img:v1", "v1", deadline_s=5, log=lambda _line: None)
    assert "RuntimeError: no store" in str(caught.value)
    assert container.removed

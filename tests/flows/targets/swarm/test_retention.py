"""Retention on each node's engine, against engine stand-ins: what goes, what stays, what is said."""

from __future__ import annotations

from typing import Any

from docker.errors import DockerException, NotFound

from flows.targets.swarm.decisions import NodeFacts
from flows.targets.swarm.retention import NodeRetention

N1 = NodeFacts("id1", "node-1", "10.0.0.11", "ready", "active", "manager")
N2 = NodeFacts("id2", "node-2", "10.0.0.12", "ready", "active", "worker")
N3_DOWN = NodeFacts("id3", "node-3", "10.0.0.13", "down", "active", "worker")
DOOMED = {"v1": "reg/app@sha256:1", "v2": "reg/app@sha256:2"}


class Api:
    """A node engine's low-level API: its images (reference -> id) and running containers' images."""

    def __init__(self, images: dict[str, str], running: set[str]) -> None:
        self.images, self.running, self.removed = dict(images), running, list[str]()

    def inspect_image(self, ref: str) -> dict[str, str]:
        if ref not in self.images:
            raise NotFound("no such image")
        return {"Id": self.images[ref]}

    def containers(self, filters: dict[str, str]) -> list[dict[str, str]]:
        return [{"ImageID": image} for image in self.running]

    def remove_image(self, ref: str, force: bool) -> None:
        assert force
        self.removed.append(self.images.pop(ref))


class Engine:
    def __init__(self, api: Api) -> None:
        self.api = api

    def close(self) -> None:
        pass


def retention(engines: dict[str, Api | None]) -> tuple[NodeRetention, list[tuple[str, str]]]:
    said: list[tuple[str, str]] = []

    def connect(endpoint: str) -> Any:
        api = engines[endpoint]
        if api is None:
            raise DockerException(f"cannot connect to {endpoint}")
        return Engine(api)

    return NodeRetention(
        lambda node: node.hostname, lambda line, level: said.append((level, line)), connect
    ), said


def test_every_node_loses_the_doomed_images_it_has_never_one_a_running_container_uses() -> None:
    node1 = Api({DOOMED["v1"]: "i1", DOOMED["v2"]: "i2"}, running={"i9"})
    node2 = Api({DOOMED["v1"]: "i1", DOOMED["v2"]: "i2"}, running={"i2"})
    prune, said = retention({"node-1": node1, "node-2": node2})
    assert prune.prune([N1, N2], DOOMED) == {"node-1": [], "node-2": ["v2"]}
    assert (node1.removed, node2.removed) == (["i1", "i2"], ["i1"])
    assert ("WARN", "node-2: a running container still uses the image of v2") in said


def test_a_node_down_or_unreachable_keeps_every_doomed_version_and_says_so() -> None:
    prune, said = retention({"node-1": None, "node-3": Api({}, set())})
    assert prune.prune([N1, N3_DOWN], DOOMED) == {"node-1": ["v1", "v2"], "node-3": ["v1", "v2"]}
    levels = sorted(level for level, _ in said)
    assert levels == ["WARN", "WARN"]
    assert any("check swarm.node_engine" in line for _, line in said)


def test_nothing_doomed_asks_no_node() -> None:
    prune, said = retention({})
    assert prune.prune([N1], {}) == {}
    assert said == []

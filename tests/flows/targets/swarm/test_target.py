"""The swarm target's refusals before anything changes, against a manager stand-in (no Docker)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flows.config import PipelineConfig
from flows.errors import TargetError
from flows.targets.swarm.decisions import NodeFacts, ServiceFacts, TaskFacts
from flows.targets.swarm.engine import SwarmEngine
from flows.targets.swarm.settings import SwarmSettings
from flows.targets.swarm.target import SwarmTarget

UP = NodeFacts("id1", "node-1", "10.0.0.11", "ready", "active", "manager")
DOWN = NodeFacts("id2", "node-2", "10.0.0.12", "down", "active", "worker")


class Manager(SwarmEngine):
    """What a manager would answer, with every write recorded (and none expected here)."""

    def __init__(
        self, nodes: list[NodeFacts], services: dict[str, ServiceFacts], problem: str | None = None
    ) -> None:
        super().__init__("unix:///nowhere.sock", client=object())
        self._nodes, self._services, self.problem = nodes, services, problem
        self.writes: list[tuple[str, str]] = []

    def manager_problem(self) -> str | None:
        return self.problem

    def nodes(self) -> list[NodeFacts]:
        return self._nodes

    def service(self, name: str) -> ServiceFacts | None:
        return self._services.get(name)

    def tasks(self, service: ServiceFacts) -> list[TaskFacts]:
        return []

    def create_service(self, spec: dict[str, Any]) -> str:
        self.writes.append(("create", spec["Name"]))
        return "new"

    def update_service(self, service: ServiceFacts, spec: dict[str, Any]) -> None:
        self.writes.append(("update", spec["Name"]))


def target(tmp_path: Path, manager: Manager, **swarm: Any) -> SwarmTarget:
    config = PipelineConfig(
        application="app",
        prod_address="127.0.0.1:1",
        preprod_address="127.0.0.1:2",
        swarm=SwarmSettings(state_dir=tmp_path, **swarm),
    )
    return SwarmTarget(config, engine=manager)


def test_an_endpoint_that_is_not_a_manager_is_the_only_problem(tmp_path: Path) -> None:
    said = "unix:///x is a swarm worker, not a manager: set swarm.manager to a manager's endpoint"
    assert target(tmp_path, Manager([UP], {}, problem=said)).preflight() == [said]


def test_a_node_down_at_preflight_is_named(tmp_path: Path) -> None:
    problems = target(tmp_path, Manager([UP, DOWN], {})).preflight()
    assert problems[0].startswith("node node-2 (10.0.0.12) is down/active")


def test_waves_that_do_not_add_up_on_these_nodes_are_refused_at_preflight(tmp_path: Path) -> None:
    problems = target(tmp_path, Manager([UP], {}), waves=[1, "100%"]).preflight()
    assert any(line.startswith("swarm.waves: waves [1, '100%'] on 1 nodes") for line in problems), problems


def test_a_service_of_that_name_made_by_someone_else_is_refused_never_taken_over(tmp_path: Path) -> None:
    foreign = ServiceFacts("svc", "app-node-2", 3, {"com.example": "theirs"}, "nginx")
    manager = Manager([UP], {"app-node-2": foreign})
    swarm = target(tmp_path, manager)
    assert any("app-node-2 exists but was not created by this target" in line for line in swarm.preflight())
    (swarm.versions.path).parent.mkdir(parents=True, exist_ok=True)
    swarm.versions.path.write_text('{"v2": "10.0.0.1:5000/app@sha256:' + "a" * 64 + '"}')
    with pytest.raises(TargetError, match="never taken over"):
        swarm.deploy("node-2", "v2")
    assert manager.writes == []


def test_an_unregistered_version_or_unknown_environment_changes_nothing(tmp_path: Path) -> None:
    manager = Manager([UP], {})
    swarm = target(tmp_path, manager)
    with pytest.raises(TargetError, match="not registered"):
        swarm.deploy("node-2", "v9")
    with pytest.raises(TargetError, match="unknown environment"):
        swarm.deploy("node-9", "v9")
    with pytest.raises(TargetError, match="a percentage"):
        swarm.set_traffic_share("node-1", 101)
    assert manager.writes == []
    assert swarm.events("node-1", datetime.now(UTC)) == []


def test_status_shows_every_node_its_state_and_each_environments_version(tmp_path: Path) -> None:
    from flows.targets.swarm.status import node_rows

    ours = ServiceFacts(
        "svc1",
        "app-node-1",
        3,
        {
            "deliverypipeline.app": "app",
            "deliverypipeline.env": "node-1",
            "deliverypipeline.owner": "swarm",
            "deliverypipeline.version": "v7",
        },
        "img",
    )

    class WithTasks(Manager):
        def tasks(self, service: ServiceFacts) -> list[TaskFacts]:
            return [TaskFacts("id1", "running", "running", "v7", "", datetime.now(UTC))]

        def close(self) -> None:
            pass

    swarm = target(tmp_path, WithTasks([UP, DOWN], {"app-node-1": ours}))
    header, rows = node_rows(swarm.config, swarm.engine)
    assert header == ("NODE", "ADDRESS", "STATE", "ROLE", "NODE-1 (prod)", "NODE-2 (preprod)")
    assert rows == [
        ("node-1", "10.0.0.11", "ready/active", "manager", "v7", "-"),
        ("node-2", "10.0.0.12", "down/active", "worker", "-", "-"),
    ]

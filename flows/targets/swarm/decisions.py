"""Pure decisions of the swarm target: what the swarm's facts say about each environment.

The executor gathers facts (the nodes, a service, its tasks, what each node answers on the
environment's port); these functions judge them without I/O. A node *serves* an environment
when it is up (ready and active), its task of the service's version runs (Swarm reports a task
with a health check `running` only once it is healthy) and it answers `/health` with exactly
that version. An environment is Ready when no update is under way and every up node serves;
Green when every up node serves and they are at least `min_nodes`, Red when fewer serve. Nodes
that are down are left out (health checks at the edge take them out of traffic too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flows.targets.base import GREEN, GREY, MISSING, READY, RED, UPDATING, YELLOW

UPDATE_BUSY = frozenset({"updating", "rollback_started"})
UPDATE_FAILED = frozenset({"paused", "rollback_started", "rollback_paused", "rollback_completed"})
PULL_FAILURES = ("No such image", "pull access denied", "manifest unknown", "not found", "connection refused")


@dataclass(frozen=True)
class NodeFacts:
    """One node as the manager sees it."""

    id: str
    hostname: str
    address: str
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    role: str  # manager | worker

    @property
    def up(self) -> bool:
        """Whether tasks run here: ready and active."""
        return self.state == "ready" and self.availability == "active"


@dataclass(frozen=True)
class TaskFacts:
    """One task of a service on one node."""

    node_id: str
    state: str  # new .. starting | running | complete | failed | shutdown | rejected | orphaned
    desired: str  # running | shutdown
    version: str | None
    error: str
    time: datetime


@dataclass(frozen=True)
class ServiceFacts:
    """One environment's service: its spec's version and labels and its update's state."""

    id: str
    name: str
    index: int  # the object's version, for compare-and-swap updates
    labels: dict[str, str]
    image: str
    update_state: str | None = None
    update_message: str = ""
    update_time: datetime | None = None
    spec: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def version(self) -> str | None:
        """The version the service's spec asks for."""
        return self.labels.get("deliverypipeline.version")


@dataclass(frozen=True)
class EnvironmentState:
    """What an environment is, judged from the facts."""

    version: str | None
    status: str
    health: str
    serving: tuple[str, ...]  # hostnames of the nodes that serve the version
    lagging: tuple[str, ...]  # hostnames of up nodes that do not (yet)


def up_nodes(nodes: Sequence[NodeFacts]) -> list[NodeFacts]:
    """The nodes tasks run on, in hostname order (the order waves move them)."""
    return sorted((node for node in nodes if node.up), key=lambda node: (node.hostname, node.id))


def running_versions(tasks: Sequence[TaskFacts]) -> dict[str, str | None]:
    """Node id -> the version its running task runs (a task meant to run and running)."""
    return {t.node_id: t.version for t in tasks if t.desired == "running" and t.state == "running"}


def environment_state(
    service: ServiceFacts | None,
    tasks: Sequence[TaskFacts],
    nodes: Sequence[NodeFacts],
    answers: Mapping[str, str | None],
    min_nodes: int,
) -> EnvironmentState:
    """Judge an environment: `answers` maps node id -> the version its `/health` reported."""
    if service is None:
        return EnvironmentState(None, MISSING, GREY, (), ())
    wanted = service.version
    running = running_versions(tasks)
    serving: list[str] = []
    lagging: list[str] = []
    for node in up_nodes(nodes):
        ok = running.get(node.id) == wanted and answers.get(node.id) == wanted and wanted is not None
        (serving if ok else lagging).append(node.hostname)
    busy = service.update_state in UPDATE_BUSY
    status = UPDATING if busy or lagging else READY
    if not serving:
        health = GREY if status == UPDATING else RED
    elif len(serving) < min_nodes:
        health = RED
    elif lagging:
        health = YELLOW
    else:
        health = GREEN
    return EnvironmentState(wanted, status, health, tuple(serving), tuple(lagging))


def node_versions(tasks: Sequence[TaskFacts], nodes: Sequence[NodeFacts]) -> dict[str, str]:
    """Hostname -> the version the node runs for one service ("-" when none runs there)."""
    running = running_versions(tasks)
    return {node.hostname: running.get(node.id) or "-" for node in nodes}


def pull_failure(task: TaskFacts) -> bool:
    """Whether a task failed because its node could not pull the image."""
    return task.state in ("rejected", "failed") and any(word in task.error for word in PULL_FAILURES)


def preflight_problems(nodes: Sequence[NodeFacts], min_nodes: int) -> list[str]:
    """Nodes that are down or drained, named, and whether enough remain (one line each)."""
    problems = [
        f"node {node.hostname} ({node.address}) is {node.state}/{node.availability}: bring it back "
        f"(`docker node ls` on the manager) or remove it from the swarm"
        for node in sorted(nodes, key=lambda node: node.hostname)
        if not node.up
    ]
    if len(up_nodes(nodes)) < min_nodes:
        problems.append(
            f"only {len(up_nodes(nodes))} node(s) up, swarm.min_nodes is {min_nodes}: add nodes or lower it"
        )
    return problems

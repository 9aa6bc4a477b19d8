"""Pure judgements of an environment from the swarm's facts: which nodes serve, status, health."""

from __future__ import annotations

from datetime import UTC, datetime

from flows.targets.base import GREEN, GREY, MISSING, READY, RED, UPDATING, YELLOW
from flows.targets.swarm.decisions import (
    NodeFacts,
    ServiceFacts,
    TaskFacts,
    environment_state,
    node_versions,
    preflight_problems,
    pull_failure,
    up_nodes,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)
N1 = NodeFacts("id1", "node-1", "10.0.0.11", "ready", "active", "manager")
N2 = NodeFacts("id2", "node-2", "10.0.0.12", "ready", "active", "worker")
N3_DOWN = NodeFacts("id3", "node-3", "10.0.0.13", "down", "active", "worker")
SERVICE = ServiceFacts("svc", "app-node-1", 7, {"deliverypipeline.version": "v2"}, "img@sha256:x")


def running(node: str, version: str = "v2") -> TaskFacts:
    return TaskFacts(node, "running", "running", version, "", T0)


def test_no_service_is_missing() -> None:
    state = environment_state(None, [], [N1], {}, 1)
    assert (state.version, state.status, state.health) == (None, MISSING, GREY)


def test_every_up_node_serving_the_version_is_ready_and_green() -> None:
    state = environment_state(
        SERVICE, [running("id1"), running("id2")], [N1, N2], {"id1": "v2", "id2": "v2"}, 2
    )
    assert (state.status, state.health, state.serving, state.lagging) == (
        READY,
        GREEN,
        ("node-1", "node-2"),
        (),
    )


def test_a_node_whose_task_runs_but_answers_another_version_lags() -> None:
    state = environment_state(
        SERVICE, [running("id1"), running("id2")], [N1, N2], {"id1": "v2", "id2": "v1"}, 1
    )
    assert (state.status, state.health, state.lagging) == (UPDATING, YELLOW, ("node-2",))


def test_an_update_under_way_is_updating_and_grey_until_a_node_serves() -> None:
    busy = ServiceFacts("svc", "app-node-1", 8, SERVICE.labels, SERVICE.image, update_state="updating")
    starting = TaskFacts("id1", "starting", "running", "v2", "", T0)
    assert environment_state(busy, [starting], [N1], {}, 1).health == GREY
    assert environment_state(busy, [running("id1")], [N1], {"id1": "v2"}, 1).status == UPDATING


def test_a_dead_node_is_left_out_while_min_nodes_still_serve() -> None:
    state = environment_state(
        SERVICE, [running("id1"), running("id2")], [N1, N2, N3_DOWN], {"id1": "v2", "id2": "v2"}, 2
    )
    assert (state.status, state.health, state.serving) == (READY, GREEN, ("node-1", "node-2"))


def test_fewer_serving_nodes_than_min_nodes_is_red() -> None:
    state = environment_state(SERVICE, [running("id1")], [N1, N2], {"id1": "v2"}, 2)
    assert state.health == RED


def test_node_versions_name_each_node() -> None:
    assert node_versions([running("id1", "v1")], [N1, N2]) == {"node-1": "v1", "node-2": "-"}


def test_preflight_names_a_down_node_and_too_few_nodes() -> None:
    problems = preflight_problems([N1, N3_DOWN], 2)
    assert problems[0].startswith("node node-3 (10.0.0.13) is down/active")
    assert problems[1] == "only 1 node(s) up, swarm.min_nodes is 2: add nodes or lower it"
    assert preflight_problems([N1, N2], 2) == []
    assert [node.hostname for node in up_nodes([N2, N3_DOWN, N1])] == ["node-1", "node-2"]


def test_a_pull_failure_is_told_apart() -> None:
    failed = TaskFacts("id1", "rejected", "shutdown", "v2", "No such image: 10.0.0.1:5000/app@sha256:x", T0)
    crashed = TaskFacts("id1", "failed", "shutdown", "v2", "task: non-zero exit (2)", T0)
    assert pull_failure(failed) and not pull_failure(crashed)

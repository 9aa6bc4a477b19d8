"""The edge follows the swarm: a node that joins after the edge started serves at the next release.

On the folder's three-node lab: node-3 leaves the swarm, a first release starts the edge on
node-1 and node-2; node-3 joins again; the next release (its deploy re-reads the swarm's nodes)
adds node-3's servers to both backends at run time, and once prod moves, node-3 serves prod.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import requests

from flows.targets.local.plans import Endpoint
from flows.targets.swarm.lab_executor import LabExecutor, _sdk_client
from flows.targets.swarm.lab_plans import LabLayout, LabRecord
from flows.targets.swarm.lab_steps import Swarm
from flows.targets.swarm.target import SwarmTarget
from tests.flows.targets.swarm.conftest import prod_serving, ready, target_in

pytestmark = pytest.mark.docker


@pytest.fixture
def target(lab: LabLayout) -> Iterator[SwarmTarget]:
    with target_in(lab, "dpswe-") as made:
        yield made


def leave(lab: LabLayout, number: int) -> None:
    """Node `number` leaves the swarm and the manager forgets it."""
    with contextlib.closing(_sdk_client(lab.node(number).socket)) as node:
        node_id = node.info()["Swarm"]["NodeID"]
        node.swarm.leave(force=True)
    with contextlib.closing(_sdk_client(lab.node(1).socket)) as manager:
        manager.api.remove_node(node_id, force=True)


def join(lab: LabLayout, number: int) -> None:
    """Node `number` joins the swarm again as a worker (the lab's own step)."""
    LabExecutor(say=lambda _: None).step(Swarm(lab.node(number), manager=lab.node(1)), LabRecord(lab))


def test_a_node_that_joins_later_is_in_the_edges_backends_at_the_next_release(
    lab: LabLayout, swarm_image: str, target: SwarmTarget
) -> None:
    leave(lab, 3)
    try:
        first, second = prod_serving(target, swarm_image)
        assert "prod/node-3" not in target.edge.haproxy.slots()
    finally:
        join(lab, 3)
    target.deploy(first, "c2")
    env = ready(target, first, "c2", 180)
    assert env.details["serving"] == ["node-1", "node-2", "node-3"]
    target.swap(first, second)
    slots = target.edge.haproxy.slots()
    node3 = lab.node(3).address
    assert slots["prod/node-3"].endpoint == Endpoint(node3, target.env_ports[first])
    assert slots["preprod/node-3"].endpoint == Endpoint(node3, target.env_ports[second])
    assert "prod/canary-node-3" in slots
    for _ in range(30):
        assert (
            requests.get(f"http://{target.config.prod_address}/health", timeout=5).json()["version"] == "c2"
        )
    stats = target.edge.haproxy.stats()
    assert stats["prod/node-3"].counts.requests > 0, "node-3 took none of prod's requests"

"""A node lost in the middle of a release: prod keeps answering, the release completes on the others.

On the folder's three-node lab: prod runs c1 everywhere; while c2 rolls out to preprod (or while
the swap's first wave is judged), node-3's link is cut (as a node that dies). With `min_nodes`
2, preprod becomes Ready on node-1 and node-2, the swap goes through, and clients on prod all
along lose at most 1 % of their requests; once the link is back, Swarm brings node-3 to c2 by
itself.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from flows.clock import Deadline, poll_until
from flows.release.settings import AnalysisSettings
from flows.targets.swarm.decisions import node_versions
from flows.targets.swarm.lab_plans import LabLayout
from flows.targets.swarm.target import SwarmTarget
from tests.flows.targets.swarm.conftest import prod_serving, ready, target_in

pytestmark = pytest.mark.docker


class Clients:
    """Keep-alive clients on a URL in threads, counting answers and failures (5xx, none)."""

    def __init__(self, url: str, count: int = 8) -> None:
        self.url, self.ok, self.failed = url, 0, 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    good = session.get(self.url, timeout=5).status_code < 500
                except requests.RequestException:
                    good = False
                with self._lock:
                    self.ok, self.failed = (self.ok + 1, self.failed) if good else (self.ok, self.failed + 1)

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def target(lab: LabLayout) -> Iterator[SwarmTarget]:
    with target_in(lab, "dpswn-", min_nodes=2) as made:
        yield made


@pytest.fixture
def in_waves(lab: LabLayout) -> Iterator[SwarmTarget]:
    """The target releasing in waves `[1, "100%"]`, the first judged for 4 s."""
    with target_in(lab, "dpswn-", AnalysisSettings(window=8), min_nodes=2, waves=[1, "100%"]) as made:
        yield made


@contextlib.contextmanager
def on_prod(prod: str, when: str) -> Iterator[None]:
    """Keep-alive clients on `prod` for the block; at most 1 % of their requests may fail."""
    with Clients(prod) as clients:
        yield
        time.sleep(2)  # prod keeps answering a while longer
    total = clients.ok + clients.failed
    print(f"prod during the node loss {when}: {total} requests, {clients.failed} failed")
    assert total > 100 and clients.failed <= total / 100


@contextlib.contextmanager
def node_3_cut(lab: LabLayout) -> Iterator[None]:
    """Node-3's link down for the block (as a node that dies), back up after."""
    subprocess.run(["ip", "link", "set", lab.node(3).host_veth, "down"], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "link", "set", lab.node(3).host_veth, "up"], check=True)


def test_a_node_lost_mid_deploy_costs_prod_little_and_the_release_completes(
    lab: LabLayout, swarm_image: str, target: SwarmTarget
) -> None:
    first, second = prod_serving(target, swarm_image)
    prod = f"http://{target.config.prod_address}/health"
    with on_prod(prod, "mid-deploy"):
        target.deploy(first, "c2")
        with node_3_cut(lab):  # while the new tasks roll out
            env = ready(target, first, "c2", 120)
            assert env.details["serving"] == ["node-1", "node-2"]
            target.swap(first, second)
            assert requests.get(prod, timeout=5).json()["version"] == "c2"

    service = target.engine.service(f"{target.config.application}-{first}")
    assert service is not None

    def caught_up(_: Deadline) -> bool | None:
        versions = node_versions(target.engine.tasks(service), target.engine.nodes())
        return True if versions.get("node-3") == "c2" else None

    assert poll_until(caught_up, 120, 2.0) is True


def test_a_node_lost_mid_swap_costs_prod_at_most_one_percent_and_the_swap_completes(
    lab: LabLayout, swarm_image: str, in_waves: SwarmTarget
) -> None:
    target = in_waves
    first, second = prod_serving(target, swarm_image)
    target.deploy(first, "c2")
    ready(target, first, "c2", 120)
    prod = f"http://{target.config.prod_address}/health"
    failed: list[BaseException] = []

    def swap() -> None:
        try:
            target.swap(first, second)
        except BaseException as exc:  # shown by the assertion below
            failed.append(exc)

    with on_prod(prod, "mid-swap"):
        time.sleep(1)
        swapping = threading.Thread(target=swap)
        swapping.start()  # in waves: node-1 moves first, judged 4 s, then the rest
        time.sleep(1)
        with node_3_cut(lab):
            swapping.join(60)
            assert not swapping.is_alive() and not failed, failed
            assert {requests.get(prod, timeout=5).json()["version"] for _ in range(20)} == {"c2"}
    assert target.edge.roles()["prod"] == first

"""A node lost in the middle of a release: prod keeps answering, the release completes on the others.

On the folder's three-node lab: prod runs c1 everywhere; while c2 rolls out to preprod, node-3's
link is cut (as a node that dies). With `min_nodes` 2, preprod becomes Ready on node-1 and
node-2, the swap goes through, and clients on prod all along lose at most 1 % of their requests;
once the link is back, Swarm brings node-3 to c2 by itself.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from flows.clock import Deadline, poll_until
from flows.targets.base import GREEN, READY, Environment
from flows.targets.swarm.decisions import node_versions
from flows.targets.swarm.lab_plans import LabLayout
from flows.targets.swarm.target import SwarmTarget
from tests.flows.targets.swarm.conftest import bundle_of, target_on

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
    state_dir = Path(tempfile.mkdtemp(prefix="dpswn-"))
    made = target_on(lab, state_dir, min_nodes=2)
    try:
        yield made
    finally:
        made.down()
        made.engine.close()


def ready(target: SwarmTarget, name: str, version: str, within: float) -> Environment:
    def look(_: Deadline) -> Environment | None:
        env = next(e for e in target.environments() if e.name == name)
        return env if (env.status, env.version, env.health) == (READY, version, GREEN) else None

    return poll_until(
        look, within, 1.0, lambda _: AssertionError(f"{name} not ready: {target.environments()}")
    )


def link(lab: LabLayout, node: int, state: str) -> None:
    subprocess.run(["ip", "link", "set", lab.node(node).host_veth, state], check=True)


def test_a_node_lost_mid_deploy_costs_prod_nothing_and_the_release_completes(
    lab: LabLayout, swarm_image: str, target: SwarmTarget
) -> None:
    bundle = bundle_of(swarm_image)
    for version in ("c1", "c2"):
        target.register_version(version, bundle(version))
    first, second = target.environment_names
    target.deploy(second, "c1")  # the empty target's preprod
    ready(target, second, "c1", 90)
    target.swap(first, second)
    prod = f"http://{target.config.prod_address}/health"
    with Clients(prod) as clients:
        target.deploy(first, "c2")
        link(lab, 3, "down")
        try:
            env = ready(target, first, "c2", 120)
            assert env.details["serving"] == ["node-1", "node-2"]
            target.swap(first, second)
            assert requests.get(prod, timeout=5).json()["version"] == "c2"
            time.sleep(2)
        finally:
            link(lab, 3, "up")
    total = clients.ok + clients.failed
    print(f"prod during the node loss: {total} requests, {clients.failed} failed")
    assert total > 100 and clients.failed <= total / 100

    service = target.engine.service(f"{target.config.application}-{first}")
    assert service is not None

    def caught_up(_: Deadline) -> bool | None:
        versions = node_versions(target.engine.tasks(service), target.engine.nodes())
        return True if versions.get("node-3") == "c2" else None

    assert poll_until(caught_up, 120, 2.0) is True

"""The release process killed mid-wave: the recovery right after the next preflight puts prod back.

On the folder's three-node lab, with waves `[1, "100%"]`: prod runs c1 on every node, preprod
c2. A release process takes the swarm's lock as `release c2` and swaps; once its first wave has
moved prod on node-1 to c2 (the other nodes still on c1), it is killed with SIGKILL. The next
release's `recover` step (`flows.release.recovery.recover_target`, what the pipeline runs right
after its preflight) takes the lock over when the dead holder's lease ends and brings prod back
to the verified version on every node: each node's prod server points at c1's environment, and
every answer of the prod address says c1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from flows.clock import Deadline, poll_until
from flows.release.lock import holder
from flows.release.recovery import recover_target
from flows.release.settings import AnalysisSettings
from flows.targets.local.plans import Endpoint
from flows.targets.swarm.lab_plans import LabLayout
from flows.targets.swarm.target import SwarmTarget
from tests.flows.targets.swarm.conftest import REPO, prod_serving, ready, target_in

pytestmark = pytest.mark.docker

# The killed release: holds the lock as `release <version>` and swaps in waves (argv: config file,
# the environment to move prod to, the other one, the version).
RELEASE = """
import sys
from flows.config import PipelineConfig
from flows.release.lock import holder, locked
from flows.targets.swarm.target import SwarmTarget

config = PipelineConfig.model_validate_json(open(sys.argv[1]).read())
target = SwarmTarget(config)
with locked(target, holder("release " + sys.argv[4], "killed-run"), config, print):
    target.swap(sys.argv[2], sys.argv[3])
"""


@pytest.fixture
def target(lab: LabLayout) -> Iterator[SwarmTarget]:
    lock = {"lock_lease": 4, "lock_renew": 1, "lock_clock_skew": 0.5}
    window = AnalysisSettings(window=240)  # wave 1 is judged for 120 s: killed long before
    with target_in(lab, "dpswk-", window, waves=[1, "100%"], **lock) as made:
        yield made


def prod_endpoints(target: SwarmTarget) -> dict[str, Endpoint | None]:
    """Node -> where the edge's prod server of that node points now."""
    slots = target.edge.haproxy.slots()
    return {
        key.partition("/")[2]: slot.endpoint
        for key, slot in slots.items()
        if slot.backend == "prod" and not key.startswith("prod/canary-")
    }


def test_a_release_killed_mid_wave_is_put_back_on_every_node_by_the_next_recovery(
    lab: LabLayout, swarm_image: str, target: SwarmTarget
) -> None:
    first, second = prod_serving(target, swarm_image)  # no wave yet: `first` had nothing
    target.deploy(first, "c2")
    ready(target, first, "c2", 120)
    nodes = {node.name: node.address for node in lab.all_nodes()}
    old, new = target.env_ports[second], target.env_ports[first]

    config_file = target.state_dir / "release.json"
    config_file.write_text(target.config.model_dump_json())
    child = subprocess.Popen(
        [sys.executable, "-c", RELEASE, str(config_file), first, second, "c2"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:

        def first_wave_moved(_: Deadline) -> dict[str, Endpoint | None] | None:
            assert child.poll() is None, "the release process ended before its first wave"
            now = prod_endpoints(target)
            return now if now.get("node-1") == Endpoint(nodes["node-1"], new) else None

        mid_wave = poll_until(first_wave_moved, 90, 0.2, lambda _: AssertionError("wave 1 never moved"))
        assert mid_wave["node-2"] == Endpoint(nodes["node-2"], old)
        assert mid_wave["node-3"] == Endpoint(nodes["node-3"], old)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)

    lines: list[str] = []
    done = recover_target(target, holder("release c3", "next-run"), target.config, lines.append)
    print("\n".join([*lines, done]))
    assert "release c2" in done and "prod" in done
    assert prod_endpoints(target) == {name: Endpoint(address, old) for name, address in nodes.items()}
    for name, address in nodes.items():  # every node's prod environment serves the verified c1
        answer = requests.get(f"http://{address}:{old}/health", timeout=5).json()
        assert answer["version"] == "c1", name
    answers = {
        requests.get(f"http://{target.config.prod_address}/health", timeout=5).json()["version"]
        for _ in range(30)
    }
    assert answers == {"c1"}

"""A real two-node swarm lab: up forms the swarm, down removes every trace of it (Docker, root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flows.clock import Deadline, poll_until
from flows.targets.swarm.lab_executor import LabExecutor, _sdk_client, process_named
from flows.targets.swarm.lab_plans import LabLayout, forward_rule
from flows.targets.swarm.settings import STORE_CONFIG
from tests.flows.targets.swarm.conftest import reachable_dir

pytestmark = pytest.mark.docker


def test_up_forms_a_swarm_and_down_removes_it(docker_client: object) -> None:
    layout = LabLayout(
        nodes=2,
        run_dir=Path(f"/run/dpswt{os.getpid()}"),
        state_dir=reachable_dir("dpswt-"),
        subnet="10.232.0",
        bridge="dpswt0",
        prefix="dpswt",
    )
    lines: list[str] = []
    executor = LabExecutor(say=lines.append)
    record = executor.up(layout)
    try:
        with contextlib.closing(_sdk_client(layout.node(1).socket)) as manager:
            nodes = {n.attrs["Description"]["Hostname"]: n.attrs["Status"] for n in manager.nodes.list()}
        assert sorted(nodes) == ["node-1", "node-2"]
        assert {status["Addr"] for status in nodes.values()} == {"10.232.0.11", "10.232.0.12"}
        assert all(status["State"] == "ready" for status in nodes.values())
        assert set(record.pids) == {"registry", "postgres", "node-1", "node-2"}
        assert 'kind = "postgresql"' in (layout.state_dir / STORE_CONFIG).read_text()
    finally:
        executor.down(layout)
        shutil.rmtree(layout.state_dir, ignore_errors=True)
    binaries = {
        "registry": "docker-registry",
        "postgres": "postgres",
        "node-1": "dockerd",
        "node-2": "dockerd",
    }
    assert not any(process_named(pid, binaries[name]) for name, pid in record.pids.items())
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "dpswt-node" not in netns

    def links_gone(_: Deadline) -> bool | None:  # the kernel frees a namespace's veths asynchronously
        return "dpswt" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout or None

    assert poll_until(links_gone, 10, 0.2) is True
    rule = subprocess.run(["iptables", "-C", *forward_rule("dpswt0")], capture_output=True)
    assert rule.returncode != 0
    assert not layout.run_dir.exists()
    assert not layout.lab_dir.exists() and not (layout.state_dir / STORE_CONFIG).exists()
    assert "node-2: engine answers, joined the swarm as a worker" in lines

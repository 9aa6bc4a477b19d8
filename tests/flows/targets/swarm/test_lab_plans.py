"""The swarm lab's pure plans: the exact steps of `swarm up` and `swarm down`."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.servers.postgres import ClusterSpec
from flows.targets.swarm.lab_plans import (
    LabLayout,
    LabRecord,
    down_plan,
    layout_for,
    registry_config_text,
    up_plan,
)
from flows.targets.swarm.lab_steps import (
    Command,
    Kill,
    LabNode,
    Remove,
    Spawn,
    StartPostgres,
    Swarm,
)

STORE_PW = (
    '[store]\nkind = "postgresql"\nuri = "postgresql://deliverypipeline:pw@10.231.0.1:15432/delivery"\n'
)
LAYOUT = LabLayout(nodes=2, run_dir=Path("/run/sw"), state_dir=Path("/var/sw"))
DOCKERD_1 = (
    "hostname node-1 && exec dockerd --data-root /var/sw/lab/node-1/engine --exec-root /run/sw/node-1/exec "
    "--host unix:///run/sw/node-1/docker.sock --pidfile /run/sw/node-1/docker.pid "
    "--insecure-registry 10.231.0.1:5000 --bridge none --iptables=false"
)


def node_network(number: int) -> list[Command]:
    ns, veth, address = f"dpswarm-node-{number}", f"dpswarmv{number}", f"10.231.0.{10 + number}/24"
    return [
        Command(("ip", "netns", "add", ns)),
        Command(("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)),
        Command(("ip", "link", "set", veth, "master", "dpswarm0", "up")),
        Command(("ip", "-n", ns, "addr", "add", address, "dev", "eth0")),
        Command(("ip", "-n", ns, "link", "set", "eth0", "up")),
        Command(("ip", "-n", ns, "link", "set", "lo", "up")),
        Command(("ip", "-n", ns, "route", "add", "default", "via", "10.231.0.1")),
    ]


def test_up_plan_is_exactly_the_lab() -> None:
    rule = ("DOCKER-USER", "-i", "dpswarm0", "-o", "dpswarm0", "-j", "ACCEPT")
    steps = up_plan(LAYOUT, "pw")
    assert steps == [
        Command(("ip", "link", "add", "dpswarm0", "type", "bridge")),
        Command(("ip", "addr", "add", "10.231.0.1/24", "dev", "dpswarm0")),
        Command(("ip", "link", "set", "dpswarm0", "up")),
        Command(("iptables", "-I", *rule)),
        Spawn(
            "registry",
            ("docker-registry", "serve", "/var/sw/lab/registry.yml"),
            Path("/var/sw/lab/registry.log"),
            files=((Path("/var/sw/lab/registry.yml"), registry_config_text(LAYOUT)),),
        ),
        StartPostgres(
            ClusterSpec(Path("/var/sw/lab/postgres"), 15432, "pw", "10.231.0.1", ("10.231.0.0/24",)),
            "delivery",
            files=((Path("/var/sw/store.conf"), STORE_PW),),
        ),
        *node_network(1),
        *node_network(2),
        Spawn(
            "node-1",
            ("nsenter", "--net=/var/run/netns/dpswarm-node-1", "unshare", "--uts", "sh", "-c", DOCKERD_1),
            Path("/var/sw/lab/node-1/dockerd.log"),
        ),
        Spawn(
            "node-2",
            (
                "nsenter",
                "--net=/var/run/netns/dpswarm-node-2",
                "unshare",
                "--uts",
                "sh",
                "-c",
                DOCKERD_1.replace("node-1", "node-2"),
            ),
            Path("/var/sw/lab/node-2/dockerd.log"),
        ),
        Swarm(LAYOUT.node(1)),
        Swarm(LAYOUT.node(2), manager=LAYOUT.node(1)),
    ]


def test_a_node_has_its_names_address_and_short_paths() -> None:
    assert LAYOUT.node(2) == LabNode(
        name="node-2",
        netns="dpswarm-node-2",
        address="10.231.0.12",
        host_veth="dpswarmv2",
        dir=Path("/run/sw/node-2"),
        data_root=Path("/var/sw/lab/node-2/engine"),
        socket=Path("/run/sw/node-2/docker.sock"),
        exec_root=Path("/run/sw/node-2/exec"),
    )


def test_the_nodes_registry_serves_the_host_registrys_storage_on_the_bridge() -> None:
    text = registry_config_text(LAYOUT)
    assert "rootdirectory: /var/lib/deliverypipeline/registry\n" in text
    assert "addr: 10.231.0.1:5000\n" in text
    assert LAYOUT.registry == "10.231.0.1:5000"


def test_down_plan_stops_by_pid_then_unmounts_then_removes() -> None:
    record = LabRecord(LAYOUT, {"registry": 10, "postgres": 13, "node-1": 11, "node-2": 12})
    rule = ("DOCKER-USER", "-i", "dpswarm0", "-o", "dpswarm0", "-j", "ACCEPT")
    assert down_plan(record) == [
        Kill("node-1", 11, "dockerd"),
        Kill("node-2", 12, "dockerd"),
        Kill("registry", 10, "docker-registry"),
        Kill("postgres", 13, "postgres", signal=2),
        Remove(Path("/run/sw/node-1")),
        Remove(Path("/run/sw/node-2")),
        Command(("ip", "netns", "delete", "dpswarm-node-1"), check=False),
        Command(("ip", "netns", "delete", "dpswarm-node-2"), check=False),
        Command(("ip", "link", "delete", "dpswarm0"), check=False),
        Command(("iptables", "-D", *rule), check=False),
        Remove(Path("/var/sw/lab")),
        Remove(Path("/var/sw/store.conf")),
        Remove(Path("/run/sw")),
    ]


def test_down_after_a_partial_up_kills_only_what_was_recorded() -> None:
    steps = down_plan(LabRecord(LAYOUT, {"registry": 10}))
    assert [step for step in steps if isinstance(step, Kill)] == [Kill("registry", 10, "docker-registry")]
    assert Command(("ip", "link", "delete", "dpswarm0"), check=False) in steps


def test_layout_for_bounds_the_size() -> None:
    assert layout_for(3, Path("/r"), Path("/s")).all_nodes()[-1].address == "10.231.0.13"
    with pytest.raises(ValueError, match="1 to 9 nodes"):
        layout_for(0, Path("/r"), Path("/s"))

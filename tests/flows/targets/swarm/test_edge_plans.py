"""The edge's plans: a checked server per node in each backend, one-line swaps, waves, canaries."""

from __future__ import annotations

from pathlib import Path

from flows.targets.swarm.edge_plans import (
    CHECK_TIMING,
    EdgeNode,
    admit_commands,
    admit_errors,
    canary_share_commands,
    edge_backends,
    edge_config,
    roles_from_ports,
    swap_commands,
    wave_commands,
)

NODES = [EdgeNode("node-1", "10.0.0.11"), EdgeNode("node-2", "10.0.0.12")]
ADDRESSES = {"prod": "127.0.0.1:8180", "preprod": "127.0.0.1:8181"}


def test_backends_list_every_node_checked() -> None:
    prod, preprod = edge_backends(ADDRESSES, NODES, {"prod": 9081, "preprod": None}, "/health")
    assert prod.lines() == [
        "",
        "frontend prod",
        "    bind 127.0.0.1:8180",
        "    default_backend prod",
        "",
        "backend prod",
        "    option httpchk GET /health",
        "    server node-1 10.0.0.11:9081 weight 100 check",
        "    server node-2 10.0.0.12:9081 weight 100 check",
        "    server canary-node-1 127.0.0.1:1 weight 0 check disabled",
        "    server canary-node-2 127.0.0.1:1 weight 0 check disabled",
    ]
    assert preprod.lines()[-2:] == [
        "    server node-1 127.0.0.1:1 check disabled",
        "    server node-2 127.0.0.1:1 check disabled",
    ]


def test_a_swap_re_points_both_backends_in_one_line_addresses_first() -> None:
    assert swap_commands(NODES, {"prod": 9082, "preprod": 9081}) == [
        "set server prod/node-1 addr 10.0.0.11 port 9082",
        "set server prod/node-2 addr 10.0.0.12 port 9082",
        "set server preprod/node-1 addr 10.0.0.11 port 9081",
        "set server preprod/node-2 addr 10.0.0.12 port 9081",
        "set server prod/node-1 state ready",
        "set server prod/node-2 state ready",
        "set server preprod/node-1 state ready",
        "set server preprod/node-2 state ready",
    ]


def test_a_wave_moves_only_its_nodes_prod_servers() -> None:
    assert wave_commands(NODES[:1], 9082) == [
        "set server prod/node-1 addr 10.0.0.11 port 9082",
        "set server prod/node-1 state ready",
    ]


def test_a_canary_weighs_every_nodes_canary() -> None:
    commands = canary_share_commands(NODES, 9082, 10)
    assert "set weight prod/canary-node-1 10" in commands
    assert commands[-2:] == ["set weight prod/node-1 90", "set weight prod/node-2 90"]
    assert "set server prod/canary-node-2 state maint" in canary_share_commands(NODES, None, 0)


def test_roles_from_the_prod_servers_ports() -> None:
    ports = {"node-1": 9081, "node-2": 9082}
    assert roles_from_ports([9082, 9082], ports) == {"prod": "node-2", "preprod": "node-1"}
    assert roles_from_ports([9081, 9082], ports) is None  # a wave under way
    assert roles_from_ports([], ports) is None


def test_a_node_that_joined_gets_the_servers_the_proxy_does_not_list_yet() -> None:
    backends = edge_backends(ADDRESSES, NODES, {"prod": 9081, "preprod": None}, "/health")
    listed = {"prod/node-1", "prod/canary-node-1", "preprod/node-1"}
    assert admit_commands(backends, listed) == [
        f"add server prod/node-2 10.0.0.12:9081 weight 100 check {CHECK_TIMING}",
        "enable health prod/node-2",
        "set server prod/node-2 state ready",
        f"add server prod/canary-node-2 127.0.0.1:1 weight 0 check {CHECK_TIMING}",
        "enable health prod/canary-node-2",
        f"add server preprod/node-2 127.0.0.1:1 check {CHECK_TIMING}",
        "enable health preprod/node-2",
    ]
    assert admit_errors("New server registered.\n\nNew server registered.\n\n") == []
    assert admit_errors("New server registered.\nNo such backend.\n") == ["No such backend."]
    every = {f"{b.name}/{server.name}" for b in backends for server in b.servers}
    assert admit_commands(backends, every) == []


def test_the_edge_checks_every_server_often_and_lets_a_node_back_after_one_good_answer() -> None:
    backends = edge_backends(ADDRESSES, NODES, {"prod": 9081, "preprod": None}, "/health")
    text = edge_config(Path("/e/haproxy.pid"), Path("/e/haproxy.sock"), backends)
    defaults = text.split("\ndefaults\n", 1)[1].splitlines()
    assert defaults[0] == "    default-server inter 1s fastinter 250ms downinter 250ms rise 1 fall 2"
    assert "    server node-2 10.0.0.12:9081 weight 100 check" in text.splitlines()

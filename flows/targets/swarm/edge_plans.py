"""Pure plans of the swarm's edge: HAProxy backends listing every node, and their switches.

Built from the project's proxy plans (`flows.targets.local.plans`: backends of any number of
servers, one-line switches, canary shares). Two frontends, prod and preprod; each backend has
one server per node, named after the node, pointing at `<node address>:<port of the
environment holding that role>` and health-checked on `health_path` (HAProxy takes a dead
node's server out by itself). Prod also has a parked `canary-<node>` server per node for canary
shares. A swap re-points every server of both backends in one admin-socket line; a wave
re-points only the prod servers of the nodes it moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flows.targets.local.plans import (
    FULL_WEIGHT,
    PREPROD,
    PROD,
    ROLES,
    Backend,
    Endpoint,
    Server,
    share_commands,
    switch_commands_for,
)


@dataclass(frozen=True)
class EdgeNode:
    """A node as the edge sees it: its name (server name) and address."""

    name: str
    address: str


def canary(node: str) -> str:
    """The prod backend's canary server of a node."""
    return f"canary-{node}"


def endpoint(node: EdgeNode, port: int | None) -> Endpoint | None:
    """Where a node's server points for an environment on `port` (None: nothing, parked)."""
    return Endpoint(node.address, port) if port is not None else None


def edge_backends(
    addresses: Mapping[str, str],
    nodes: Sequence[EdgeNode],
    ports: Mapping[str, int | None],
    health_path: str,
) -> list[Backend]:
    """Both backends: `addresses[role]` bound, a checked server per node at `ports[role]` (None: parked)."""
    backends = []
    for role in ROLES:
        weight = FULL_WEIGHT if role == PROD else None
        servers = [Server(node.name, endpoint(node, ports.get(role)), weight, check=True) for node in nodes]
        if role == PROD:
            servers += [Server(canary(node.name), None, 0, check=True) for node in nodes]
        backends.append(Backend(role, addresses[role], tuple(servers), health_path=health_path))
    return backends


def swap_commands(nodes: Sequence[EdgeNode], ports: Mapping[str, int | None]) -> list[str]:
    """Point every node's server of each role at `ports[role]`: one line, both backends at once."""
    moves = [(role, node.name, endpoint(node, ports.get(role))) for role in ROLES for node in nodes]
    return switch_commands_for(moves)


def wave_commands(moved: Sequence[EdgeNode], port: int) -> list[str]:
    """Point the prod servers of the `moved` nodes at the environment on `port` (a wave)."""
    return switch_commands_for([(PROD, node.name, endpoint(node, port)) for node in moved])


def canary_share_commands(nodes: Sequence[EdgeNode], port: int | None, percent: int) -> list[str]:
    """Send `percent` of prod's requests to the environment on `port` on every node (0 ends it)."""
    targets = {canary(node.name): endpoint(node, port) for node in nodes}
    return share_commands(PROD, [node.name for node in nodes], targets, percent)


def roles_from_ports(prod_ports: Sequence[int], env_ports: Mapping[str, int]) -> dict[str, str] | None:
    """Which environment holds prod, from the ports prod's serving node servers point at.

    All of them on one environment's port: that one holds prod, the other preprod. Mixed (a
    wave under way) or none: the proxy cannot tell (None), the state file says.
    """
    found = {port for port in prod_ports}
    owners = [env for env, port in env_ports.items() if found == {port}]
    if len(owners) != 1:
        return None
    other = next(env for env in env_ports if env != owners[0])
    return {PROD: owners[0], PREPROD: other}

"""Pure plans of the swarm's edge: HAProxy backends listing every node, and their switches.

Built from the project's proxy plans (`flows.targets.local.plans`: backends of any number of
servers, one-line switches, canary shares). Two frontends, prod and preprod; each backend has
one server per node, named after the node, pointing at `<node address>:<port of the
environment holding that role>` and health-checked on `health_path` (HAProxy takes a dead
node's server out by itself). Prod also has a parked `canary-<node>` server per node for canary
shares. A swap re-points every server of both backends in one admin-socket line; a wave
re-points only the prod servers of the nodes it moves. A node that joins the swarm after the
edge started gets the same servers at run time (`add server`, no reload: no connection cut).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flows.targets.local.plans import (
    FULL_WEIGHT,
    LOOPBACK,
    PARKED_PORT,
    PREPROD,
    PROD,
    ROLES,
    Backend,
    Endpoint,
    Server,
    proxy_config,
    share_commands,
    switch_commands_for,
)
from flows.targets.local.replies import command_errors

SERVER_ADDED = "New server registered."  # HAProxy's answer to a successful `add server`
PARKED = Endpoint(LOOPBACK, PARKED_PORT)  # where a server with nothing to send to points
# The edge's health checks: a node that stops answering is out after 2 misses 1 s apart, and one
# that is down is looked at every 250 ms and back after one good answer (its task is only
# `running` once Docker's own health check passed), so a node restarted by a deploy serves again
# well under a second after it answers instead of HAProxy's default 2 x 2 s.
CHECK_TIMING = "inter 1s fastinter 250ms downinter 250ms rise 1 fall 2"


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


def admit_commands(backends: Sequence[Backend], listed: Collection[str]) -> list[str]:
    """Add the servers of `backends` the running proxy does not list yet (`listed`: `backend/server`
    keys), as its configuration would list them: the servers of nodes that joined the swarm.

    HAProxy adds a server in maintenance with its checks off: checks are turned on, and a server
    with somewhere to send to is made ready (its checks take it out until the node answers).
    """
    commands = []
    for backend in backends:
        for server in backend.servers:
            if f"{backend.name}/{server.name}" in listed:
                continue
            words = [f"add server {backend.name}/{server.name} {server.endpoint or PARKED}"]
            if server.weight is not None:
                words.append(f"weight {server.weight}")
            if server.check:
                words.append(f"check {CHECK_TIMING}")  # a dynamic server takes no default-server
            commands.append(" ".join(words))
            if server.check:
                commands.append(f"enable health {backend.name}/{server.name}")
            if server.endpoint is not None:
                commands.append(f"set server {backend.name}/{server.name} state ready")
    return commands


def admit_errors(reply: str) -> list[str]:
    """The failures in the admin socket's reply to `admit_commands` (HAProxy says each added server)."""
    return [line for line in command_errors(reply) if line != SERVER_ADDED]


def edge_config(pid_path: Path, socket_path: Path, backends: Sequence[Backend]) -> str:
    """The edge proxy's configuration: the project's proxy configuration of `backends`, every
    server checked at `CHECK_TIMING` (a `default-server` line in its defaults)."""
    text = proxy_config(pid_path, socket_path, backends)
    return text.replace("\ndefaults\n", f"\ndefaults\n    default-server {CHECK_TIMING}\n", 1)


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

"""The swarm's edge: one HAProxy host process in front of every node, and which role is where.

The project's proxy pieces do the work: `start_on_claimed` (never on an address another process
or state dir holds), the `HAProxy` executor (admin socket, no reload), the traffic ledger
(`TrafficBook`: per-server counters credited to the environment whose endpoints they point at,
banked before every re-point so readings never go back). The roles (which environment holds
prod) are read from the running proxy when its prod servers tell, else from `roles.json`
beside it, written at every switch.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from flows.targets.base import TrafficCounters
from flows.targets.local.claims import ClaimRegistry
from flows.targets.local.errors import ProxyError
from flows.targets.local.haproxy import HAProxy
from flows.targets.local.ledger import TrafficBook
from flows.targets.local.plans import (
    PARKED_PORT,
    PROD,
    ROLES,
    Endpoint,
    ProxyLayout,
    command_line,
    switch_commands_for,
)
from flows.targets.local.proxy import start_on_claimed
from flows.targets.local.state import file_lock, settle_roles
from flows.targets.swarm import edge_plans
from flows.targets.swarm.edge_plans import EdgeNode


class SwarmEdge:
    """The edge proxy of one swarm target (its files under `<state_dir>/edge`)."""

    def __init__(
        self,
        state_dir: Path,
        addresses: Mapping[str, str],
        environments: Sequence[str],
        env_ports: Mapping[str, int],
        health_path: str,
        claims: ClaimRegistry | None = None,
    ) -> None:
        """`addresses`: role -> HOST:PORT it binds; `env_ports`: environment -> its port on every node."""
        self.dir = state_dir.absolute() / "edge"
        self.addresses = dict(addresses)
        self.environments = tuple(environments)
        self.env_ports = dict(env_ports)
        self.health_path = health_path
        self.layout = ProxyLayout(
            prod_address=addresses[PROD],
            preprod_address=addresses["preprod"],
            config_path=self.dir / "haproxy.cfg",
            socket_path=self.dir / "haproxy.sock",
            pid_path=self.dir / "haproxy.pid",
        )
        self.haproxy = HAProxy(self.layout)
        self.claims = claims or ClaimRegistry()
        self.book = TrafficBook(self.haproxy, self.dir / "traffic.json")
        self.roles_path = self.dir / "roles.json"

    def ops(self) -> contextlib.AbstractContextManager[None]:
        """The short lock every change to the proxy and its files is made under."""
        return file_lock(self.dir / "ops.lock")

    def running(self) -> bool:
        """Whether the edge proxy runs."""
        return self.haproxy.running()

    def saved_roles(self) -> dict[str, str]:
        """The roles last written (or the default: the first environment holds prod)."""
        try:
            saved = json.loads(self.roles_path.read_text())
        except (FileNotFoundError, ValueError):
            saved = {}
        return settle_roles(saved if isinstance(saved, dict) else {}, self.environments)

    def roles(self) -> dict[str, str]:
        """Role -> environment: the running proxy's prod servers when they tell, else the saved roles."""
        if self.running():
            ports = [
                slot.port
                for key, slot in self.haproxy.slots().items()
                if slot.backend == PROD and not slot.server.startswith("canary-") and slot.serving
            ]
            live = edge_plans.roles_from_ports(ports, self.env_ports)
            if live is not None:
                return live
        return self.saved_roles()

    def save_roles(self, roles: Mapping[str, str]) -> None:
        """Write the roles atomically."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.roles_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(dict(roles), sort_keys=True))
        os.replace(tmp, self.roles_path)

    def role_ports(self, roles: Mapping[str, str], deployed: Sequence[str]) -> dict[str, int | None]:
        """Role -> the port its servers point at: the environment's, if it has a service."""
        return {role: self.env_ports[roles[role]] if roles[role] in deployed else None for role in ROLES}

    def endpoints(self, nodes: Sequence[EdgeNode]) -> dict[str, list[Endpoint]]:
        """Environment -> every node's endpoint for it (how traffic is credited)."""
        return {env: [Endpoint(node.address, port) for node in nodes] for env, port in self.env_ports.items()}

    def ensure(self, nodes: Sequence[EdgeNode], deployed: Sequence[str]) -> list[str]:
        """Start the proxy unless it runs, each role at its environment on every node in `nodes`;
        when it runs, add the servers of the nodes it does not list yet (nodes that joined since).

        What was done, one line each (empty: nothing).
        """
        with self.ops():
            if self.running():
                return self._admit(nodes, deployed)
            roles = self.saved_roles()
            backends = edge_plans.edge_backends(
                self.addresses, nodes, self.role_ports(roles, deployed), self.health_path
            )
            config = edge_plans.edge_config(self.layout.pid_path, self.layout.socket_path, backends)
            start_on_claimed(self.haproxy, self.claims, list(self.addresses.values()), self.dir, config)
            self.save_roles(roles)
            return [
                f"started the edge proxy: prod {self.addresses[PROD]} on {roles[PROD]}, {len(nodes)} node(s)"
            ]

    def _admit(self, nodes: Sequence[EdgeNode], deployed: Sequence[str]) -> list[str]:
        """Add the servers of the nodes the running proxy does not list (under the ops lock)."""
        listed = set(self.haproxy.slots())
        ports = self.role_ports(self.roles(), deployed)
        commands = edge_plans.admit_commands(
            edge_plans.edge_backends(self.addresses, nodes, ports, self.health_path), listed
        )
        if not commands:
            return []
        self.book.bank(self.endpoints(nodes))
        errors = edge_plans.admit_errors(self.haproxy.ask(command_line(commands)))
        if errors:
            raise ProxyError(
                f"HAProxy refused to add the servers of new nodes {commands}: {'; '.join(errors)}"
            )
        joined = [node for node in nodes if f"{PROD}/{node.name}" not in listed]
        return [f"added node {node.name} ({node.address}) to the edge's backends" for node in joined]

    @contextlib.contextmanager
    def switching(self, nodes: Sequence[EdgeNode]) -> Iterator[None]:
        """Under the ops lock, with every server's counters banked first: the block re-points servers."""
        with self.ops():
            self.book.bank(self.endpoints(nodes))
            yield

    def repoint(self, nodes: Sequence[EdgeNode], deployed: Sequence[str]) -> list[str]:
        """Point every node server that does not send to its role's environment at it; one line per fix.

        After a deploy creates an environment's service, or when a node's server was left parked.
        """
        roles = self.roles()
        ports = self.role_ports(roles, deployed)
        slots = self.haproxy.slots()
        stale = []
        for role in ROLES:
            for node in nodes:
                slot = slots.get(f"{role}/{node.name}")
                wanted = edge_plans.endpoint(node, ports[role])
                # a server health checks took down still points where it should: only parked ones differ
                parked = slot is None or (not slot.serving and slot.port == PARKED_PORT)
                now = None if parked or slot is None else slot.endpoint
                if slot is not None and now != wanted:
                    stale.append((role, node, wanted))
        if not stale:
            return []
        with self.switching(nodes):
            self.send(switch_commands_for([(role, node.name, wanted) for role, node, wanted in stale]))
        return [
            f"pointed the edge's {role} server of {node.name} at {wanted or 'nothing (parked)'} "
            f"({roles[role]})"
            for role, node, wanted in stale
        ]

    def send(self, commands: list[str]) -> None:
        """Send admin-socket commands on one connection (callers are inside `switching`)."""
        self.haproxy.send(commands)

    def traffic(self, nodes: Sequence[EdgeNode], environment: str) -> TrafficCounters:
        """The environment's cumulative counters over every node's servers pointing at it."""
        with self.ops():
            return self.book.reading(self.endpoints(nodes), environment)

    def stop(self) -> list[str]:
        """Stop the proxy and release its address claims; what was removed."""
        removed = []
        with self.ops():
            if self.haproxy.stop():
                removed.append("edge haproxy")
            with self.claims.lock():
                removed += [f"claim on {address}" for address in self.claims.release(self.dir)]
        return removed

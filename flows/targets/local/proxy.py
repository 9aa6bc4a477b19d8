"""The proxy job: start HAProxy on claimed addresses, know the roles, switch them, weigh a canary.

Every command comes from `plans` and goes through the HAProxy executor; every re-point is
preceded by banking the traffic counters (`ledger`), so an environment's traffic never goes
back. Changes happen under the target's short ops lock, with the state file updated alongside.
What is not about the local layout (two roles, one container each) is kept apart for any proxy
of the project, e.g. a fleet's edge HAProxy whose backends list every node: `start_on_claimed`,
the plans of backends of N servers (`plans.proxy_config`, `switch_commands_for`,
`share_commands`), the executor (`haproxy.HAProxy`) and the ledger (`ledger.TrafficBook`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from flows.config import PipelineConfig
from flows.targets.base import TrafficCounters
from flows.targets.local import plans, replies
from flows.targets.local.claims import ClaimRegistry
from flows.targets.local.errors import LocalTargetError
from flows.targets.local.guards import Claim
from flows.targets.local.haproxy import HAProxy
from flows.targets.local.ledger import TrafficBook
from flows.targets.local.plans import PROD, ROLES, SERVER, Endpoint, ProxyLayout
from flows.targets.local.site import Site
from flows.targets.local.state import LocalState, settle_roles, swapped
from flows.targets.local.traffic import local_endpoints

SOCKET_PATH_MAX = 107  # sun_path, less its terminating NUL


def proxy_layout(config: PipelineConfig) -> ProxyLayout:
    """Where the proxy of this configuration listens and keeps its files."""
    state_dir = config.local.state_dir.absolute()
    socket_path = (config.local.proxy_admin_socket or state_dir / "haproxy.sock").absolute()
    if len(str(socket_path).encode()) > SOCKET_PATH_MAX:
        raise LocalTargetError(
            f"admin socket path {socket_path} is longer than {SOCKET_PATH_MAX} bytes; "
            "set local.proxy_admin_socket to a shorter path"
        )
    return ProxyLayout(
        prod_address=config.prod_address,
        preprod_address=config.preprod_address,
        config_path=state_dir / "haproxy.cfg",
        socket_path=socket_path,
        pid_path=state_dir / "haproxy.pid",
    )


def start_on_claimed(
    haproxy: HAProxy, claims: ClaimRegistry, addresses: Sequence[str], state_dir: Path, config: str
) -> None:
    """Start `haproxy` with `config` on `addresses` only if no other process or state dir holds them.

    Under the claims registry's lock: the addresses are checked (`LocalTargetError` naming the
    holder, before anything starts), the proxy starts, and the addresses are claimed for
    `state_dir` with its pid. Any proxy of the project starts this way (a fleet's edge proxy too).
    """
    with claims.lock():
        problems = claims.address_problems(addresses, state_dir)
        if problems:
            raise LocalTargetError(f"the proxy of {state_dir} cannot start: " + "; ".join(problems))
        haproxy.start(config)
        pid = haproxy.pid()
        since = datetime.now(UTC).isoformat(timespec="seconds")
        if pid is not None:
            for address in addresses:
                claims.write(Claim(address, str(state_dir), pid, since))


class Proxy:
    """The local target's HAProxy: its addresses, the roles it serves, switches and weights."""

    def __init__(self, site: Site, layout: ProxyLayout, haproxy: HAProxy, claims: ClaimRegistry) -> None:
        """`haproxy` runs the commands; `claims` is the host's registry of addresses."""
        self.site = site
        self.layout = layout
        self.haproxy = haproxy
        self.claims = claims
        self.book = TrafficBook(haproxy, site.state_dir / "traffic.json")

    def pid(self) -> int | None:
        """The running proxy's process id, None when it is not running."""
        return self.haproxy.pid()

    def running(self) -> bool:
        """Whether the proxy runs and answers on its admin socket."""
        return self.haproxy.running()

    def addresses(self) -> list[str]:
        """The addresses it serves: prod's, then preprod's."""
        return [self.layout.address(role) for role in ROLES]

    def address_problems(self) -> list[str]:
        """Why this target's proxy could not take its addresses now (empty: it can)."""
        return self.claims.address_problems(self.addresses(), self.site.state_dir)

    def roles(self, state: LocalState) -> dict[str, str]:
        """Role -> environment: the running proxy's truth when it can tell, else the state file."""
        names = self.site.environment_names
        if self.haproxy.running():
            env_ports = {env: (state.current[env].port if env in state.current else None) for env in names}
            live = replies.roles_from_proxy(self.haproxy.servers(), env_ports)
            if live is not None:
                return live
        return settle_roles(state.roles, names)

    def role_ports(self, state: LocalState, roles: Mapping[str, str]) -> dict[str, int | None]:
        """Role -> the port the proxy should send it to: its environment's container, if running."""
        facts = self.site.serving_facts(state)
        ports: dict[str, int | None] = {}
        for role in ROLES:
            env_facts = facts[roles[role]]
            ports[role] = env_facts.port if env_facts is not None and env_facts.state == "running" else None
        return ports

    def ensure(self) -> None:
        """Start the proxy unless it already runs; its servers point at the running environments.

        Refuses (LocalTargetError) addresses another process or state dir holds, before starting
        anything; once started, claims both addresses for this state dir.
        """
        site = self.site
        with site.ops_lock():
            if self.haproxy.running():
                return
            state = site.state.read()
            roles = settle_roles(state.roles, site.environment_names)
            ports = self.role_ports(state, roles)
            start_on_claimed(
                self.haproxy,
                self.claims,
                self.addresses(),
                site.state_dir,
                plans.haproxy_config(self.layout, ports),
            )
            with site.state.update() as changed:
                changed.roles = roles
        for role in ROLES:
            site.log.add(roles[role], f"proxy started: holds {role} address {self.layout.address(role)}")

    @staticmethod
    def endpoints(state: LocalState) -> dict[str, list[Endpoint]]:
        """Where each environment's serving container answers (its published port)."""
        return local_endpoints({env: serving.port for env, serving in state.current.items()})

    def bank(self, state: LocalState) -> None:
        """Credit every server's counters to the environment whose container it points at now."""
        self.book.bank(self.endpoints(state))

    def switch(self, state: LocalState, commands: list[str]) -> None:
        """Re-point servers: bank their counters, then send `commands` in one line. Under the ops lock."""
        self.bank(state)
        self.haproxy.send(commands)

    def swap(self, first: str, second: str) -> None:
        """Exchange the addresses of the two environments with one admin-socket call."""
        site = self.site
        for env in (first, second):
            site.check_environment(env)
        if first == second:
            raise LocalTargetError(f"cannot swap {first!r} with itself")
        self.ensure()
        with site.ops_lock():
            state = site.state.read()
            new_roles = swapped(self.roles(state))
            ports = self.role_ports(state, new_roles)
            self.switch(state, plans.switch_commands(ports))
            with site.state.update() as changed:
                changed.roles = new_roles
        for role in ROLES:
            site.log.add(new_roles[role], f"swapped: now holds {role} address {self.layout.address(role)}")
        if ports[PROD] is None:
            site.log.add(
                new_roles[PROD], "holds the prod address with nothing running: prod answers 503", "WARN"
            )

    def repoint_stale(self) -> list[str]:
        """Re-point the running proxy's servers that do not send to their environment's running container."""
        site = self.site
        with site.ops_lock():
            state = site.state.read()
            roles = self.roles(state)
            wanted = self.role_ports(state, roles)
            slots = self.haproxy.slots()
            stale = {}
            for role, port in wanted.items():
                slot = slots.get(f"{role}/{SERVER}")
                if slot is None or (slot.port if slot.serving else None) != port:
                    stale[role] = port
            if not stale:
                return []
            self.switch(state, plans.switch_commands(stale))
        lines = []
        for role, port in stale.items():
            to = f"127.0.0.1:{port}" if port is not None else "nothing (503)"
            line = (
                f"re-pointed the proxy's {role} address {self.layout.address(role)} at {roles[role]} on {to}"
            )
            site.log.add(roles[role], line, "WARN")
            lines.append(line)
        return lines

    def traffic(self, environment: str) -> TrafficCounters:
        """HAProxy's cumulative counters of the servers pointing at `environment`'s container (see
        `LocalTarget.traffic`)."""
        self.site.check_environment(environment)
        with self.site.ops_lock():
            return self.book.reading(self.endpoints(self.site.state.read()), environment)

    def set_share(self, environment: str, percent: int) -> None:
        """Send `percent` of prod's requests to `environment`'s container (0 ends the canary)."""
        site = self.site
        site.check_environment(environment)
        if not 0 <= percent <= plans.FULL_WEIGHT:
            raise LocalTargetError(f"a traffic share is a percentage, 0..100; got {percent}")
        with site.ops_lock():
            if not self.haproxy.running():
                raise LocalTargetError(
                    f"the proxy of {site.state_dir} is not running: deploy a version before a canary"
                )
            state = site.state.read()
            port: int | None = None
            if percent > 0:
                serving = state.current.get(environment)
                if serving is None:
                    raise LocalTargetError(
                        f"{environment} runs no container: deploy a version into it before sending it traffic"
                    )
                port = serving.port
            self.switch(state, plans.canary_commands(port, percent))
        if percent:
            site.log.add(environment, f"canary: {percent}% of prod's requests go to {environment}")
        else:
            site.log.add(environment, f"canary ended: all of prod's requests go to prod's {SERVER} server")

    def stop(self) -> list[str]:
        """Stop the proxy and release its claims; what was removed. Callers hold the ops lock and
        banked the counters (`bank`) before anything it served went away."""
        removed = []
        if self.haproxy.stop():
            removed.append("haproxy")
        with self.claims.lock():
            removed += [f"claim on {address}" for address in self.claims.release(self.site.state_dir)]
        return removed

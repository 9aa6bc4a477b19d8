"""The Docker Swarm target: blue/green across every node of a swarm, behind one HAProxy edge.

Each environment is a global, host-networked Swarm service on its own port (`services`); the
manager schedules, restarts, reschedules and rolls back, the target only posts specs and judges
facts (`engine`, `decisions`). The edge (`edge`) holds the prod and preprod addresses, one
checked server per node in each backend; a swap re-points both backends in one admin-socket
line. A registered version is pinned by digest at the address the nodes pull from, so every
node runs the same bits. The release lock lives in the swarm (`lock`), so pipelines on two
machines never release to one swarm at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from flows.clock import SYSTEM_CLOCK, Clock
from flows.config import PipelineConfig
from flows.targets.base import Environment, LockHolder, Log, TargetEvent, TrafficCounters
from flows.targets.local.haproxy import haproxy_installed
from flows.targets.local.plans import PROD
from flows.targets.local.state import EventLog, swapped
from flows.targets.swarm import decisions, edge_plans, events, rollout, services
from flows.targets.swarm.decisions import NodeFacts
from flows.targets.swarm.edge import SwarmEdge
from flows.targets.swarm.edge_plans import EdgeNode
from flows.targets.swarm.engine import SwarmEngine, SwarmError
from flows.targets.swarm.lock import SwarmLockStore, SwarmReleaseLock
from flows.targets.swarm.retention import FleetRetention
from flows.targets.swarm.settings import STORE_CONFIG
from flows.targets.swarm.versions import VersionBook
from flows.targets.swarm.waves import WavesError, wave_sizes

__all__ = ["SwarmError", "SwarmTarget"]

SETTLE_ON_ERROR_S = 5.0  # how long a release that failed or was stopped waits for its retention


class SwarmTarget:
    """The `Target` protocol on a Docker Swarm manager and a HAProxy edge on this host."""

    name = "swarm"

    def __init__(
        self, config: PipelineConfig, engine: SwarmEngine | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        """`engine`: the manager's API (default: `swarm.manager`)."""
        if len(config.environments) != 2 or config.environments[0] == config.environments[1]:
            raise SwarmError(f"two distinct environments are needed, got {config.environments}")
        self.config = config
        self.settings = config.swarm
        self.environment_names = tuple(config.environments)
        self.env_ports = dict(zip(self.environment_names, self.settings.ports, strict=True))
        self.engine = engine or SwarmEngine(self.settings.manager)
        self.clock = clock
        self.state_dir = self.settings.state_dir.absolute()
        addresses = {PROD: config.prod_address, "preprod": config.preprod_address}
        self.edge = SwarmEdge(
            self.state_dir, addresses, self.environment_names, self.env_ports, self.settings.health_path
        )
        self.versions = VersionBook(self.state_dir / "edge" / "versions.json", self.settings.registry)
        self.log = EventLog(self.state_dir / "edge")
        service_names = [self._service_name(env) for env in self.environment_names]
        self.retention = FleetRetention(self.settings, self.versions, service_names, self.log.add)

    # --- facts ------------------------------------------------------------------------------

    def _service_name(self, environment: str) -> str:
        return services.service_name(self.config.application, environment)

    def _check_environment(self, environment: str) -> None:
        if environment not in self.environment_names:
            raise SwarmError(
                f"unknown environment {environment!r}; this target has {', '.join(self.environment_names)}"
            )

    def _owned_service(self, environment: str) -> decisions.ServiceFacts | None:
        """The environment's service, refusing one of that name this target did not create."""
        service = self.engine.service(self._service_name(environment))
        if service is not None and not services.owned(service.labels, self.config.application, environment):
            raise SwarmError(
                f"service {service.name} exists but was not created by this target (no "
                f"{services.LABEL_OWNER}={services.OWNER} label): it is never taken over; remove or "
                "rename it, or give this application another name"
            )
        return service

    def _edge_nodes(self, nodes: list[NodeFacts]) -> list[EdgeNode]:
        return [EdgeNode(node.hostname, node.address) for node in sorted(nodes, key=lambda n: n.hostname)]

    def _deployed(self) -> list[str]:
        return [env for env in self.environment_names if self._owned_service(env) is not None]

    def _answers(self, nodes: list[NodeFacts], port: int) -> dict[str, str | None]:
        """Node id -> the version its `/health` on `port` reports; every up node asked at once."""
        from flows.release.health import fetch_health

        up = decisions.up_nodes(nodes)
        if not up:
            return {}
        with ThreadPoolExecutor(max_workers=len(up), thread_name_prefix="swarm-health") as pool:
            reports = pool.map(lambda node: fetch_health(f"http://{node.address}:{port}", timeout=2), up)
            return {node.id: report.version for node, report in zip(up, reports, strict=True)}

    # --- the Target protocol ------------------------------------------------------------------

    def environments(self) -> list[Environment]:
        """Both environments: the edge address each holds, and what every node runs and serves."""
        nodes = self.engine.nodes()
        role_of = {env: role for role, env in self.edge.roles().items()}
        found = []
        for env in self.environment_names:
            service = self._owned_service(env)
            tasks = self.engine.tasks(service) if service is not None else []
            answers = self._answers(nodes, self.env_ports[env]) if service is not None else {}
            state = decisions.environment_state(service, tasks, nodes, answers, self.settings.min_nodes)
            details = {
                "serving": list(state.serving),
                "lagging": list(state.lagging),
                "port": self.env_ports[env],
            }
            found.append(
                Environment(
                    env, self.edge.addresses[role_of[env]], state.version, state.status, state.health, details
                )
            )
        return found

    def url(self, address: str) -> str:
        """`http://<address>`: the edge serves both addresses."""
        return f"http://{address}"

    def register_version(self, version: str, bundle: dict[str, Any]) -> None:
        """Pin the bundle's image by its registry digest, at the address the nodes pull from; idempotent."""
        self.versions.register(version, bundle)

    def deploy(self, environment: str, version: str) -> None:
        """Update (or create) the environment's service to `version`; Swarm rolls it out on every node.

        Then, in the background (see `settle`), images beyond the last `keep_releases` deployed
        versions leave every node (`retention`).
        """
        self._check_environment(environment)
        image = self.versions.pinned(version)
        if image is None:
            raise SwarmError(f"version {version} is not registered; call register_version first")
        if not self.settle():
            raise SwarmError(
                "the previous deploy's image retention is still running on the nodes; look at the "
                "nodes' engines (`deliverypipeline swarm status`) and deploy again"
            )
        service = self._owned_service(environment)
        for line in self.edge.ensure(self._edge_nodes(self.engine.nodes()), self._deployed()):
            self.log.add(environment, line)
        store = services.store_config(self.config.application, self._store_text())
        config_id = self.engine.ensure_config(store, {services.LABEL_APP: self.config.application})
        spec = services.service_spec(
            application=self.config.application,
            environment=environment,
            version=version,
            image=image,
            port=self.env_ports[environment],
            health_path=self.settings.health_path,
            store=store,
            store_config_id=config_id,
        )
        if service is None:
            self.engine.create_service(spec)
        else:
            self.engine.update_service(service, spec)
        self.versions.deployed(version)
        self.edge.repoint(self._edge_nodes(self.engine.nodes()), self._deployed())
        self.retention.start(environment)

    def settle(self, deadline: float | None = None) -> bool:
        """Wait for the last deploy's background retention; False if it outlasts `deadline` s."""
        return self.retention.settle(deadline)

    def _store_text(self) -> str:
        """The store configuration of every task: `swarm.store_config`, the lab's, or SQLite per node."""
        path = self.settings.store_config or self.state_dir / STORE_CONFIG
        if self.settings.store_config is not None and not path.is_file():
            raise SwarmError(f"swarm.store_config {path} does not exist; create it or unset it")
        return path.read_text() if path.is_file() else services.default_store_text()

    def swap(self, first: str, second: str) -> None:
        """Exchange the addresses: every node's server of both backends re-pointed in one line.

        With `swarm.waves`, prod first moves wave by wave, each judged (see `rollout`); a rejected
        wave puts back every node moved and raises `WaveRejected`.
        """
        for env in (first, second):
            self._check_environment(env)
        if first == second:
            raise SwarmError(f"cannot swap {first!r} with itself")
        all_nodes = self.engine.nodes()
        nodes = self._edge_nodes(all_nodes)
        deployed = self._deployed()
        for line in self.edge.ensure(nodes, deployed):
            self.log.add(first, line)
        roles = self.edge.roles()
        new_roles = swapped(roles)
        if self.settings.waves and all(env in deployed for env in new_roles.values()):
            self._move_in_waves(all_nodes, nodes, new_roles[PROD], roles[PROD])
        ports = self.edge.role_ports(new_roles, deployed)
        with self.edge.switching(nodes):
            self.edge.send(edge_plans.swap_commands(nodes, ports))
            self.edge.save_roles(new_roles)
        self.log.add(
            new_roles[PROD], f"swapped: now holds prod {self.edge.addresses[PROD]} on {len(nodes)} node(s)"
        )

    def _move_in_waves(self, all_nodes: list[NodeFacts], nodes: list[EdgeNode], new: str, old: str) -> None:
        up = self._edge_nodes(decisions.up_nodes(all_nodes))
        try:
            sizes = wave_sizes(self.settings.waves, len(up))
        except WavesError as exc:
            raise SwarmError(f"swarm.waves: {exc}") from exc
        waves = rollout.plan_waves(
            up,
            sizes,
            self.env_ports[new],
            self.env_ports[old],
            self.config.analysis,
            self.config.deadlines.poll_s,
        )

        def send(commands: list[str]) -> None:
            with self.edge.switching(nodes):
                self.edge.send(commands)

        rollout.move_in_waves(
            waves,
            lambda: self.edge.traffic(nodes, new),
            send,
            lambda line: self.log.add(new, line),
            self.clock,
        )

    def events(self, environment: str, since: datetime) -> list[TargetEvent]:
        """Task failures on each node, its update state, the edge's log; after `since`, oldest first."""
        self._check_environment(environment)
        service = self._owned_service(environment)
        found = self.log.read(environment, since)
        if service is not None:
            hostnames = {node.id: node.hostname for node in self.engine.nodes()}
            found += events.service_events(environment, service, self.engine.tasks(service), hostnames, since)
        return sorted(found, key=lambda event: event.time)

    def preflight(self) -> list[str]:
        """What would stop a release (empty: ready): a manager, every node up, our services, the edge."""
        problem = self.engine.manager_problem()
        if problem is not None:
            return [problem]
        nodes = self.engine.nodes()
        problems = decisions.preflight_problems(nodes, self.settings.min_nodes)
        try:
            wave_sizes(self.settings.waves, len(decisions.up_nodes(nodes)) or 1)
        except WavesError as exc:
            problems.append(f"swarm.waves: {exc}")
        for env in self.environment_names:
            try:
                self._owned_service(env)
            except SwarmError as exc:
                problems.append(str(exc))
        if not haproxy_installed(self.edge.haproxy.binary):
            problems.append(
                f"haproxy not installed ({self.edge.haproxy.binary}): run `bash scripts/setup-host.sh`"
            )
        elif not self.edge.running():
            problems += self.edge.claims.address_problems(list(self.edge.addresses.values()), self.edge.dir)
        return problems

    def reconcile(self) -> list[str]:
        """The edge runs again after a host restart, lists every node of the swarm (one that joined
        since gets its servers), and every server points at its role's environment (a release
        killed mid-wave left some prod servers on the new one). Swarm restarts tasks and catches
        nodes up itself."""
        nodes = self._edge_nodes(self.engine.nodes())
        deployed = self._deployed()
        return self.edge.ensure(nodes, deployed) + self.edge.repoint(nodes, deployed)

    def lock(
        self, holder: LockHolder, wait_s: float, log: Log
    ) -> contextlib.AbstractContextManager[LockHolder | None]:
        """Hold the swarm's release lock (a Swarm config's labels, leased) for the block."""
        return self._locked(holder, wait_s, log)

    @contextlib.contextmanager
    def _locked(self, holder: LockHolder, wait_s: float, log: Log) -> Iterator[LockHolder | None]:
        engine = SwarmEngine(self.settings.manager)  # its own connection: the renewal runs in a thread
        lock = SwarmReleaseLock(
            SwarmLockStore(engine, self.config.application),
            lease_s=self.settings.lock_lease,
            renew_s=self.settings.lock_renew,
            skew_s=self.settings.lock_clock_skew,
            poll_s=self.config.deadlines.poll_s,
            clock=self.clock,
        )
        try:
            with lock.hold(holder, wait_s, log) as held:
                try:
                    yield held.interrupted
                except BaseException:
                    # a failed or stopped run lets the lock go soon: its recovery may be waiting
                    self.settle(SETTLE_ON_ERROR_S)
                    raise
                if not self.settle():  # the next holder does not race this one's retention
                    log("the image retention on the nodes outlasted its deadline; letting the lock go")
        finally:
            engine.close()

    def traffic(self, environment: str) -> TrafficCounters:
        """The edge's counters of every node's servers pointing at the environment (all clients)."""
        self._check_environment(environment)
        return self.edge.traffic(self._edge_nodes(self.engine.nodes()), environment)

    @property
    def supports_canary(self) -> bool:
        """True: prod's backend has a canary server per node."""
        return True

    def set_traffic_share(self, environment: str, percent: int) -> None:
        """Send `percent` of prod's requests to `environment` on every node (0 ends the canary)."""
        self._check_environment(environment)
        if not 0 <= percent <= 100:
            raise SwarmError(f"a traffic share is a percentage, 0..100; got {percent}")
        nodes = self._edge_nodes(self.engine.nodes())
        if not self.edge.running():
            if percent == 0:
                return
            raise SwarmError("the edge proxy is not running: deploy a version before a canary")
        port = self.env_ports[environment] if percent > 0 else None
        with self.edge.switching(nodes):
            self.edge.send(edge_plans.canary_share_commands(nodes, port, percent))

    def down(self) -> list[str]:
        """Remove this target's services and the edge proxy (the CLI's teardown)."""
        self.settle()
        removed = []
        for env in self.environment_names:
            service = self._owned_service(env)
            if service is not None:
                with self.engine._calling(f"removing service {service.name}"):
                    self.engine.client.api.remove_service(service.id)
                removed.append(f"service {service.name}")
        return removed + self.edge.stop()

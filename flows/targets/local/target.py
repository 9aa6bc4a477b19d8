"""The local Docker target: two environments as containers behind HAProxy on 127.0.0.1.

Behaves like the seed's two Elastic Beanstalk environments: each environment holds one address
(prod or preprod) and runs one version; `deploy` replaces an environment's container without a
failed request (start, wait healthy, re-point its backend, retire the old one); `swap` exchanges
the two addresses in one admin-socket call. Plans come from `plans`, `guards` and `traffic`,
I/O from `executor`.

Empty target: before any release, the first configured environment holds prod and the second
preprod, both Missing. A release deploys into preprod and swaps; the environment left holding
preprod stays Missing (its backend answers 503) until the next release deploys into it. A swap
is always a plain exchange, as Elastic Beanstalk's CNAME swap is: swapping back after a failed
first release puts the empty environment on prod again (503, as before that release), with a
WARN event; the release steps only swap forward onto a verified preprod.

The target holds the truth: a release holds `<state_dir>/release.lock` (`lock`); a proxy starts
only on addresses no other process or state dir holds (bind test + the host's claims registry);
containers carry the target's identity (a hash of the state dir) in their labels and names, so
each deploy first removes this target's orphans; after a deploy, images beyond the last
`keep_releases` releases leave the engine and the registry. `traffic` reads HAProxy's own
per-server counters, `set_traffic_share` splits prod between `app` and a `canary` server.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.config import PipelineConfig
from flows.targets.base import Environment, LockHolder, Log, TargetEvent, TrafficCounters
from flows.targets.local import guards, plans, traffic
from flows.targets.local.errors import LocalTargetError
from flows.targets.local.executor import (
    ClaimRegistry,
    ContainerError,
    Docker,
    HAProxy,
    ReleaseLock,
    address_bindable,
    haproxy_installed,
    prepare_data_dir,
)
from flows.targets.local.guards import Claim
from flows.targets.local.plans import CANARY, PROD, ROLES, SERVER, ProxyLayout
from flows.targets.local.state import (
    EventLog,
    LocalState,
    Serving,
    StateFile,
    UpdateMark,
    file_lock,
    live_marks,
    pid_alive,
    settle_roles,
    swapped,
)
from flows.targets.local.status import ContainerFacts, environment_report

__all__ = ["LocalTarget", "LocalTargetError", "proxy_layout"]

SOCKET_PATH_MAX = 107  # sun_path, less its terminating NUL
RUN_ENV_VARS = ("DELIVERYPIPELINE_RUN", "PREFECT__FLOW_RUN_ID")  # where the run id comes from


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


class LocalTarget:
    """The `Target` protocol on the local Docker engine and a HAProxy host process."""

    name = "local"

    def __init__(
        self,
        config: PipelineConfig,
        client: Any | None = None,
        extra_labels: Mapping[str, str] | None = None,
        run: str | None = None,
        claims: ClaimRegistry | None = None,
    ) -> None:
        """`client`: a Docker SDK client (default: from the environment).

        `extra_labels` go on every container (tests label theirs to remove exactly those).
        `run`: the flow run's id or name, put on the containers' `deliverypipeline.run` label
        (default: $DELIVERYPIPELINE_RUN, else $PREFECT__FLOW_RUN_ID, else "unknown").
        `claims`: the host's address claims (default: /run/deliverypipeline/claims).
        """
        if len(config.environments) != 2 or config.environments[0] == config.environments[1]:
            raise LocalTargetError(f"two distinct environments are needed, got {config.environments}")
        self.config = config
        self.environment_names = tuple(config.environments)
        self.state_dir = config.local.state_dir.absolute()
        self.layout = proxy_layout(config)
        self.proxy = HAProxy(self.layout)
        self.state = StateFile(self.state_dir)
        self.log = EventLog(self.state_dir)
        self.extra_labels = dict(extra_labels or {})
        self.identity = guards.target_identity(self.state_dir)
        self.run = run or next((os.environ[v] for v in RUN_ENV_VARS if os.environ.get(v)), "unknown")
        self.claims = claims or ClaimRegistry()
        self.release_lock = ReleaseLock(self.state_dir / "release.lock")
        self.traffic_path = self.state_dir / "traffic.json"
        self._client = client
        self._docker: Docker | None = None
        self._cleanups: list[threading.Thread] = []

    # --- plumbing -------------------------------------------------------------------------

    @property
    def docker(self) -> Docker:
        """The Docker executor, connecting on first use."""
        if self._docker is None:
            client = self._client
            if client is None:
                import docker

                try:
                    client = docker.from_env()
                    client.ping()
                except Exception as exc:  # the SDK raises several types for "no engine"
                    raise LocalTargetError(
                        f"Docker engine not reachable ({exc}); run `bash scripts/setup-host.sh`"
                    ) from exc
            self._docker = Docker(client)
        return self._docker

    def _ops_lock(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.state_dir / "ops.lock")

    def _labels(self) -> dict[str, str]:
        """The labels every container of this target carries (and is found by)."""
        return {
            plans.LABEL_APP: self.config.application,
            plans.LABEL_TARGET: self.identity,
            **self.extra_labels,
        }

    def _check_environment(self, environment: str) -> None:
        if environment not in self.environment_names:
            raise LocalTargetError(
                f"unknown environment {environment!r}; this target has {', '.join(self.environment_names)}"
            )

    def _serving_facts(self, state: LocalState) -> dict[str, ContainerFacts | None]:
        facts: dict[str, ContainerFacts | None] = {}
        for env in self.environment_names:
            serving = state.current.get(env)
            facts[env] = self.docker.facts(serving.container) if serving else None
        return facts

    def _role_ports(self, state: LocalState, roles: Mapping[str, str]) -> dict[str, int | None]:
        """Role -> the port the proxy should send it to: its environment's container, if running."""
        facts = self._serving_facts(state)
        ports: dict[str, int | None] = {}
        for role in ROLES:
            env_facts = facts[roles[role]]
            running = env_facts is not None and env_facts.state == "running"
            ports[role] = env_facts.port if running and env_facts is not None else None
        return ports

    def _roles(self, state: LocalState) -> dict[str, str]:
        """Role -> environment: the running proxy's truth when it can tell, else the state file."""
        roles = settle_roles(state.roles, self.environment_names)
        if self.proxy.running():
            env_ports = {
                env: (state.current[env].port if env in state.current else None)
                for env in self.environment_names
            }
            live = plans.roles_from_proxy(self.proxy.servers(), env_ports)
            if live is not None:
                return live
        return roles

    def store_config_path(self) -> Path:
        """The store configuration both environments mount; the default SQLite one is generated."""
        if self.config.local.store_config is not None:
            path = self.config.local.store_config.absolute()
            if not path.is_file():
                raise LocalTargetError(f"local.store_config {path} does not exist; create it or unset it")
            return path
        path = self.state_dir / "store" / "application.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = plans.store_config_text()
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            path.chmod(0o644)
        return path

    # --- the proxy ------------------------------------------------------------------------

    def address_problems(self) -> list[str]:
        """Why this target's proxy could not take its addresses now (empty: it can).

        A bind test per address; an address that cannot be bound is explained from the claims
        registry: another state dir's HAProxy (and how to stop it), or a foreign process.
        """
        problem = guards.distinct_addresses_problem(self.layout.prod_address, self.layout.preprod_address)
        if problem is not None:
            return [problem]
        problems = []
        for role in ROLES:
            address = self.layout.address(role)
            claim = self.claims.read(address)
            found = guards.address_problem(
                address, address_bindable(address), claim, self.claims.alive(claim), self.state_dir
            )
            if found is not None:
                problems.append(found)
        return problems

    def ensure_proxy(self) -> None:
        """Start the proxy unless it already runs; its servers point at the running environments.

        Refuses (LocalTargetError) addresses another process or state dir holds, before starting
        anything; once started, claims both addresses for this state dir.
        """
        with self._ops_lock():
            if self.proxy.running():
                return
            state = self.state.read()
            roles = settle_roles(state.roles, self.environment_names)
            ports = self._role_ports(state, roles)
            with self.claims.lock():
                problems = self.address_problems()
                if problems:
                    raise LocalTargetError(
                        f"the proxy of {self.state_dir} cannot start: " + "; ".join(problems)
                    )
                self.proxy.start(plans.haproxy_config(self.layout, ports))
                pid = self.proxy.pid()
                since = datetime.now(UTC).isoformat(timespec="seconds")
                for role in ROLES:
                    if pid is not None:
                        self.claims.write(Claim(self.layout.address(role), str(self.state_dir), pid, since))
            with self.state.update() as changed:
                changed.roles = roles
            for role in ROLES:
                self.log.add(roles[role], f"proxy started: holds {role} address {self.layout.address(role)}")

    # --- the Target protocol --------------------------------------------------------------

    def environments(self) -> list[Environment]:
        """Both environments: address held, version, status and health of the serving container."""
        state = self.state.read()
        roles = self._roles(state)
        facts = self._serving_facts(state)
        alive = {mark.pid for mark in state.updating.values() if pid_alive(mark.pid)}
        marks = live_marks(state.updating, alive)
        role_of = {env: role for role, env in roles.items()}
        return [
            environment_report(
                env,
                self.layout.address(role_of[env]),
                facts[env],
                marks[env].version if env in marks else None,
            )
            for env in self.environment_names
        ]

    def url(self, address: str) -> str:
        """`http://<address>`: the proxy serves both addresses on 127.0.0.1."""
        return f"http://{address}"

    def register_version(self, version: str, bundle: dict[str, Any]) -> None:
        """Remember the image and port of a rendered Dockerrun.aws.json; idempotent."""
        registration = plans.registration_from_bundle(version, bundle)
        with self.state.update() as state:
            state.versions[version] = registration

    def deploy(self, environment: str, version: str) -> None:
        """Replace an environment's container with one of `version`, without failing a request.

        Blocks until the new container serves: remove this target's orphans, start the new
        container, wait for Docker's health (deadline `ready`), point the environment's backend
        (and a canary on the old container) at it. On failure the old container keeps serving.
        Then, in the background (off the release's path; see `settle`), the old container is
        retired after a drain period with a stop grace, and images beyond the last
        `keep_releases` releases are pruned (a failure in either is a WARN event).
        """
        self._check_environment(environment)
        if not self.settle():  # the previous deploy's clean-up, so it cannot race this one
            raise LocalTargetError(
                "the previous deploy's clean-up (retiring its replaced container, pruning images) "
                "is still running; look at the engine (`docker ps`, `docker info`) and deploy again"
            )
        registration = self.state.read().versions.get(version)
        if registration is None:
            raise LocalTargetError(f"version {version} is not registered; call register_version first")
        self.ensure_proxy()
        store_config = self.store_config_path()
        data_dir = self.state_dir / "data"
        prepare_data_dir(data_dir)
        with self.state.update() as state:
            state.updating[environment] = UpdateMark(version, os.getpid(), datetime.now(UTC).isoformat())
        self.log.add(environment, f"deploying version {version}")
        try:
            retired = self._deploy(environment, version, registration, store_config, data_dir)
        finally:
            with self.state.update() as state:
                state.updating.pop(environment, None)
        with self.state.update() as state:
            state.releases = guards.touched(state.releases, version)
            # marks of processes that died draining are dropped: their containers are orphans now
            state.retiring = {name: pid for name, pid in state.retiring.items() if pid_alive(pid)}
            if retired is not None:  # not an orphan while this process drains it
                state.retiring[retired.container] = os.getpid()
        self._in_background(environment, lambda: self._retire_and_prune(environment, retired))

    def _deploy(
        self,
        environment: str,
        version: str,
        registration: plans.Registration,
        store_config: Path,
        data_dir: Path,
    ) -> Serving | None:
        """Start, wait healthy, point the backend; the container it replaced (to retire), if any."""
        self.remove_orphans(environment)
        existing = self.docker.find(self._labels())
        name = plans.container_name(
            f"{self.config.application}-{self.identity}", environment, version, [c.name for c in existing]
        )
        spec = plans.run_spec(
            application=self.config.application,
            environment=environment,
            version=version,
            registration=registration,
            name=name,
            store_config=store_config,
            data_dir=data_dir,
            state_dir=self.state_dir,
            health_path=self.config.local.health_path,
            extra_labels={plans.LABEL_TARGET: self.identity, plans.LABEL_RUN: self.run, **self.extra_labels},
        )
        started = self.docker.start(spec)
        self.log.add(environment, f"created container {name} from {spec.image} on 127.0.0.1:{started.port}")
        try:
            healthy = self.docker.wait_healthy(name, self.config.deadlines.ready)
        except ContainerError as exc:
            self.log.add(environment, f"unhealthy: {exc}", "ERROR")
            self.docker.retire(name, grace=1)
            self.log.add(environment, f"retired container {name}")
            raise
        if healthy.port is None:
            raise ContainerError(f"container {name} publishes no port on 127.0.0.1")
        self.log.add(environment, f"container {name} healthy")
        with self._ops_lock():
            state = self.state.read()
            roles = self._roles(state)
            role = next(r for r, env in roles.items() if env == environment)
            old = state.current.get(environment)
            commands = plans.point_commands(role, healthy.port)
            canary = self.proxy.slots().get(f"{PROD}/{CANARY}")
            if canary is not None and canary.weight > 0 and old is not None and canary.port == old.port:
                commands.insert(0, f"set server {PROD}/{CANARY} addr 127.0.0.1 port {healthy.port}")
            self._bank(state)
            self.proxy.send(commands)
            with self.state.update() as changed:
                changed.current[environment] = Serving(name, healthy.port, version)
                changed.roles = roles
        self.log.add(environment, f"version {version} serves {self.layout.address(role)} from {name}")
        return old if old is not None and old.container != name else None

    def _retire_and_prune(self, environment: str, old: Serving | None) -> None:
        """After a deploy: drain and retire the container the backend left, then prune old images.

        Runs in its own thread with its own engine connection (see `_background_docker`).
        """
        docker = self._background_docker()
        try:
            if old is not None:
                self._retire(environment, old, docker)
            self.prune(environment, docker)
        finally:
            if docker is not self._docker:
                docker.client.close()

    def _retire(self, environment: str, old: Serving, docker: Docker) -> None:
        """Drain, then stop and remove the container a deploy replaced; a failure is a WARN event."""
        settings = self.config.local
        time.sleep(settings.drain_seconds)
        try:
            if docker.retire(old.container, settings.stop_grace):
                self.log.add(environment, f"retired container {old.container} (version {old.version})")
        except ContainerError as exc:
            self.log.add(
                environment,
                f"could not retire container {old.container} ({exc}); no backend points at it, "
                "so the next release removes it as an orphan",
                "WARN",
            )
        finally:
            with self.state.update() as state:
                state.retiring.pop(old.container, None)

    def _background_docker(self) -> Docker:
        """An engine connection for the background thread: the SDK's client is not shared between
        threads (an injected client, the tests', is used as it is)."""
        if self._client is not None:
            return self.docker
        import docker

        return Docker(docker.from_env())

    def _in_background(self, environment: str, work: Callable[[], None]) -> None:
        """Run `work` in a thread that `settle` (and the release lock's exit) waits for.

        Clean-up must not fail a release that already serves: what escapes `work` is a WARN event.
        """

        def guarded() -> None:
            try:
                work()
            except Exception as exc:
                self.log.add(environment, f"clean-up after the deploy failed: {exc}", "WARN")

        self._cleanups = [thread for thread in self._cleanups if thread.is_alive()]
        thread = threading.Thread(target=guarded, name=f"deliverypipeline-retire-{environment}")
        self._cleanups.append(thread)
        thread.start()

    def settle(self, deadline: float | None = None) -> bool:
        """Wait for the background work of this target's deploys; False if it outlasts `deadline`.

        That work is retiring the replaced containers and pruning images. The default deadline is
        the stop grace (a container that ignores SIGTERM is killed at its end), plus the drain,
        plus a minute for pruning.
        """
        settings = self.config.local
        limit = deadline if deadline is not None else settings.stop_grace + settings.drain_seconds + 60
        ends = time.monotonic() + limit
        for thread in self._cleanups:
            thread.join(max(0.0, ends - time.monotonic()))
        self._cleanups = [thread for thread in self._cleanups if thread.is_alive()]
        return not self._cleanups

    def orphans(self, deploying: str | None = None) -> list[ContainerFacts]:
        """This target's containers no environment points at (left by a killed or failed deploy).

        Spares the serving containers, any container a proxy server points at, and the containers
        of environments a live process is deploying (other than `deploying`, the caller's own).
        """
        state = self.state.read()
        proxied = {slot.port for slot in self.proxy.slots().values()} if self.proxy.running() else set()
        busy = {env for env, mark in state.updating.items() if env != deploying and pid_alive(mark.pid)}
        serving = {serving.container for serving in state.current.values()}
        serving |= {name for name, pid in state.retiring.items() if pid_alive(pid)}
        return guards.orphans(self.docker.find(self._labels()), serving, proxied, busy)

    def remove_orphans(self, environment: str | None = None) -> list[str]:
        """Remove this target's orphans (see `orphans`); `environment`: the one the caller deploys into."""
        removed = []
        for facts in self.orphans(deploying=environment):
            if self.docker.retire(facts.name, grace=1):
                removed.append(facts.name)
                self.log.add(
                    facts.environment or environment or self.environment_names[0],
                    f"removed orphan container {facts.name} (version {facts.version}): "
                    "no environment pointed at it",
                    "WARN",
                )
        return removed

    def reconcile(self) -> list[str]:
        """Bring the target back to what its state says after a crash or a restart; one line per repair.

        Serving containers that stopped (the engine or the host restarted) start again, the proxy
        runs and points at what serves (see `restore_serving`); then the containers killed deploys
        left, that no environment points at, are removed (see `orphans`).
        """
        repairs = self.restore_serving()
        return repairs + [
            f"removed orphan container {name}: no environment pointed at it" for name in self.remove_orphans()
        ]

    def restore_serving(self) -> list[str]:
        """Start the stopped serving containers again and point a running proxy at them; one line each.

        After the engine or the host restarted, the containers are stopped and the proxy is gone:
        users get nothing until this runs. A container that cannot start again is a WARN line
        (the release replaces it); the proxy starts once something is deployed.
        """
        repairs = [self._start_again(env) for env in self.environment_names]
        found = [line for line in repairs if line is not None]
        if not self.state.read().current:
            return found
        if not self.proxy.running():
            self.ensure_proxy()
            layout = self.layout
            return [*found, f"started the proxy on {layout.prod_address} and {layout.preprod_address}"]
        return found + self._point_proxy_at_serving()

    def _start_again(self, environment: str) -> str | None:
        """Start an environment's stopped serving container again; what was done, None if nothing."""
        serving = self.state.read().current.get(environment)
        facts = self.docker.facts(serving.container) if serving is not None else None
        if serving is None or facts is None or facts.state == "running":
            return None
        try:
            started = self.docker.start_again(serving.container, self.config.deadlines.ready)
        except ContainerError as exc:
            name = serving.container
            line = f"the stopped container {name} did not start again ({exc}); a release replaces it"
            self.log.add(environment, line, "WARN")
            return line
        with self._ops_lock():
            state = self.state.read()
            roles = self._roles(state)  # read while the state still has the ports the proxy knows
            self._bank(state)
            with self.state.update() as changed:
                port = started.port or serving.port
                changed.current[environment] = Serving(serving.container, port, serving.version)
                changed.roles = roles
        line = (
            f"started again the stopped container {serving.container} (version {serving.version}, "
            f"{facts.state} since the engine or host restarted): healthy on 127.0.0.1:{started.port}"
        )
        self.log.add(environment, line, "WARN")
        return line

    def _point_proxy_at_serving(self) -> list[str]:
        """Re-point the running proxy's servers that do not send to their environment's running container."""
        with self._ops_lock():
            state = self.state.read()
            roles = self._roles(state)
            wanted = self._role_ports(state, roles)
            slots = self.proxy.slots()
            stale = {}
            for role, port in wanted.items():
                slot = slots.get(f"{role}/{SERVER}")
                if slot is None or (slot.port if slot.serving else None) != port:
                    stale[role] = port
            if not stale:
                return []
            self._bank(state)
            self.proxy.send(plans.switch_commands(stale))
        lines = []
        for role, port in stale.items():
            to = f"127.0.0.1:{port}" if port is not None else "nothing (503)"
            address = self.layout.address(role)
            line = f"re-pointed the proxy's {role} address {address} at {roles[role]} on {to}"
            self.log.add(roles[role], line, "WARN")
            lines.append(line)
        return lines

    def swap(self, first: str, second: str) -> None:
        """Exchange the addresses of the two environments with one admin-socket call."""
        for env in (first, second):
            self._check_environment(env)
        if first == second:
            raise LocalTargetError(f"cannot swap {first!r} with itself")
        self.ensure_proxy()
        with self._ops_lock():
            state = self.state.read()
            roles = self._roles(state)
            new_roles = swapped(roles)
            ports = self._role_ports(state, new_roles)
            self._bank(state)
            self.proxy.send(plans.switch_commands(ports))
            with self.state.update() as changed:
                changed.roles = new_roles
        for role in ROLES:
            self.log.add(new_roles[role], f"swapped: now holds {role} address {self.layout.address(role)}")
        if ports[PROD] is None:
            self.log.add(
                new_roles[PROD], "holds the prod address with nothing running: prod answers 503", "WARN"
            )

    def events(self, environment: str, since: datetime) -> list[TargetEvent]:
        """Lifecycle events of one environment after `since`, oldest first."""
        self._check_environment(environment)
        return self.log.read(environment, since)

    def preflight(self) -> list[str]:
        """What would stop a release here, one line each (empty: ready); starts nothing.

        HAProxy installed, the Docker engine reachable, and (unless this target's proxy already
        runs) both addresses free of other processes and other state dirs.
        """
        problems = []
        if not haproxy_installed(self.proxy.binary):
            problems.append(f"haproxy not installed ({self.proxy.binary}): run `bash scripts/setup-host.sh`")
        try:
            self.docker.ping()
        except LocalTargetError as exc:
            problems.append(str(exc))
        except Exception as exc:  # the SDK raises several types for "no engine"
            problems.append(f"Docker engine not reachable ({exc}); run `bash scripts/setup-host.sh`")
        try:
            if not self.proxy.running():
                problems += self.address_problems()
        except LocalTargetError as exc:  # a malformed address
            problems.append(str(exc))
        return problems

    def lock(
        self, holder: LockHolder, wait_s: float, log: Log
    ) -> contextlib.AbstractContextManager[LockHolder | None]:
        """Hold `<state_dir>/release.lock` (flock) for the block; the holder's record is in the file.

        Waits up to `wait_s` (logging who holds it every few seconds), then raises `LockBusy`
        naming the holder. The kernel frees it when the holder dies; the block gets that holder
        (its release was interrupted) or None. Not re-entrant. The lock is let go only once the
        release's background clean-up (see `settle`) is done; the holder's record is emptied
        before that wait, so a holder killed while it cleans up left a finished release, not an
        interrupted one (which the next release would swap back).
        """

        def settled() -> None:
            if not self.settle():
                log(
                    "the container this release retired is still stopping; if it is left, "
                    "the next release removes it as an orphan"
                )

        return self.release_lock.held(holder, wait_s, log, before_unlock=settled)

    # --- traffic and canary ---------------------------------------------------------------

    def _traffic_snapshot(
        self, state: LocalState
    ) -> tuple[traffic.Ledger, dict[str, traffic.ServerStat], dict[str, str]]:
        """The ledger (re-based on the running proxy), every server's counters, and their owners."""
        try:
            ledger = traffic.Ledger.from_json(self.traffic_path.read_text())
        except FileNotFoundError:
            ledger = traffic.Ledger()
        pid = self.proxy.pid()
        if pid is None:
            return ledger, {}, {}
        env_ports = {env: serving.port for env, serving in state.current.items()}
        ledger = traffic.rebased(ledger, pid)
        return ledger, self.proxy.stats(), traffic.owners(self.proxy.slots(), env_ports)

    def _bank(self, state: LocalState) -> None:
        """Before servers are re-pointed: credit their counters to the environments they served.

        Callers hold the ops lock (and so no reading interleaves).
        """
        if self.proxy.running():
            self._banked_snapshot(state)

    def _banked_snapshot(
        self, state: LocalState
    ) -> tuple[traffic.Ledger, dict[str, traffic.ServerStat], dict[str, str]]:
        """Bank every server's growth now and save the ledger; what `_traffic_snapshot` gives after."""
        ledger, stats, owned = self._traffic_snapshot(state)
        if not stats:
            return ledger, stats, owned
        banked = traffic.bank(ledger, stats, owned)
        tmp = self.traffic_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(banked.to_json())
        os.replace(tmp, self.traffic_path)
        return banked, stats, owned

    def traffic(self, environment: str) -> TrafficCounters:
        """HAProxy's cumulative counters of the servers pointing at `environment`'s container.

        Every client's requests count (HAProxy counts them, not a probe). Which servers: prod's
        `app`, preprod's `app` and prod's `canary`, each attributed by the port it points at now.
        Monotonic across swaps, deploys, canaries and proxy restarts: counters are banked per
        environment before every re-point and at every reading (see `flows.targets.local.traffic`),
        so a reading never goes below an earlier one; with no proxy running it is what was banked.
        """
        self._check_environment(environment)
        with self._ops_lock():
            ledger, stats, owned = self._banked_snapshot(self.state.read())
        return traffic.reading(ledger, stats, owned, environment)

    @property
    def supports_canary(self) -> bool:
        """True: prod's backend has a `canary` server whose weight takes a share of prod."""
        return True

    def set_traffic_share(self, environment: str, percent: int) -> None:
        """Send `percent` of prod's requests to `environment`'s container (0 ends the canary).

        Over the runtime API, no reload: prod's `canary` server is pointed at the container and
        weighted `percent`, `app` keeps `100 - percent`. 100 sends all of prod to the canary (the
        release then swaps and resets it to 0). A proxy restart resets the canary to 0.
        """
        self._check_environment(environment)
        if not 0 <= percent <= plans.FULL_WEIGHT:
            raise LocalTargetError(f"a traffic share is a percentage, 0..100; got {percent}")
        with self._ops_lock():
            if not self.proxy.running():
                raise LocalTargetError(
                    f"the proxy of {self.state_dir} is not running: deploy a version before a canary"
                )
            state = self.state.read()
            port: int | None = None
            if percent > 0:
                serving = state.current.get(environment)
                if serving is None:
                    raise LocalTargetError(
                        f"{environment} runs no container: deploy a version into it before sending it traffic"
                    )
                port = serving.port
            self._bank(state)
            self.proxy.send(plans.canary_commands(port, percent))
        if percent:
            self.log.add(environment, f"canary: {percent}% of prod's requests go to {environment}")
        else:
            self.log.add(environment, f"canary ended: all of prod's requests go to prod's {SERVER} server")

    # --- retention ------------------------------------------------------------------------

    def prune(self, environment: str, docker: Docker | None = None) -> list[str]:
        """Remove the images of versions beyond the last `keep_releases`, never the running ones.

        From the engine and, for images named after a registry, from the registry (by manifest
        digest, unless a kept version shares it). Each failure is a WARN event, never raised:
        retention must not fail a release. Returns the pruned image references. `docker`: the
        engine connection to use (default this target's; the background clean-up has its own).
        """
        from flows.image.push import delete_from_registry, manifest_digest

        state = self.state.read()
        running = {serving.version for serving in state.current.values()}
        doomed = guards.versions_to_prune(
            state.releases, state.versions, running, self.config.local.keep_releases
        )
        if not doomed:
            return []
        kept_refs = {reg.image for v, reg in state.versions.items() if v not in doomed}
        kept_digests: set[str] = set()
        for ref in kept_refs:
            parts = guards.split_image(ref)
            if parts is not None:
                with contextlib.suppress(Exception):  # unknown digest: compared against nothing
                    digest = manifest_digest(*parts)
                    if digest:
                        kept_digests.add(digest)
        pruned = []
        for version in doomed:
            ref = state.versions[version].image
            try:
                where = []
                if (docker or self.docker).remove_image(ref):
                    where.append("engine")
                parts = guards.split_image(ref)
                if parts is not None:
                    digest = manifest_digest(*parts)
                    if digest is not None and digest not in kept_digests:
                        delete_from_registry(parts[0], parts[1], digest)
                        where.append("registry")
            except Exception as exc:  # retention is best effort: say what is left, go on
                self.log.add(
                    environment,
                    f"could not prune image {ref} of version {version}: {exc}; "
                    f"remove it by hand (`docker rmi {ref}`)",
                    "WARN",
                )
                continue
            with self.state.update() as changed:
                changed.versions.pop(version, None)
                changed.releases = [v for v in changed.releases if v != version]
            pruned.append(ref)
            self.log.add(
                environment,
                f"pruned image {ref} of version {version} ({', '.join(where) or 'already gone'}): "
                f"beyond the last {self.config.local.keep_releases} releases",
            )
        return pruned

    # --- beyond the protocol: the CLI's `down` ----------------------------------------------

    def down(self, purge: bool = False) -> list[str]:
        """Remove this target's containers and proxy; keep the shared data unless `purge`.

        Returns what was removed, for the CLI to print.
        """
        removed: list[str] = []
        self.settle()
        with self._ops_lock():
            if self.proxy.running():
                self._bank(self.state.read())
            for facts in self.docker.find(self._labels()):
                if self.docker.retire(facts.name, self.config.local.stop_grace):
                    removed.append(f"container {facts.name}")
            if self.proxy.stop():
                removed.append("haproxy")
            with self.claims.lock():
                removed += [f"claim on {address}" for address in self.claims.release(self.state_dir)]
            with self.state.update() as state:
                state.current.clear()
                state.updating.clear()
        if purge:
            removed += self._purge()
        return removed

    def _purge(self) -> list[str]:
        import shutil

        removed = []
        for name in ("data", "store"):
            path = self.state_dir / name
            if path.exists():
                shutil.rmtree(path)
                removed.append(str(path))
        names = ("state.json", "events.jsonl", "haproxy.cfg", "traffic.json", "state.lock", "ops.lock")
        for name in (*names, "release.lock"):
            path = self.state_dir / name
            if path.exists():
                path.unlink()
                removed.append(str(path))
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()
        return removed

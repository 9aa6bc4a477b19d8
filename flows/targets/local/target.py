"""The local Docker target: two environments as containers behind HAProxy on 127.0.0.1.

Behaves like the seed's two Elastic Beanstalk environments: each environment holds one address
(prod or preprod) and runs one version; `deploy` replaces an environment's container without a
failed request (start, wait healthy, re-point its backend, retire the old one); `swap` exchanges
the two addresses in one admin-socket call. Plans come from `plans`, I/O from `executor`.

Empty target: before any release, the first configured environment holds prod and the second
preprod, both Missing. A release deploys into preprod and swaps; the environment left holding
preprod stays Missing (its backend answers 503) until the next release deploys into it. A swap
is always a plain exchange, as Elastic Beanstalk's CNAME swap is: swapping back after a failed
first release puts the empty environment on prod again (503, as before that release), with a
WARN event; the release steps only swap forward onto a verified preprod.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.config import PipelineConfig
from flows.errors import TargetError
from flows.targets.base import Environment, TargetEvent
from flows.targets.local import plans
from flows.targets.local.executor import ContainerError, Docker, HAProxy, prepare_data_dir
from flows.targets.local.plans import PROD, ROLES, ProxyLayout
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

SOCKET_PATH_MAX = 107  # sun_path, less its terminating NUL


class LocalTargetError(TargetError):
    """A local target operation cannot proceed; the message says what to fix."""


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
    ) -> None:
        """`client`: a Docker SDK client (default: from the environment).

        `extra_labels` go on every container (tests label theirs to remove exactly those).
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
        self._client = client
        self._docker: Docker | None = None

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
        return {
            plans.LABEL_APP: self.config.application,
            plans.LABEL_STATE_DIR: str(self.state_dir),
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

    def ensure_proxy(self) -> None:
        """Start the proxy unless it already runs; its servers point at the running environments."""
        with self._ops_lock():
            if self.proxy.running():
                return
            state = self.state.read()
            roles = settle_roles(state.roles, self.environment_names)
            facts = self._serving_facts(state)
            ports: dict[str, int | None] = {}
            for role in ROLES:
                env_facts = facts[roles[role]]
                healthy = env_facts is not None and env_facts.state == "running"
                ports[role] = env_facts.port if healthy and env_facts is not None else None
            self.proxy.start(plans.haproxy_config(self.layout, ports))
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

        Blocks until done: start the new container, wait for Docker's health (deadline `ready`),
        point the environment's backend at it, then retire the old container after a drain
        period with a stop grace. On failure the old container keeps serving.
        """
        self._check_environment(environment)
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
            self._deploy(environment, version, registration, store_config, data_dir)
        finally:
            with self.state.update() as state:
                state.updating.pop(environment, None)

    def _deploy(
        self,
        environment: str,
        version: str,
        registration: plans.Registration,
        store_config: Path,
        data_dir: Path,
    ) -> None:
        settings = self.config.local
        serving_before = self.state.read().current.get(environment)
        existing = self.docker.find(self._labels())
        self._retire_strays(environment, existing, serving_before)
        name = plans.container_name(self.config.application, environment, version, [c.name for c in existing])
        spec = plans.run_spec(
            application=self.config.application,
            environment=environment,
            version=version,
            registration=registration,
            name=name,
            store_config=store_config,
            data_dir=data_dir,
            state_dir=self.state_dir,
            health_path=settings.health_path,
            extra_labels=self.extra_labels,
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
            roles = self._roles(self.state.read())
            role = next(r for r, env in roles.items() if env == environment)
            self.proxy.send(plans.point_commands(role, healthy.port))
            with self.state.update() as state:
                old = state.current.get(environment)
                state.current[environment] = Serving(name, healthy.port, version)
                state.roles = roles
        self.log.add(environment, f"version {version} serves {self.layout.address(role)} from {name}")
        if old is not None and old.container != name:
            time.sleep(settings.drain_seconds)
            if self.docker.retire(old.container, settings.stop_grace):
                self.log.add(environment, f"retired container {old.container} (version {old.version})")

    def _retire_strays(
        self, environment: str, existing: list[ContainerFacts], serving: Serving | None
    ) -> None:
        """Remove this environment's containers left by an interrupted deploy (not the serving one)."""
        for facts in existing:
            if facts.environment == environment and (serving is None or facts.name != serving.container):
                self.docker.retire(facts.name, grace=1)
                self.log.add(environment, f"retired stray container {facts.name}", "WARN")

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
            facts = self._serving_facts(state)
            ports: dict[str, int | None] = {}
            for role in ROLES:
                env_facts = facts[new_roles[role]]
                running = env_facts is not None and env_facts.state == "running"
                ports[role] = env_facts.port if running and env_facts is not None else None
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

    # --- beyond the protocol: the CLI's `down` ----------------------------------------------

    def down(self, purge: bool = False) -> list[str]:
        """Remove this target's containers and proxy; keep the shared data unless `purge`.

        Returns what was removed, for the CLI to print.
        """
        removed: list[str] = []
        with self._ops_lock():
            for facts in self.docker.find(self._labels()):
                if self.docker.retire(facts.name, self.config.local.stop_grace):
                    removed.append(f"container {facts.name}")
            if self.proxy.stop():
                removed.append("haproxy")
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
        for name in ("state.json", "events.jsonl", "haproxy.cfg", "state.lock", "ops.lock"):
            path = self.state_dir / name
            if path.exists():
                path.unlink()
                removed.append(str(path))
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()
        return removed

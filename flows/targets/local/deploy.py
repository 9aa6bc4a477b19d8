"""The deploy job: a version into one environment without a failed request, and its clean-up.

Start the new container, wait for Docker's health, point the environment's backend at it (the
release goes on from there); then, in the background, drain and retire the replaced container
and prune old images. `settle` waits for that background work, through the clock seam.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flows.clock import GaveUp, poll_until
from flows.targets.local import containers, guards, plans
from flows.targets.local.containers import Registration
from flows.targets.local.engine import Docker, prepare_data_dir
from flows.targets.local.errors import ContainerError, LocalTargetError
from flows.targets.local.plans import CANARY, PROD
from flows.targets.local.proxy import Proxy
from flows.targets.local.recovery import Recovery
from flows.targets.local.retention import Retention
from flows.targets.local.site import Site
from flows.targets.local.state import Serving, UpdateMark, pid_alive

SETTLE_POLL_S = 0.02
PRUNE_ALLOWANCE_S = 60.0  # what `settle` allows for pruning, beyond the drain and the stop grace


@dataclass(eq=False)
class Deployer:
    """Deploys into an environment and cleans up after it in a background thread.

    The jobs it uses: the proxy to point, recovery to remove orphans, retention to prune.
    """

    site: Site
    proxy: Proxy
    recovery: Recovery
    retention: Retention
    _cleanups: list[threading.Thread] = field(default_factory=list, init=False)

    def store_config_path(self) -> Path:
        """The store configuration both environments mount; the default SQLite one is generated."""
        settings = self.site.config.local
        if settings.store_config is not None:
            path = settings.store_config.absolute()
            if not path.is_file():
                raise LocalTargetError(f"local.store_config {path} does not exist; create it or unset it")
            return path
        path = self.site.state_dir / "store" / "application.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = containers.store_config_text()
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            path.chmod(0o644)
        return path

    def deploy(self, environment: str, version: str) -> None:
        """Replace an environment's container with one of `version` (see `LocalTarget.deploy`)."""
        site = self.site
        site.check_environment(environment)
        if not self.settle():  # the previous deploy's clean-up, so it cannot race this one
            raise LocalTargetError(
                "the previous deploy's clean-up (retiring its replaced container, pruning images) "
                "is still running; look at the engine (`docker ps`, `docker info`) and deploy again"
            )
        registration = site.state.read().versions.get(version)
        if registration is None:
            raise LocalTargetError(f"version {version} is not registered; call register_version first")
        self.proxy.ensure()
        store_config = self.store_config_path()
        data_dir = site.state_dir / "data"
        prepare_data_dir(data_dir)
        with site.state.update() as state:
            state.updating[environment] = UpdateMark(version, os.getpid(), datetime.now(UTC).isoformat())
        site.log.add(environment, f"deploying version {version}")
        try:
            retired = self._replace(environment, version, registration, store_config, data_dir)
        finally:
            with site.state.update() as state:
                state.updating.pop(environment, None)
        with site.state.update() as state:
            state.releases = guards.touched(state.releases, version)
            # marks of processes that died draining are dropped: their containers are orphans now
            state.retiring = {name: pid for name, pid in state.retiring.items() if pid_alive(pid)}
            if retired is not None:  # not an orphan while this process drains it
                state.retiring[retired.container] = os.getpid()
        self._in_background(environment, lambda: self._retire_and_prune(environment, retired))

    def _replace(
        self, environment: str, version: str, registration: Registration, store_config: Path, data_dir: Path
    ) -> Serving | None:
        """Start, wait healthy, point the backend; the container it replaced (to retire), if any."""
        site = self.site
        self.recovery.remove_orphans(environment)
        existing = site.docker.find(site.labels())
        name = containers.container_name(
            f"{site.config.application}-{site.identity}", environment, version, [c.name for c in existing]
        )
        spec = containers.run_spec(
            application=site.config.application,
            environment=environment,
            version=version,
            registration=registration,
            name=name,
            store_config=store_config,
            data_dir=data_dir,
            state_dir=site.state_dir,
            health_path=site.config.local.health_path,
            extra_labels={
                containers.LABEL_TARGET: site.identity,
                containers.LABEL_RUN: site.run,
                **site.extra_labels,
            },
        )
        started = site.docker.start(spec)
        site.log.add(environment, f"created container {name} from {spec.image} on 127.0.0.1:{started.port}")
        try:
            healthy = site.docker.wait_healthy(name, site.config.deadlines.ready)
        except ContainerError as exc:
            site.log.add(environment, f"unhealthy: {exc}", "ERROR")
            site.docker.retire(name, grace=1)
            site.log.add(environment, f"retired container {name}")
            raise
        if healthy.port is None:
            raise ContainerError(f"container {name} publishes no port on 127.0.0.1")
        site.log.add(environment, f"container {name} healthy")
        with site.ops_lock():
            state = site.state.read()
            roles = self.proxy.roles(state)
            role = next(r for r, env in roles.items() if env == environment)
            old = state.current.get(environment)
            canary = self.proxy.haproxy.slots().get(f"{PROD}/{CANARY}")
            commands = plans.deploy_commands(
                role,
                healthy.port,
                canary.port if canary is not None else None,
                canary.weight if canary is not None else 0,
                old.port if old is not None else None,
            )
            self.proxy.switch(state, commands)
            with site.state.update() as changed:
                changed.current[environment] = Serving(name, healthy.port, version)
                changed.roles = roles
        site.log.add(environment, f"version {version} serves {self.proxy.layout.address(role)} from {name}")
        return old if old is not None and old.container != name else None

    def _retire_and_prune(self, environment: str, old: Serving | None) -> None:
        """After a deploy: drain and retire the container the backend left, then prune old images.

        Runs in its own thread with its own engine connection (see `Site.own_docker`).
        """
        docker = self.site.own_docker()
        try:
            if old is not None:
                self._retire(environment, old, docker)
            self.retention.prune(environment, docker)
        finally:
            self.site.close_own(docker)

    def _retire(self, environment: str, old: Serving, docker: Docker) -> None:
        """Drain, then stop and remove the container a deploy replaced; a failure is a WARN event."""
        site = self.site
        settings = site.config.local
        site.clock.sleep(settings.drain_seconds)
        try:
            if docker.retire(old.container, settings.stop_grace):
                site.log.add(environment, f"retired container {old.container} (version {old.version})")
        except ContainerError as exc:
            site.log.add(
                environment,
                f"could not retire container {old.container} ({exc}); no backend points at it, "
                "so the next release removes it as an orphan",
                "WARN",
            )
        finally:
            with site.state.update() as state:
                state.retiring.pop(old.container, None)

    def _in_background(self, environment: str, work: Callable[[], None]) -> None:
        """Run `work` in a thread that `settle` (and the release lock's exit) waits for.

        Clean-up must not fail a release that already serves: what escapes `work` is a WARN event.
        """

        def guarded() -> None:
            try:
                work()
            except Exception as exc:
                self.site.log.add(environment, f"clean-up after the deploy failed: {exc}", "WARN")

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
        settings = self.site.config.local
        limit = (
            deadline
            if deadline is not None
            else settings.stop_grace + settings.drain_seconds + PRUNE_ALLOWANCE_S
        )

        def done(_: object) -> bool | None:
            self._cleanups = [thread for thread in self._cleanups if thread.is_alive()]
            return True if not self._cleanups else None

        return not isinstance(poll_until(done, limit, SETTLE_POLL_S, clock=self.site.clock), GaveUp)

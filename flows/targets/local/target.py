"""The local Docker target: two environments as containers behind HAProxy on 127.0.0.1.

Behaves like the seed's two Elastic Beanstalk environments: each environment holds one address
(prod or preprod) and runs one version; `deploy` replaces an environment's container without a
failed request; `swap` exchanges the two addresses in one admin-socket call.

`LocalTarget` is a thin composition of one module per job, each over a shared `Site`:
`proxy` (start on claimed addresses, roles, switch, canary weights, traffic ledger), `deploy`
(start, background retire, `settle`), `recovery` (restart what serves, remove orphans),
`retention` (image pruning in the engine and the registry), `lock` (the release lock). Plans
are pure (`plans`, `containers`, `guards`, `traffic`, `status`); each external system has its
executor (`haproxy`, `engine`, `claims`, `lock`, `state`).

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
import shutil
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flows.config import PipelineConfig
from flows.targets.base import Environment, LockHolder, Log, TargetEvent, TrafficCounters
from flows.targets.local.claims import ClaimRegistry
from flows.targets.local.containers import registration_from_bundle
from flows.targets.local.deploy import Deployer
from flows.targets.local.errors import LocalTargetError
from flows.targets.local.haproxy import HAProxy, haproxy_installed
from flows.targets.local.lock import ReleaseLock
from flows.targets.local.proxy import Proxy, proxy_layout
from flows.targets.local.recovery import Recovery
from flows.targets.local.retention import Retention
from flows.targets.local.site import Site
from flows.targets.local.state import live_marks, pid_alive
from flows.targets.local.status import ContainerFacts, environment_report

__all__ = ["LocalTarget", "LocalTargetError", "proxy_layout"]

RUN_ENV_VARS = ("DELIVERYPIPELINE_RUN", "PREFECT__FLOW_RUN_ID")  # where the run id comes from
STATE_FILES = ("state.json", "events.jsonl", "haproxy.cfg", "traffic.json", "state.lock", "ops.lock")


class LocalTarget:
    """The `Target` protocol on the local Docker engine and a HAProxy host process.

    `site` holds what its jobs share: the state dir, the target's identity, the run its
    containers are labelled with, and the state file.
    """

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
        run = run or next((os.environ[v] for v in RUN_ENV_VARS if os.environ.get(v)), "unknown")
        self.site = Site(config, run, client, extra_labels)
        self.layout = proxy_layout(config)
        self.haproxy = HAProxy(self.layout)
        self.proxy = Proxy(self.site, self.layout, self.haproxy, claims or ClaimRegistry())
        self.release_lock = ReleaseLock(self.site.state_dir / "release.lock")
        self.recovery = Recovery(self.site, self.proxy)
        self.retention = Retention(self.site)
        self.deployer = Deployer(self.site, self.proxy, self.recovery, self.retention)

    @property
    def config(self) -> PipelineConfig:
        """The pipeline configuration this target serves."""
        return self.site.config

    # --- the Target protocol --------------------------------------------------------------

    def environments(self) -> list[Environment]:
        """Both environments: address held, version, status and health of the serving container."""
        state = self.site.state.read()
        role_of = {env: role for role, env in self.proxy.roles(state).items()}
        facts = self.site.serving_facts(state)
        alive = {mark.pid for mark in state.updating.values() if pid_alive(mark.pid)}
        marks = live_marks(state.updating, alive)
        return [
            environment_report(
                env,
                self.layout.address(role_of[env]),
                facts[env],
                marks[env].version if env in marks else None,
            )
            for env in self.site.environment_names
        ]

    def url(self, address: str) -> str:
        """`http://<address>`: the proxy serves both addresses on 127.0.0.1."""
        return f"http://{address}"

    def register_version(self, version: str, bundle: dict[str, Any]) -> None:
        """Remember the image and port of a rendered Dockerrun.aws.json; idempotent."""
        registration = registration_from_bundle(version, bundle)
        with self.site.state.update() as state:
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
        self.deployer.deploy(environment, version)

    def swap(self, first: str, second: str) -> None:
        """Exchange the addresses of the two environments with one admin-socket call."""
        self.proxy.swap(first, second)

    def events(self, environment: str, since: datetime) -> list[TargetEvent]:
        """Lifecycle events of one environment after `since`, oldest first."""
        self.site.check_environment(environment)
        return self.site.log.read(environment, since)

    def preflight(self) -> list[str]:
        """What would stop a release here, one line each (empty: ready); starts nothing.

        HAProxy installed, the Docker engine reachable, and (unless this target's proxy already
        runs) both addresses free of other processes and other state dirs.
        """
        problems = []
        if not haproxy_installed(self.haproxy.binary):
            problems.append(
                f"haproxy not installed ({self.haproxy.binary}): run `bash scripts/setup-host.sh`"
            )
        try:
            self.site.docker.ping()
        except LocalTargetError as exc:
            problems.append(str(exc))
        except Exception as exc:  # the SDK raises several types for "no engine"
            problems.append(f"Docker engine not reachable ({exc}); run `bash scripts/setup-host.sh`")
        try:
            if not self.proxy.running():
                problems += self.proxy.address_problems()
        except LocalTargetError as exc:  # a malformed address
            problems.append(str(exc))
        return problems

    def reconcile(self) -> list[str]:
        """Bring the target back to its record after a crash or restart; one line per repair."""
        return self.recovery.reconcile()

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

    def traffic(self, environment: str) -> TrafficCounters:
        """HAProxy's cumulative counters of the servers pointing at `environment`'s container.

        Every client's requests count (HAProxy counts them, not a probe). Which servers: prod's
        `app`, preprod's `app` and prod's `canary`, each attributed by the port it points at now.
        Monotonic across swaps, deploys, canaries and proxy restarts: counters are banked per
        environment before every re-point and at every reading (see `flows.targets.local.traffic`),
        so a reading never goes below an earlier one; with no proxy running it is what was banked.
        """
        return self.proxy.traffic(environment)

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
        self.proxy.set_share(environment, percent)

    # --- beyond the protocol: the CLI's `status` and `down`, the tests' hooks ----------------

    def ensure_proxy(self) -> None:
        """Start the proxy unless it runs (see `Proxy.ensure`)."""
        self.proxy.ensure()

    def settle(self, deadline: float | None = None) -> bool:
        """Wait for the background clean-up of this target's deploys; False if it outlasts `deadline`."""
        return self.deployer.settle(deadline)

    def orphans(self) -> list[ContainerFacts]:
        """This target's containers no environment points at (see `Recovery.orphans`)."""
        return self.recovery.orphans()

    def down(self, purge: bool = False) -> list[str]:
        """Remove this target's containers and proxy; keep the shared data unless `purge`.

        Returns what was removed, for the CLI to print.
        """
        site = self.site
        removed: list[str] = []
        self.settle()
        with site.ops_lock():
            if self.proxy.running():
                self.proxy.bank(site.state.read())
            for facts in site.docker.find(site.labels()):
                if site.docker.retire(facts.name, site.config.local.stop_grace):
                    removed.append(f"container {facts.name}")
            removed += self.proxy.stop()
            with site.state.update() as state:
                state.current.clear()
                state.updating.clear()
        if purge:
            removed += self._purge()
        return removed

    def _purge(self) -> list[str]:
        """Delete the shared data and every state file of this target."""
        state_dir = self.site.state_dir
        removed = []
        for name in ("data", "store"):
            path = state_dir / name
            if path.exists():
                shutil.rmtree(path)
                removed.append(str(path))
        for name in (*STATE_FILES, "release.lock"):
            path = state_dir / name
            if path.exists():
                path.unlink()
                removed.append(str(path))
        with contextlib.suppress(OSError):
            state_dir.rmdir()
        return removed

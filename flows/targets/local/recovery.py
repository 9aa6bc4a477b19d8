"""The recovery job: bring the target back to its own record after crashes and restarts.

Serving containers a host or engine restart stopped start again and the proxy runs and points
at them; containers killed deploys left, that no environment points at (orphans), are removed.
"""

from __future__ import annotations

from flows.targets.local import guards
from flows.targets.local.errors import ContainerError
from flows.targets.local.proxy import Proxy
from flows.targets.local.site import Site
from flows.targets.local.state import Serving, pid_alive
from flows.targets.local.status import ContainerFacts


class Recovery:
    """Repairs of one local target: restarting what serves, removing orphans."""

    def __init__(self, site: Site, proxy: Proxy) -> None:
        """`proxy`: started or re-pointed at what serves."""
        self.site = site
        self.proxy = proxy

    def orphans(self, deploying: str | None = None) -> list[ContainerFacts]:
        """This target's containers no environment points at (left by a killed or failed deploy).

        Spares the serving containers, any container a proxy server points at, and the containers
        of environments a live process is deploying (other than `deploying`, the caller's own).
        """
        site = self.site
        state = site.state.read()
        haproxy = self.proxy.haproxy
        proxied = {slot.port for slot in haproxy.slots().values()} if haproxy.running() else set()
        busy = {env for env, mark in state.updating.items() if env != deploying and pid_alive(mark.pid)}
        serving = {serving.container for serving in state.current.values()}
        serving |= {name for name, pid in state.retiring.items() if pid_alive(pid)}
        return guards.orphans(site.docker.find(site.labels()), serving, proxied, busy)

    def remove_orphans(self, environment: str | None = None) -> list[str]:
        """Remove this target's orphans (see `orphans`); `environment`: the one the caller deploys into."""
        site = self.site
        removed = []
        for facts in self.orphans(deploying=environment):
            if site.docker.retire(facts.name, grace=1):
                removed.append(facts.name)
                site.log.add(
                    facts.environment or environment or site.environment_names[0],
                    f"removed orphan container {facts.name} (version {facts.version}): "
                    "no environment pointed at it",
                    "WARN",
                )
        return removed

    def reconcile(self) -> list[str]:
        """Bring the target back to what its state says after a crash or a restart; one line per repair.

        Serving containers that stopped start again, the proxy runs and points at what serves
        (see `restore_serving`); then the orphans are removed (see `orphans`).
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
        repairs = [self._start_again(env) for env in self.site.environment_names]
        found = [line for line in repairs if line is not None]
        if not self.site.state.read().current:
            return found
        if not self.proxy.running():
            self.proxy.ensure()
            prod, preprod = self.proxy.addresses()
            return [*found, f"started the proxy on {prod} and {preprod}"]
        return found + self.proxy.repoint_stale()

    def _start_again(self, environment: str) -> str | None:
        """Start an environment's stopped serving container again; what was done, None if nothing."""
        site = self.site
        serving = site.state.read().current.get(environment)
        facts = site.docker.facts(serving.container) if serving is not None else None
        if serving is None or facts is None or facts.state == "running":
            return None
        try:
            started = site.docker.start_again(serving.container, site.config.deadlines.ready)
        except ContainerError as exc:
            name = serving.container
            line = f"the stopped container {name} did not start again ({exc}); a release replaces it"
            site.log.add(environment, line, "WARN")
            return line
        with site.ops_lock():
            state = site.state.read()
            roles = self.proxy.roles(state)  # read while the state still has the ports the proxy knows
            self.proxy.bank(state)
            with site.state.update() as changed:
                port = started.port or serving.port
                changed.current[environment] = Serving(serving.container, port, serving.version)
                changed.roles = roles
        line = (
            f"started again the stopped container {serving.container} (version {serving.version}, "
            f"{facts.state} since the engine or host restarted): healthy on 127.0.0.1:{started.port}"
        )
        site.log.add(environment, line, "WARN")
        return line

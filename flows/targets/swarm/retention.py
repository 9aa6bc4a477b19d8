"""The swarm's image retention carried out: every node's own engine removes old versions' images.

A manager cannot remove an image on another node, so each node's engine is reached at its own
endpoint (`SwarmSettings.node_endpoint`: the lab's sockets, or `swarm.node_engine` for a real
cluster), all nodes at once, and removes what `retention_plans` picks. The removal is forced:
Swarm keeps the stopped task containers of old versions, which would hold their images; an
engine never removes the image of a running container, forced or not. Best effort: a node
that fails is a WARN line and keeps its versions for the next release; nothing raises.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flows.targets.swarm import decisions, retention_plans
from flows.targets.swarm.decisions import NodeFacts
from flows.targets.swarm.engine import API_VERSION, SwarmEngine
from flows.targets.swarm.settings import SwarmSettings
from flows.targets.swarm.versions import VersionBook

Say = Callable[[str, str], None]  # (message, severity): the target's event log
EventLog = Callable[[str, str, str], None]  # (environment, message, severity)
RETENTION_DEADLINE_S = 120.0  # what `settle` allows the background retention on every node


class FleetRetention:
    """A deploy's image retention, in the background: which versions go (`retention_plans`), then
    every node removes their images (`NodeRetention`).

    Runs in its own thread with its own connection to the manager, while the deploy rolls out:
    the version it replaces still runs, so its image goes at a later release. `settle` waits
    for it (the next deploy, letting the lock go and `down` do).
    """

    def __init__(
        self, settings: SwarmSettings, versions: VersionBook, services: Sequence[str], log: EventLog
    ) -> None:
        """`services`: the names of the environments' services; `log` gets the lines of a deploy."""
        self.settings = settings
        self.versions = versions
        self.services = services
        self.log = log
        self._thread: threading.Thread | None = None

    def start(self, environment: str) -> None:
        """Start pruning after a deploy of `environment` (its event log gets what happened)."""
        self._thread = threading.Thread(
            target=self.prune, args=(environment,), name="swarm-retention", daemon=True
        )
        self._thread.start()

    def settle(self, deadline: float | None = None) -> bool:
        """Wait for the last deploy's retention; False if it outlasts `deadline` s."""
        thread = self._thread
        if thread is not None:
            thread.join(deadline if deadline is not None else RETENTION_DEADLINE_S)
            if thread.is_alive():
                return False
        return True

    def prune(self, environment: str) -> None:
        """Remove the images of versions beyond the last `keep_releases` from every node, never the
        running ones; a failure is a WARN event of `environment`, never raised."""
        engine = SwarmEngine(self.settings.manager)
        try:
            running: set[str] = set()
            for name in self.services:
                service = engine.service(name)
                if service is not None and service.version is not None:
                    running.add(service.version)
                    running |= {v for v in decisions.running_versions(engine.tasks(service)).values() if v}
            pinned = self.versions.read()
            keep = self.settings.keep_releases
            doomed = retention_plans.versions_to_prune(self.versions.releases(), pinned, running, keep)
            if not doomed:
                return
            nodes = sorted(engine.nodes(), key=lambda node: node.hostname)
            retention = NodeRetention(
                lambda node: self.settings.node_endpoint(node.hostname, node.address),
                lambda line, severity: self.log(environment, line, severity),
            )
            images = {v: pinned[v] for v in doomed}
            left = retention.prune(nodes, images)
            gone = retention_plans.fully_pruned(doomed, left)
            self.versions.forget({v: images[v] for v in gone})
            if gone:
                self.log(
                    environment,
                    f"pruned the images of {', '.join(gone)} from every node: "
                    f"beyond the last {keep} releases",
                    "INFO",
                )
        except Exception as exc:  # retention is best effort: it must not fail a release that serves
            self.log(environment, f"image retention on the nodes failed: {exc}", "WARN")
        finally:
            engine.close()


class NodeRetention:
    """Removes doomed images on every node, each through its own engine."""

    def __init__(
        self, endpoint: Callable[[NodeFacts], str], say: Say, connect: Callable[[str], Any] | None = None
    ) -> None:
        """`endpoint` gives a node's Docker endpoint; `say` gets one line per node (and severity);
        `connect` makes an SDK client for an endpoint (tests pass a stand-in)."""
        self.endpoint = endpoint
        self.say = say
        self.connect = connect or _sdk_client

    def prune(self, nodes: Sequence[NodeFacts], doomed: Mapping[str, str]) -> dict[str, list[str]]:
        """Remove the `doomed` images (version -> reference) on every node, in parallel.

        Returns, per node hostname, the versions whose image it still holds (every doomed
        version for a node that could not be reached).
        """
        if not doomed or not nodes:
            return {}
        with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="swarm-retention") as pool:
            kept = pool.map(lambda node: self._on_node(node, doomed), nodes)
            return {node.hostname: left for node, left in zip(nodes, kept, strict=True)}

    def _on_node(self, node: NodeFacts, doomed: Mapping[str, str]) -> list[str]:
        """Prune one node; the versions it keeps. Never raises: a failure is a WARN line."""
        from docker.errors import DockerException, NotFound

        if not node.up:
            self.say(f"{node.hostname} is {node.state}: its old images stay until a later release", "WARN")
            return list(doomed)
        endpoint = "its endpoint"
        try:
            endpoint = self.endpoint(node)
            with contextlib.closing(self.connect(endpoint)) as c:
                present: dict[str, str] = {}
                for ref in set(doomed.values()):
                    with contextlib.suppress(NotFound):
                        present[ref] = str(c.api.inspect_image(ref)["Id"])
                in_use = {str(found["ImageID"]) for found in c.api.containers(filters={"status": "running"})}
                remove, busy = retention_plans.node_removals(doomed, present, in_use)
                removed: list[str] = []
                for version in remove:
                    with contextlib.suppress(NotFound):  # an image two versions share goes once
                        c.api.remove_image(doomed[version], force=True)
                    removed.append(version)
        except (DockerException, OSError, KeyError, ValueError, IndexError) as exc:  # also a bad node_engine
            self.say(
                f"could not prune old images on {node.hostname} ({endpoint}): {exc}; they stay until a "
                "later release; check swarm.node_engine names each node's Docker endpoint",
                "WARN",
            )
            return list(doomed)
        if removed:
            refs = ", ".join(f"{v} ({doomed[v]})" for v in removed)
            self.say(f"{node.hostname}: removed the images of {refs}", "INFO")
        if busy:
            self.say(
                f"{node.hostname}: a running container still uses the image of {', '.join(busy)}", "WARN"
            )
        return busy


def _sdk_client(endpoint: str) -> Any:
    import docker

    return docker.DockerClient(base_url=endpoint, version=API_VERSION, timeout=30)

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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flows.targets.swarm import retention_plans
from flows.targets.swarm.decisions import NodeFacts
from flows.targets.swarm.engine import API_VERSION

Say = Callable[[str, str], None]  # (message, severity): the target's event log


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

        endpoint = self.endpoint(node)
        if not node.up:
            self.say(f"{node.hostname} is {node.state}: its old images stay until a later release", "WARN")
            return list(doomed)
        try:
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
        except (DockerException, OSError) as exc:
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

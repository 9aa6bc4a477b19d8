"""The swarm target's I/O with the manager: the Docker SDK over `DockerClient(base_url=manager)`.

Reads nodes, services, tasks and configs into the facts `decisions` judges, and posts the
ServiceSpecs `services` plans exactly as planned (creates, and updates by compare-and-swap on
the service's version). Every SDK failure comes back as a `SwarmError` naming the manager.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flows.errors import TargetError
from flows.targets.swarm.decisions import NodeFacts, ServiceFacts, TaskFacts
from flows.targets.swarm.services import LABEL_VERSION, StoreConfig

API_VERSION = "1.41"  # Docker Engine 20.10, the oldest engine this target supports


class SwarmError(TargetError):
    """The swarm's manager refused or could not answer; the message says what to check."""


def parse_time(text: str | None) -> datetime:
    """An Engine API timestamp (RFC 3339 with nanoseconds) as an aware UTC datetime."""
    if not text:
        return datetime.fromtimestamp(0, UTC)
    head, _, rest = text.rstrip("Z").partition(".")
    fraction = rest[:6]
    moment = datetime.fromisoformat(f"{head}.{fraction}" if fraction else head)
    return moment.replace(tzinfo=UTC)


def node_facts(attrs: dict[str, Any]) -> NodeFacts:
    """A node object of the Engine API as `NodeFacts`."""
    status = attrs.get("Status") or {}
    spec = attrs.get("Spec") or {}
    return NodeFacts(
        id=attrs["ID"],
        hostname=(attrs.get("Description") or {}).get("Hostname", attrs["ID"][:12]),
        address=status.get("Addr", ""),
        state=status.get("State", "unknown"),
        availability=spec.get("Availability", "active"),
        role=spec.get("Role", "worker"),
    )


def task_facts(attrs: dict[str, Any]) -> TaskFacts:
    """A task object of the Engine API as `TaskFacts`."""
    status = attrs.get("Status") or {}
    container = (attrs.get("Spec") or {}).get("ContainerSpec") or {}
    return TaskFacts(
        node_id=attrs.get("NodeID", ""),
        state=status.get("State", "new"),
        desired=attrs.get("DesiredState", "running"),
        version=(container.get("Labels") or {}).get(LABEL_VERSION),
        error=status.get("Err", ""),
        time=parse_time(status.get("Timestamp")),
    )


def service_facts(attrs: dict[str, Any]) -> ServiceFacts:
    """A service object of the Engine API as `ServiceFacts`."""
    spec = attrs["Spec"]
    update = attrs.get("UpdateStatus") or {}
    return ServiceFacts(
        id=attrs["ID"],
        name=spec["Name"],
        index=int(attrs["Version"]["Index"]),
        labels=dict(spec.get("Labels") or {}),
        image=spec["TaskTemplate"]["ContainerSpec"]["Image"],
        update_state=update.get("State"),
        update_message=update.get("Message", ""),
        update_time=parse_time(update.get("CompletedAt") or update.get("StartedAt")) if update else None,
        spec=spec,
    )


class SwarmEngine:
    """The manager's API, in the target's terms."""

    def __init__(self, manager: str, client: Any | None = None) -> None:
        """`manager`: a Docker endpoint (`unix://`, `tcp://`, `ssh://`); `client`: an SDK client to use."""
        self.manager = manager
        self._client = client

    @property
    def client(self) -> Any:
        """The SDK client, connecting on first use."""
        if self._client is None:
            import docker

            try:
                self._client = docker.DockerClient(base_url=self.manager, version=API_VERSION, timeout=30)
            except Exception as exc:  # the SDK raises several types for a bad endpoint
                raise self._error("connecting", exc) from exc
        return self._client

    def close(self) -> None:
        """Close the connection to the manager."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _error(self, what: str, exc: Exception) -> SwarmError:
        return SwarmError(
            f"swarm manager {self.manager}: {what} failed ({exc}); check swarm.manager names a "
            "running manager's Docker endpoint (`deliverypipeline swarm up` starts a local swarm)"
        )

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        from docker.errors import DockerException

        try:
            yield
        except SwarmError:
            raise
        except (DockerException, OSError) as exc:
            raise self._error(what, exc) from exc

    def manager_problem(self) -> str | None:
        """Why the endpoint is not a usable swarm manager (None: it is one)."""
        try:
            with self._calling("asking for its state"):
                info = self.client.info()
        except SwarmError as exc:
            return str(exc)
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            return f"{self.manager} is not part of a swarm: `docker swarm init` there, or name a manager"
        if not swarm.get("ControlAvailable"):
            return (
                f"{self.manager} is a swarm worker, not a manager: set swarm.manager to a manager's "
                "endpoint (`docker node ls` lists them)"
            )
        return None

    def nodes(self) -> list[NodeFacts]:
        """Every node of the swarm."""
        with self._calling("listing nodes"):
            return [node_facts(node) for node in self.client.api.nodes()]

    def service(self, name: str) -> ServiceFacts | None:
        """The service called exactly `name`, None if there is none."""
        with self._calling(f"reading service {name}"):
            found = [s for s in self.client.api.services(filters={"name": name}) if s["Spec"]["Name"] == name]
        return service_facts(found[0]) if found else None

    def tasks(self, service: ServiceFacts) -> list[TaskFacts]:
        """The tasks of a service, on every node (the current ones and those they replaced)."""
        with self._calling(f"listing tasks of {service.name}"):
            return [task_facts(task) for task in self.client.api.tasks(filters={"service": service.id})]

    def create_service(self, spec: dict[str, Any]) -> str:
        """Create a service from its exact spec; its id."""
        api = self.client.api
        with self._calling(f"creating service {spec['Name']}"):
            result = api._result(api._post_json(api._url("/services/create"), data=spec), True)
        return str(result["ID"])

    def update_service(self, service: ServiceFacts, spec: dict[str, Any]) -> None:
        """Replace a service's spec, only if it is still at the version we read (compare-and-swap)."""
        api = self.client.api
        url = api._url("/services/{0}/update", service.id)
        with self._calling(f"updating service {service.name}"):
            api._raise_for_status(api._post_json(url, params={"version": service.index}, data=spec))

    def ensure_config(self, config: StoreConfig, labels: dict[str, str]) -> str:
        """The id of the Swarm config `config.name`, created with `config.text` when missing."""
        from docker.errors import APIError

        api = self.client.api
        with self._calling(f"creating config {config.name}"):
            found = [
                c for c in api.configs(filters={"name": config.name}) if c["Spec"]["Name"] == config.name
            ]
            if found:
                return str(found[0]["ID"])
            try:
                return str(api.create_config(config.name, config.text.encode(), labels=labels)["ID"])
            except APIError as exc:
                if exc.status_code != 409:  # 409: another run created it meanwhile
                    raise
                found = api.configs(filters={"name": config.name})
                return str(found[0]["ID"])

"""The Docker engine executor: the environments' containers and their images, through the Docker SDK.

It carries out the run specifications `containers` decided; every wait has a deadline (on the
clock seam) and every failure says what to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
from flows.registry.names import names_registry
from flows.targets.local.containers import LABEL_ENV, LABEL_VERSION, RunSpec
from flows.targets.local.errors import ContainerError, LocalTargetError, PruneError
from flows.targets.local.status import ContainerFacts

ENGINE_HINT = "run `bash scripts/setup-host.sh`"


def connect() -> Any:
    """A Docker SDK client from the environment, checked with a ping."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises several types for "no engine"
        raise LocalTargetError(f"Docker engine not reachable ({exc}); {ENGINE_HINT}") from exc
    return client


def facts_of(container: Any) -> ContainerFacts:
    """A container's facts from the SDK's object."""
    attrs = container.attrs
    state = attrs.get("State", {})
    health = (state.get("Health") or {}).get("Status")
    port: int | None = None
    for bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
        for binding in bindings or []:
            if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
                port = int(binding["HostPort"])
    labels = attrs.get("Config", {}).get("Labels") or {}
    return ContainerFacts(
        name=container.name,
        id=container.id,
        state=state.get("Status", "unknown"),
        health=health,
        version=labels.get(LABEL_VERSION) or labels.get("org.opencontainers.image.version"),
        image=attrs.get("Config", {}).get("Image", ""),
        port=port,
        environment=labels.get(LABEL_ENV),
    )


def prepare_data_dir(path: Path) -> None:
    """Create the shared data directory writable by the image's non-root user (any uid)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)


class Docker:
    """The containers of the local target, through the Docker SDK."""

    def __init__(self, client: Any, clock: Clock = SYSTEM_CLOCK) -> None:
        """`client` is a `docker.DockerClient`; `clock` times the waits."""
        self.client = client
        self.clock = clock

    def facts(self, name: str) -> ContainerFacts | None:
        """A container's current facts, None if it does not exist."""
        import docker.errors

        try:
            return facts_of(self.client.containers.get(name))
        except docker.errors.NotFound:
            return None

    def find(self, labels: dict[str, str]) -> list[ContainerFacts]:
        """All containers (running or not) carrying every one of `labels`."""
        wanted = [f"{key}={value}" for key, value in labels.items()]
        return [facts_of(c) for c in self.client.containers.list(all=True, filters={"label": wanted})]

    def start(self, spec: RunSpec) -> ContainerFacts:
        """Create and start a container; pull its image first only from a registry host."""
        import docker.errors

        try:
            self.client.images.get(spec.image)
        except docker.errors.ImageNotFound:
            if not names_registry(spec.image):
                raise ContainerError(
                    f"image {spec.image} is not on this host and names no registry to pull from; "
                    "build it or register a version whose image is in the registry"
                ) from None
            try:
                self.client.images.pull(spec.image)
            except docker.errors.APIError as exc:
                raise ContainerError(f"cannot pull {spec.image}: {exc.explanation or exc}") from exc
        try:
            container = self.client.containers.run(**spec.docker_kwargs())
        except docker.errors.APIError as exc:
            raise ContainerError(f"cannot start container {spec.name}: {exc.explanation or exc}") from exc
        container.reload()
        return facts_of(container)

    def start_again(self, name: str, deadline: float) -> ContainerFacts:
        """Start a stopped container again (the engine or the host restarted) and wait until healthy.

        Its published port is a new one: the caller re-points the proxy at what this returns.
        """
        import docker.errors

        try:
            self.client.containers.get(name).start()
        except docker.errors.NotFound:
            raise ContainerError(f"container {name} vanished before it could start again") from None
        except docker.errors.APIError as exc:
            raise ContainerError(f"cannot start container {name} again: {exc.explanation or exc}") from exc
        return self.wait_healthy(name, deadline)

    def wait_healthy(self, name: str, deadline: float, poll: float = 0.1) -> ContainerFacts:
        """Wait until Docker reports the container healthy; raise with its last probe output otherwise."""
        import docker.errors

        last: list[Any] = []  # the container as last seen, for the timeout's message

        def look(_: Deadline) -> ContainerFacts | None:
            try:
                container = self.client.containers.get(name)
            except docker.errors.NotFound:
                raise ContainerError(f"container {name} vanished while starting") from None
            last[:] = [container]
            facts = facts_of(container)
            if facts.state == "running" and facts.health in ("healthy", None):
                return facts
            if facts.state in ("exited", "dead") or facts.health == "unhealthy":
                raise ContainerError(f"container {name} failed to start: {self._why(container)}")
            return None

        def too_late(_: Deadline) -> ContainerError:
            return ContainerError(
                f"container {name} not healthy after {deadline:.0f}s (deadline 'ready'): {self._why(last[0])}"
            )

        return poll_until(look, deadline, poll, too_late, clock=self.clock)

    @staticmethod
    def _why(container: Any) -> str:
        state = container.attrs.get("State", {})
        probes = (state.get("Health") or {}).get("Log") or []
        last_probe = probes[-1].get("Output", "").strip() if probes else "no health probe ran"
        try:
            logs = container.logs(tail=5).decode(errors="replace").strip()
        except Exception:  # the logs are a hint only
            logs = ""
        return (
            f"state {state.get('Status')}, exit code {state.get('ExitCode')}, last probe: {last_probe[:300]}"
            + (f"; last log lines: {logs[-500:]}" if logs else "")
            + f"; see `docker logs {container.name}`"
        )

    def remove_image(self, ref: str) -> bool:
        """Remove (untag) an image from the engine; False when it was not there."""
        import docker.errors

        try:
            self.client.images.remove(image=ref)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            raise PruneError(
                f"the engine keeps image {ref}: {exc.explanation or exc}; remove it with `docker rmi {ref}`"
            ) from exc
        return True

    def ping(self) -> None:
        """Raise when the engine does not answer."""
        self.client.ping()

    def retire(self, name: str, grace: float) -> bool:
        """Stop a container with SIGTERM (SIGKILL after `grace` s) and remove it; False if absent."""
        import docker.errors

        try:
            container = self.client.containers.get(name)
        except docker.errors.NotFound:
            return False
        try:
            container.stop(timeout=max(1, round(grace)))
            container.remove(force=True)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            raise ContainerError(f"cannot retire container {name}: {exc.explanation or exc}") from exc
        return True

    def close(self) -> None:
        """Close the engine connection (a background thread's own)."""
        self.client.close()

"""The one place the local target does I/O: the HAProxy process, its admin socket, and Docker.

Each method carries out one step a plan decided; every wait has a deadline and every failure
says what to look at.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from flows.errors import TargetError
from flows.targets.local.plans import (
    ProxyLayout,
    RunSpec,
    ServerState,
    command_errors,
    command_line,
    parse_servers_state,
)
from flows.targets.local.state import pid_alive
from flows.targets.local.status import ContainerFacts

HAPROXY = "/usr/sbin/haproxy"


class ProxyError(TargetError):
    """The reverse proxy could not be started, reached or changed."""


class ContainerError(TargetError):
    """A container could not be started, became unhealthy or could not be stopped."""


class HAProxy:
    """A HAProxy host process driven through its pid file and admin socket."""

    def __init__(self, layout: ProxyLayout, binary: str = HAPROXY) -> None:
        """`layout` says where its configuration, socket and pid file live."""
        self.layout = layout
        self.binary = binary

    def pid(self) -> int | None:
        """The running proxy's process id, None when it is not running."""
        try:
            pid = int(self.layout.pid_path.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def ask(self, line: str, timeout: float = 5.0) -> str:
        """Send one line over a fresh admin-socket connection and return the whole reply."""
        path = str(self.layout.socket_path)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(timeout)
                conn.connect(path)
                conn.sendall(line.encode())
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise ProxyError(
                f"HAProxy admin socket {path} did not answer ({exc}); "
                "is the proxy running? `deliverypipeline local status` shows it"
            ) from exc
        return b"".join(chunks).decode(errors="replace")

    def running(self) -> bool:
        """Whether the proxy runs and answers on its admin socket."""
        if self.pid() is None:
            return False
        try:
            return "Name: HAProxy" in self.ask("show info\n", timeout=2.0)
        except ProxyError:
            return False

    def send(self, commands: list[str]) -> str:
        """Run runtime commands in order over one connection; raise if HAProxy reports an error."""
        reply = self.ask(command_line(commands))
        errors = command_errors(reply)
        if errors:
            raise ProxyError(f"HAProxy refused {commands}: {'; '.join(errors)}")
        return reply

    def servers(self) -> dict[str, ServerState]:
        """Each backend's server as the running proxy has it now."""
        return parse_servers_state(self.ask("show servers state\n"))

    def start(self, config: str, deadline: float = 10.0) -> None:
        """Write the configuration, check it, start the proxy and wait for its admin socket."""
        path = self.layout.config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        try:
            check = subprocess.run(
                [self.binary, "-c", "-q", "-f", str(path)], capture_output=True, text=True, timeout=deadline
            )
        except subprocess.TimeoutExpired as exc:
            raise ProxyError(f"`{self.binary} -c -f {path}` did not finish within {deadline:.0f}s") from exc
        if check.returncode != 0:
            raise ProxyError(f"HAProxy rejects {path}: {check.stderr.strip() or check.stdout.strip()}")
        with contextlib.suppress(FileNotFoundError):
            self.layout.socket_path.unlink()
        try:
            started = subprocess.run(
                [self.binary, "-f", str(path)],
                capture_output=True,
                text=True,
                timeout=deadline,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise ProxyError(
                f"HAProxy did not daemonize within {deadline:.0f}s with {path}; "
                "check the config's `daemon` setting and the system log"
            ) from exc
        if started.returncode != 0:
            raise ProxyError(
                f"HAProxy did not start with {path}: {started.stderr.strip()}; "
                "is another process listening on the prod or preprod address?"
            )
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.running():
                return
            time.sleep(0.05)
        raise ProxyError(f"HAProxy started but its admin socket {self.layout.socket_path} never answered")

    def stop(self, deadline: float = 10.0) -> bool:
        """Stop the proxy (finishing its requests in flight); True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGUSR1)  # soft stop: close listeners, finish open requests
        end = time.monotonic() + deadline
        while time.monotonic() < end and pid_alive(pid):
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
        for leftover in (self.layout.pid_path, self.layout.socket_path):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        return True


def _facts(container: Any) -> ContainerFacts:
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
        version=labels.get("deliverypipeline.version") or labels.get("org.opencontainers.image.version"),
        image=attrs.get("Config", {}).get("Image", ""),
        port=port,
        environment=labels.get("deliverypipeline.env"),
    )


def pullable(image: str) -> bool:
    """Whether an image reference names a registry host (so pulling it never reaches a public hub)."""
    first, sep, _ = image.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


class Docker:
    """The containers of the local target, through the Docker SDK."""

    def __init__(self, client: Any) -> None:
        """`client` is a `docker.DockerClient`."""
        self.client = client

    def facts(self, name: str) -> ContainerFacts | None:
        """A container's current facts, None if it does not exist."""
        import docker.errors

        try:
            return _facts(self.client.containers.get(name))
        except docker.errors.NotFound:
            return None

    def find(self, labels: dict[str, str]) -> list[ContainerFacts]:
        """All containers (running or not) carrying every one of `labels`."""
        wanted = [f"{key}={value}" for key, value in labels.items()]
        return [_facts(c) for c in self.client.containers.list(all=True, filters={"label": wanted})]

    def start(self, spec: RunSpec) -> ContainerFacts:
        """Create and start a container; pull its image first only from a registry host."""
        import docker.errors

        try:
            self.client.images.get(spec.image)
        except docker.errors.ImageNotFound:
            if not pullable(spec.image):
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
        return _facts(container)

    def wait_healthy(self, name: str, deadline: float, poll: float = 0.25) -> ContainerFacts:
        """Wait until Docker reports the container healthy; raise with its last probe output otherwise."""
        import docker.errors

        end = time.monotonic() + deadline
        while True:
            try:
                container = self.client.containers.get(name)
            except docker.errors.NotFound:
                raise ContainerError(f"container {name} vanished while starting") from None
            facts = _facts(container)
            if facts.state == "running" and facts.health in ("healthy", None):
                return facts
            if facts.state in ("exited", "dead") or facts.health == "unhealthy":
                raise ContainerError(f"container {name} failed to start: {self._why(container)}")
            if time.monotonic() >= end:
                raise ContainerError(
                    f"container {name} not healthy after {deadline:.0f}s (deadline 'ready'): "
                    f"{self._why(container)}"
                )
            time.sleep(poll)

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


def prepare_data_dir(path: Path) -> None:
    """Create the shared data directory writable by the image's non-root user (any uid)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)

"""The one place the local target does I/O: HAProxy, its admin socket, Docker, locks and claims.

Each method carries out one step a plan decided; every wait has a deadline and every failure
says what to look at. Besides the proxy and the containers: the release lock (`fcntl.flock`,
freed by the kernel when its holder dies), the registry of address claims (which state dir's
HAProxy holds which address), bind tests, and removing images from the engine and the registry.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
from flows.targets.base import LockHolder, Log
from flows.targets.local import guards
from flows.targets.local.errors import LocalTargetError
from flows.targets.local.guards import Claim
from flows.targets.local.plans import (
    ProxyLayout,
    RunSpec,
    ServerSlot,
    ServerState,
    command_errors,
    command_line,
    parse_server_slots,
    parse_servers_state,
    split_address,
)
from flows.targets.local.state import file_lock, pid_alive
from flows.targets.local.status import ContainerFacts
from flows.targets.local.traffic import ServerStat, parse_stat

HAPROXY = "/usr/sbin/haproxy"


class ProxyError(LocalTargetError):
    """The reverse proxy could not be started, reached or changed."""


class ContainerError(LocalTargetError):
    """A container could not be started, became unhealthy or could not be stopped."""


class LockBusy(LocalTargetError):
    """The release lock stayed held by another operation past the wait; the message names it."""


class PruneError(LocalTargetError):
    """An image could not be removed from the engine or the registry (logged, never fatal)."""


class HAProxy:
    """A HAProxy host process driven through its pid file and admin socket."""

    def __init__(self, layout: ProxyLayout, binary: str = HAPROXY, clock: Clock = SYSTEM_CLOCK) -> None:
        """`layout` says where its configuration, socket and pid file live; `clock` times the waits."""
        self.layout = layout
        self.binary = binary
        self.clock = clock

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

    def slots(self) -> dict[str, ServerSlot]:
        """Every server of every backend (`app`, `canary`) with its port and weight."""
        return parse_server_slots(self.ask("show servers state\n"))

    def stats(self) -> dict[str, ServerStat]:
        """Every server's cumulative counters (`show stat`)."""
        return parse_stat(self.ask("show stat\n"))

    def start(self, config: str, deadline: float = 10.0) -> None:
        """Write the configuration, check it, start the proxy and wait for its admin socket."""
        path = self.layout.config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        check = self._haproxy(
            ["-c", "-q", "-f", str(path)],
            deadline,
            overdue=f"`{self.binary} -c -f {path}` did not finish within {deadline:.0f}s",
        )
        if check.returncode != 0:
            raise ProxyError(f"HAProxy rejects {path}: {check.stderr.strip() or check.stdout.strip()}")
        with contextlib.suppress(FileNotFoundError):
            self.layout.socket_path.unlink()
        started = self._haproxy(
            ["-f", str(path)],
            deadline,
            overdue=(
                f"HAProxy did not daemonize within {deadline:.0f}s with {path}; "
                "check the config's `daemon` setting and the system log"
            ),
            detach=True,
        )
        if started.returncode != 0:
            raise ProxyError(
                f"HAProxy did not start with {path}: {started.stderr.strip()}; "
                "is another process listening on the prod or preprod address?"
            )
        poll_until(
            lambda _: True if self.running() else None,
            deadline,
            0.05,
            lambda waited: ProxyError(
                f"HAProxy started but its admin socket {self.layout.socket_path} never answered "
                f"within {waited.seconds:.0f}s"
            ),
            clock=self.clock,
        )

    def _haproxy(
        self, args: list[str], deadline: float, *, overdue: str, detach: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run HAProxy with `args` (in a session of its own if `detach`); `overdue` if it runs over."""
        try:
            return subprocess.run(
                [self.binary, *args],
                capture_output=True,
                text=True,
                timeout=deadline,
                start_new_session=detach,
            )
        except subprocess.TimeoutExpired as exc:
            raise ProxyError(overdue) from exc

    def stop(self, deadline: float = 10.0) -> bool:
        """Stop the proxy (finishing its requests in flight); True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGUSR1)  # soft stop: close listeners, finish open requests
        # a proxy still running at the end of its soft stop is terminated
        poll_until(lambda _: None if pid_alive(pid) else True, deadline, 0.05, clock=self.clock)
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

    def __init__(self, client: Any, clock: Clock = SYSTEM_CLOCK) -> None:
        """`client` is a `docker.DockerClient`; `clock` times the waits."""
        self.client = client
        self.clock = clock

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
            facts = _facts(container)
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


def prepare_data_dir(path: Path) -> None:
    """Create the shared data directory writable by the image's non-root user (any uid)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)


def haproxy_installed(binary: str = HAPROXY) -> bool:
    """Whether the HAProxy binary is there and executable."""
    return os.access(binary, os.X_OK)


def address_bindable(address: str) -> bool:
    """Whether a server could listen on `address` now (a bind test, as HAProxy binds: SO_REUSEADDR).

    SO_REUSEADDR lets the test pass over connections in TIME_WAIT but not over a listener;
    without SO_REUSEPORT it also fails over a listener that set SO_REUSEPORT.
    """
    host, port = split_address(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def is_haproxy(pid: int) -> bool:
    """Whether `pid` is a live HAProxy process (guards against a recycled pid in a stale claim)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith("haproxy")
    except OSError:
        return False


def default_claims_dir() -> Path:
    """Where address claims live: /run/deliverypipeline/claims (tmpfs, root), else under the temp dir."""
    run = Path("/run")
    if os.access(run, os.W_OK):
        return run / "deliverypipeline" / "claims"
    return Path(tempfile.gettempdir()) / "deliverypipeline-claims"


class ClaimRegistry:
    """One small JSON file per address, naming the state dir and HAProxy pid holding it.

    Shared by every target on the host; changed under `claims.lock`, so two targets starting
    their proxies at the same moment check and claim one after the other.
    """

    def __init__(self, directory: Path | None = None) -> None:
        """`directory`: default `default_claims_dir()`."""
        self.directory = directory or default_claims_dir()

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the registry while checking and claiming addresses."""
        return file_lock(self.directory / "claims.lock")

    def _path(self, address: str) -> Path:
        return self.directory / guards.claim_file_name(address)

    def read(self, address: str) -> Claim | None:
        """The claim on `address`, None when there is none (or it is unreadable)."""
        try:
            return Claim.from_json(self._path(address).read_text())
        except OSError:
            return None

    @staticmethod
    def alive(claim: Claim | None) -> bool:
        """Whether a claim's HAProxy still runs."""
        return claim is not None and pid_alive(claim.pid) and is_haproxy(claim.pid)

    def write(self, claim: Claim) -> None:
        """Record a claim (atomically: temp file and rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(claim.address)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(claim.to_json())
        os.replace(tmp, path)

    def release(self, state_dir: Path) -> list[str]:
        """Remove every claim of `state_dir`; the addresses released."""
        released = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                claim = Claim.from_json(path.read_text())
            except OSError:
                continue
            if claim is not None and claim.state_dir == str(state_dir):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                released.append(claim.address)
        return released


class ReleaseLock:
    """The target's exclusive release lock: `flock` on a file whose content names the holder.

    The kernel frees a `flock` when its holder's process dies (even by SIGKILL), so a crashed
    release never blocks the next one. Independent of the short `ops.lock`/`state.lock` locks,
    which a holder keeps taking inside the block. Not re-entrant: one holder per process at a time.
    """

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK, poll_s: float = 0.2) -> None:
        """`path`: the lock file, created on first use."""
        self.path = path
        self.clock = clock
        self.poll_s = poll_s

    def holder(self) -> LockHolder | None:
        """Who holds the lock according to its record (stale once the lock is free)."""
        try:
            return guards.holder_from_json(self.path.read_text())
        except OSError:
            return None

    @contextlib.contextmanager
    def held(
        self, holder: LockHolder, wait_s: float, log: Log, before_unlock: Callable[[], None] | None = None
    ) -> Iterator[LockHolder | None]:
        """Hold the lock for the block, waiting up to `wait_s` and logging every few seconds.

        The block gets the holder whose record was still in the file: it died holding the lock
        (a clean holder empties the file when it lets go). `before_unlock` runs after the record
        is emptied but while the lock is still held: clean-up that must not be taken for an
        interrupted release if the holder dies during it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            logged_at = -math.inf

            def look(deadline: Deadline) -> bool | None:
                nonlocal logged_at
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if deadline.elapsed - logged_at >= guards.LOCK_LOG_EVERY_S:
                        logged_at = deadline.elapsed
                        log(guards.lock_waiting_message(self.holder(), deadline.elapsed, wait_s))
                    return None

            poll_until(
                look,
                wait_s,
                self.poll_s,
                lambda _: LockBusy(guards.lock_timeout_message(self.holder(), wait_s, self.path)),
                clock=self.clock,
            )
            try:
                left = os.pread(fd, 1 << 16, 0).decode(errors="replace")
                interrupted = guards.holder_from_json(left) if left.strip() else None
                os.ftruncate(fd, 0)
                os.pwrite(fd, guards.holder_json(holder).encode(), 0)
                yield interrupted
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                try:
                    if before_unlock is not None:
                        before_unlock()
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

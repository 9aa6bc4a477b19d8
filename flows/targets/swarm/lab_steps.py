"""The steps of the swarm lab's plans: what `lab_plans` decides and `lab_executor` carries out.

Plain values, compared exactly in the tests. A step on a node's engine carries the node
(`LabNode`: its names, address and files); the store's PostgreSQL step carries the cluster's
own spec (`flows.servers.postgres.ClusterSpec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flows.servers.postgres import ClusterSpec


@dataclass(frozen=True)
class LabNode:
    """One node of the lab: its names, address and files (short paths: socket paths have a limit)."""

    name: str  # node-1 (also its host name)
    netns: str
    address: str
    host_veth: str
    dir: Path  # its pid file, and the engine's socket and exec root below
    data_root: Path
    socket: Path  # the engine's API socket
    exec_root: Path  # the engine's exec root (its containerd, and the namespace files it mounts)


@dataclass(frozen=True)
class Command:
    """Run `argv`; with `check=False` a failure is only reported (tear-down of what may be gone)."""

    argv: tuple[str, ...]
    check: bool = True


Files = tuple[tuple[Path, str], ...]  # (path, text) of each file a step writes, directories made


@dataclass(frozen=True)
class Spawn:
    """Start a long-lived process detached from us, its output in `log`; its pid is recorded as `name`.

    `files` (its configuration) are written first.
    """

    name: str
    argv: tuple[str, ...]
    log: Path
    files: Files = ()


@dataclass(frozen=True)
class Swarm:
    """Once the node's engine answers: `swarm init` on it (no `manager`), or `swarm join` to the
    manager's swarm as a worker; advertising the node's bridge address."""

    node: LabNode
    manager: LabNode | None = None


@dataclass(frozen=True)
class StartPostgres:
    """Start the store's PostgreSQL cluster and create the tasks' database `database` in it; then
    write `files` (the store configuration naming that database)."""

    cluster: ClusterSpec
    database: str
    files: Files = ()


@dataclass(frozen=True)
class Kill:
    """Stop the process recorded as `name` (pid `pid`, only if its command line still names `binary`)."""

    name: str
    pid: int
    binary: str
    signal: int = 15  # SIGTERM; PostgreSQL's fast shutdown is SIGINT (2)


@dataclass(frozen=True)
class Remove:
    """Remove a file, or a directory and everything in it, if it exists; what is mounted below it
    (the network-namespace files a stopped engine leaves in its exec root) is unmounted first."""

    path: Path


Step = Command | Spawn | StartPostgres | Swarm | Kill | Remove

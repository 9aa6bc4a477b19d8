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


@dataclass(frozen=True)
class WriteFile:
    """Write `text` to `path`, creating its directory."""

    path: Path
    text: str


@dataclass(frozen=True)
class Spawn:
    """Start a long-lived process detached from us, its output in `log`; its pid is recorded as `name`."""

    name: str
    argv: tuple[str, ...]
    log: Path


@dataclass(frozen=True)
class WaitEngine:
    """Wait until the node's engine answers on its socket."""

    node: LabNode


@dataclass(frozen=True)
class SwarmInit:
    """`swarm init` on the first node, advertising its bridge address."""

    node: LabNode


@dataclass(frozen=True)
class SwarmJoin:
    """`swarm join` of a node to the manager node, as a worker."""

    node: LabNode
    manager: LabNode


@dataclass(frozen=True)
class StartPostgres:
    """Start the store's PostgreSQL cluster and create the tasks' database `database` in it."""

    cluster: ClusterSpec
    database: str


@dataclass(frozen=True)
class Kill:
    """Stop the process recorded as `name` (pid `pid`, only if its command line still names `binary`)."""

    name: str
    pid: int
    binary: str
    signal: int = 15  # SIGTERM; PostgreSQL's fast shutdown is SIGINT (2)


@dataclass(frozen=True)
class Unmount:
    """Unmount every mount under `root` (the network-namespace files an engine leaves in its exec root)."""

    root: Path


@dataclass(frozen=True)
class Remove:
    """Remove a file, or a directory and everything in it, if it exists."""

    path: Path


Step = (
    Command | WriteFile | Spawn | StartPostgres | WaitEngine | SwarmInit | SwarmJoin | Kill | Unmount | Remove
)

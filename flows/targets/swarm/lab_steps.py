"""The steps of the swarm lab's plans: what `lab_plans` decides and `lab_executor` carries out.

Plain values, compared exactly in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    """Wait until the engine on `socket` answers."""

    node: str
    socket: Path


@dataclass(frozen=True)
class SwarmInit:
    """`swarm init` on the first node, advertising its bridge address."""

    node: str
    socket: Path
    address: str


@dataclass(frozen=True)
class SwarmJoin:
    """`swarm join` of a node to the manager, as a worker."""

    node: str
    socket: Path
    address: str
    manager_socket: Path
    manager_address: str


@dataclass(frozen=True)
class StartPostgres:
    """Start the store's PostgreSQL on the bridge address (nodes' range allowed), with database `database`."""

    directory: Path
    host: str
    port: int
    allow_from: str
    password: str
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

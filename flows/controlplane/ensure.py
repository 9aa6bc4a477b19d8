"""One call for every entry point: the control plane up (server, pool, deployments, worker) and a client.

The calling process is pointed at the same server before Prefect is imported (it reads its
settings then), so no Prefect code in it can start a temporary server or send telemetry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flows.controlplane import deployments, server, worker
from flows.controlplane.layout import Layout, layout

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


def say(message: str) -> None:
    """Progress of the control plane, on stderr."""
    print(f"controlplane: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Ready:
    """What is up, and what this call started."""

    layout: Layout
    server: server.ServerInfo
    worker_pid: int | None
    started_worker: bool
    deployed: bool


def point_here(where: Layout) -> None:
    """Make this process's Prefect (imported later) use this control plane only."""
    env = where.env()
    for key, value in env.items():
        if key.startswith(("PREFECT_", "DO_NOT_TRACK")):
            os.environ[key] = value


@contextmanager
def connect(where: Layout) -> Iterator[SyncPrefectClient]:
    """One shared client of the control plane's API (one client avoids SQLite "database is locked")."""
    point_here(where)
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(where.api_url) as client:
        yield client


@contextmanager
def up(where: Layout | None = None, *, with_worker: bool = True) -> Iterator[tuple[Ready, SyncPrefectClient]]:
    """The control plane up (started where missing, reused where it answers) and one connected client."""
    where = where or layout()
    info = server.ensure_server(where, say)
    with connect(where) as client:
        deployments.ensure_pool(client)
        deployed = deployments.ensure_deployments(where, client, say)
        pid, started = worker.ensure_worker(where, client, say) if with_worker else (None, False)
        yield Ready(where, info, pid, started, deployed), client

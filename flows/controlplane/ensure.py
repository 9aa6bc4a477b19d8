"""One call for every entry point: the control plane up (server, pool, deployments, worker) and a client.

The client is the control plane's REST API (`api`), so a command that only submits and follows a
run never imports Prefect. The calling process is still pointed at the same server first, so
Prefect code it imports later (to create the pool, say) can never start a temporary server or
send telemetry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flows.controlplane import automations, deployments, keeper, server, worker
from flows.controlplane.api import ControlPlaneApi
from flows.controlplane.layout import Layout, layout


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
def connect(where: Layout) -> Iterator[ControlPlaneApi]:
    """One client of the control plane's API, its connections kept for the command's calls."""
    point_here(where)
    with ControlPlaneApi(where.api_url) as client:
        yield client


@contextmanager
def up(where: Layout | None = None, *, with_worker: bool = True) -> Iterator[tuple[Ready, ControlPlaneApi]]:
    """The control plane up (started where missing, reused where it answers) and one connected client.

    With the worker comes its keeper, which starts it again if it dies (and so lets the recovery
    of a crashed release run without anyone).
    """
    where = where or layout()
    info = server.ensure_server(where, say)
    with connect(where) as client:
        deployments.ensure_pool(client)
        deployed = deployments.ensure_deployments(where, client, say)
        automations.ensure_automations(client, say)
        pid, started = worker.ensure_worker(where, client, say) if with_worker else (None, False)
        if with_worker:
            keeper.ensure_keeper(where, say)
        yield Ready(where, info, pid, started, deployed), client

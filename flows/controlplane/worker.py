"""The worker of the `deliverypipeline` pool: started when ours is not running, reused when it is.

It runs every flow run in a process of its own (the process pool type) and marks a run Crashed
when that process dies. When the worker itself died, its active runs can never end by
themselves: `reconcile` marks those whose process is gone Crashed, which frees their slots (and
starts the recovery of their target, see `flows/recovery`).

A recorded worker is reused only while it runs, its checkout and interpreter are still on disk,
and the server still hears it poll; otherwise it is stopped (its flow runs, each in a session of
its own, go on) and a new one is started from the current checkout. One start at a time: the
keeper and the entry points take `worker.lock` in the records dir around it.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows import flock
from flows.clock import Deadline
from flows.controlplane import ControlPlaneError
from flows.controlplane import processes as proc
from flows.controlplane.api import ApiError, ControlPlaneApi, RunState
from flows.controlplane.decisions import ACTIVE_STATES, is_ours, missing_files, orphaned, stale_worker
from flows.controlplane.layout import POOL, Layout, prefect_executable

Say = Callable[[str], None]
WORKER_NAME = "deliverypipeline-local"
# Prefect's worker heartbeat is every 30 s; three missed and it no longer polls.
STALE_AFTER_S = 90.0
START_LOCK_WAIT_S = 60.0


def record_path(layout: Layout) -> Path:
    """Where the worker we started is recorded."""
    return layout.records / "worker.json"


def our_pid(layout: Layout) -> int | None:
    """The pid of our worker for this control plane's server, if it still runs."""
    return _live_pid(proc.read_record(record_path(layout)), layout)


def _live_pid(record: dict[str, Any] | None, layout: Layout) -> int | None:
    if record is None or not isinstance(record.get("pid"), int) or record.get("api_url") != layout.api_url:
        return None
    pid: int = record["pid"]
    return pid if proc.alive(pid) and is_ours(proc.cmdline(pid), "worker") else None


def starting(layout: Layout) -> AbstractContextManager[None]:
    """One check-and-start of the worker at a time on this machine (`worker.lock`, flock)."""
    path = layout.records / "worker.lock"

    def busy(deadline: Deadline) -> ControlPlaneError:
        return ControlPlaneError(
            f"another command has been starting the worker for {deadline.seconds:.0f}s "
            f"({path}); see {layout.logs / 'worker.log'}"
        )

    return flock.held(path, START_LOCK_WAIT_S, 0.1, busy)


def heartbeat_age(client: ControlPlaneApi, name: str = WORKER_NAME) -> float | None:
    """Seconds since the server last heard worker `name` poll the pool; None if it never did.

    Raises `ApiError` when the server does not answer: that tells nothing about the worker.
    """
    rows = client.call("POST", f"/work_pools/{POOL}/workers/filter", {}) or []
    for row in rows:
        if row.get("name") == name and row.get("last_heartbeat_time"):
            seen = datetime.fromisoformat(str(row["last_heartbeat_time"]).replace("Z", "+00:00"))
            return (datetime.now(UTC) - seen).total_seconds()
    return None


def not_reusable(layout: Layout, client: ControlPlaneApi, record: dict[str, Any]) -> str | None:
    """Why our live worker must not be reused (its files are gone, it no longer polls), or None."""
    if (gone := missing_files(record, os.path.exists)) is not None:
        return f"runs from {gone}, which is gone"
    running_s = time.time() - float(record.get("started") or 0)
    try:
        age = heartbeat_age(client)
    except ApiError:  # a busy or restarting server: a worker is never replaced for the server's silence
        return None
    if stale_worker(age, running_s, STALE_AFTER_S):
        return f"has not polled pool {POOL} for over {STALE_AFTER_S:.0f}s"
    return None


def online_worker(client: ControlPlaneApi) -> str | None:
    """The name of a worker the server sees polling the pool right now (another checkout's), if any."""
    try:
        workers = client.read_workers_for_work_pool(POOL)
    except ApiError:  # no pool yet, or an older server: start our own
        return None
    online = [w for w in workers if w.status.upper() == "ONLINE"]
    return online[0].name if online else None


def ensure_worker(layout: Layout, client: ControlPlaneApi, say: Say) -> tuple[int | None, bool]:
    """Our worker's pid, starting it (after reconciling a dead one's runs) when no worker polls the
    pool; and whether this call started it. One worker per server: a second checkout reusing the
    server reuses its worker too (two workers would each keep their own cached results)."""
    with starting(layout):
        return _ensure(layout, client, say)


def _ensure(layout: Layout, client: ControlPlaneApi, say: Say) -> tuple[int | None, bool]:
    record = proc.read_record(record_path(layout))
    pid = _live_pid(record, layout)
    if pid is not None and record is not None:
        reason = not_reusable(layout, client, record)
        if reason is None:
            return pid, False
        say(f"the worker (pid {pid}) {reason}: stopping it (its flow runs go on) and starting another")
        proc.stop(pid, grace_s=10.0)
    gone = record is not None  # a worker of ours was there and died (or was just stopped)
    if record is None and (other := online_worker(client)) is not None:
        # The server still lists a worker for a while after it stopped (until its heartbeats are
        # overdue): on our own local server, reuse it only if its process runs on this host.
        if layout.external or proc.running("worker", layout.api_url):
            say(f"reusing the worker {other} already polling pool {POOL} on this server")
            return None, False
        say(f"the server lists worker {other} as online, but it does not run on this host: starting ours")
        gone = True
    if gone:  # the runs of a worker that is gone have no one left to end them
        reconcile(client, say)
    args = [
        prefect_executable(),
        "worker",
        "start",
        "--pool",
        POOL,
        "--type",
        "process",
        "--name",
        WORKER_NAME,
    ]
    log = layout.logs / "worker.log"
    pid = proc.spawn(args, layout.env(), log, cwd=layout.root)
    proc.write_record(
        record_path(layout),
        {
            "pid": pid,
            "api_url": layout.api_url,
            "started": time.time(),
            "log": str(log),
            "root": str(layout.root),
            "python": sys.executable,
        },
    )
    say(f"started worker (pid {pid}) for pool {POOL}, log {log}")
    return pid, True


def _pid_of(infrastructure_pid: str | None) -> int | None:
    if not infrastructure_pid:
        return None
    tail = infrastructure_pid.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _elsewhere(infrastructure_pid: str | None) -> bool:
    """Whether a run's process (`host:pid`, as a process worker records it) runs on another host."""
    host, separator, _ = (infrastructure_pid or "").rpartition(":")
    return bool(separator and host) and host != socket.gethostname()


def reconcile(client: ControlPlaneApi, say: Say) -> list[str]:
    """Mark Crashed the pool's active runs whose process is gone (their worker died); their ids."""
    crashed = []
    for run in client.read_flow_runs_in_pool(POOL, ACTIVE_STATES):
        if _elsewhere(run.infrastructure_pid):  # a team server's other hosts: their own worker judges
            continue
        pid = _pid_of(run.infrastructure_pid)
        if not orphaned(run.state_type, run.infrastructure_pid, pid is not None and proc.alive(pid)):
            continue
        message = "its worker died and its process is gone; marked Crashed by the control plane"
        client.set_flow_run_state(run.id, RunState("CRASHED", "Crashed", message), force=True)
        say(f"run {run.name} ({run.id}) was orphaned by a dead worker: marked Crashed")
        crashed.append(str(run.id))
    return crashed


def stop_worker(layout: Layout, say: Say) -> bool:
    """Stop our worker and the flow-run processes it started (each leads a session of its own)."""
    pid = our_pid(layout)
    record_path(layout).unlink(missing_ok=True)
    if pid is None:
        return False
    for run_pid in proc.children(pid):
        proc.stop(run_pid, grace_s=10.0)
        say(f"stopped flow-run process {run_pid}")
    killed = proc.stop(pid, grace_s=10.0)
    say(f"stopped worker (pid {pid}){' with SIGKILL' if killed else ''}")
    return True

"""The worker of the `deliverypipeline` pool: started when ours is not running, reused when it is.

It runs every flow run in a process of its own (the process pool type) and marks a run Crashed
when that process dies. When the worker itself died, its active runs can never end by
themselves: `reconcile` marks those whose process is gone Crashed, which frees their slots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flows.controlplane import processes as proc
from flows.controlplane.api import ApiError, ControlPlaneApi, RunState
from flows.controlplane.decisions import ACTIVE_STATES, is_ours, orphaned
from flows.controlplane.layout import POOL, Layout, prefect_executable

Say = Callable[[str], None]
WORKER_NAME = "deliverypipeline-local"


def record_path(layout: Layout) -> Path:
    """Where the worker we started is recorded."""
    return layout.records / "worker.json"


def our_pid(layout: Layout) -> int | None:
    """The pid of our worker for this control plane's server, if it still runs."""
    record = proc.read_record(record_path(layout))
    if record is None or not isinstance(record.get("pid"), int) or record.get("api_url") != layout.api_url:
        return None
    pid: int = record["pid"]
    return pid if proc.alive(pid) and is_ours(proc.cmdline(pid), "worker") else None


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
    pid = our_pid(layout)
    if pid is not None:
        return pid, False
    record = proc.read_record(record_path(layout))
    gone = record is not None  # a worker of ours was there and died
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
        record_path(layout), {"pid": pid, "api_url": layout.api_url, "started": time.time(), "log": str(log)}
    )
    say(f"started worker (pid {pid}) for pool {POOL}, log {log}")
    return pid, True


def _pid_of(infrastructure_pid: str | None) -> int | None:
    if not infrastructure_pid:
        return None
    tail = infrastructure_pid.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def reconcile(client: ControlPlaneApi, say: Say) -> list[str]:
    """Mark Crashed the pool's active runs whose process is gone (their worker died); their ids."""
    crashed = []
    for run in client.read_flow_runs_in_pool(POOL, ACTIVE_STATES):
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

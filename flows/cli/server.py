"""`deliverypipeline server start|status|stop`: the local control plane (Prefect server + worker).

`start` starts what is missing and reuses what answers (every entry point does the same on its
own); `status` shows it without starting anything; `stop` stops what this state dir started
(the keeper, the worker's running flow runs, the worker, then the server); `env` prints the
server's API and UI addresses and the state dir as shell assignments (for scripts and the Makefile).
Settings: DELIVERY_STATE_DIR, PREFECT_PORT, PREFECT_API_URL (see flows/controlplane/layout.py).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register `server` and its actions."""
    parser = subparsers.add_parser(
        "server",
        help="the local control plane: Prefect server, worker, deployments (start | status | stop)",
        description="Show, start or stop the one Prefect server and worker every entry point uses.",
    )
    parser.add_argument("action", choices=("start", "status", "stop", "env"), help="what to do")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Do the action; `status` exits 0 when the server answers, 3 when it does not."""
    from flows.controlplane.layout import layout

    where = layout()
    if args.action == "start":
        return start(where)
    if args.action == "stop":
        return stop(where)
    if args.action == "env":
        return env(where)
    return status(where)


def start(where: Any) -> int:
    """Start what is missing, reuse what answers; print where the UI is."""
    from flows.controlplane.ensure import say, up

    with up(where) as (ready, _):
        say(f"ready: UI {where.ui_url}, API {where.api_url}, worker pid {ready.worker_pid}")
    return 0


def env(where: Any) -> int:
    """Print the server in use (`PREFECT_API_URL`, `PREFECT_UI_URL`) and the state dir, quoted for a shell."""
    import shlex

    print(f"PREFECT_API_URL={shlex.quote(where.api_url)}")
    print(f"PREFECT_UI_URL={shlex.quote(where.ui_url)}")
    print(f"DELIVERY_STATE_DIR={shlex.quote(str(where.state_dir))}")
    return 0


def status(where: Any) -> int:
    """Print the server, the worker and the deployments, starting nothing."""
    from flows.controlplane import keeper, server, worker

    answering = server.healthy(where.api_url, timeout=3.0)
    server_pid = None if where.external else server.our_pid(where)
    worker_pid = worker.our_pid(where)
    kind = "external (PREFECT_API_URL)" if where.external else f"local, database {where.database}"
    owner = f"pid {server_pid}" if server_pid else ("not started by this state dir" if answering else "-")
    print(f"server   {where.api_url}: {'answering' if answering else 'NOT answering'} ({kind}; {owner})")
    shown_worker = f"pid {worker_pid}" if worker_pid else "not running"
    print(f"worker   {shown_worker} (log {where.logs / 'worker.log'})")
    keeper_pid = keeper.our_pid(where)
    shown_keeper = f"pid {keeper_pid}" if keeper_pid else "not running"
    print(f"keeper   {shown_keeper} (log {where.logs / 'keeper.log'})")
    print(f"UI       {where.ui_url}")
    if answering:
        print(f"deployments {', '.join(_deployments(where)) or 'none'}")
    if not answering:
        print("start it with `deliverypipeline server start` (make demo and make serve do it too)")
    return 0 if answering else 3


def _deployments(where: Any) -> list[str]:
    from flows.controlplane.api import NotFound
    from flows.controlplane.deployments import DEPLOYMENTS
    from flows.controlplane.ensure import connect

    found = []
    with connect(where) as client:
        for name in DEPLOYMENTS:
            try:
                deployment = client.read_deployment_by_name(name)
            except NotFound:
                continue
            found.append(f"{name} (version {deployment.version})")
    return found


def stop(where: Any) -> int:
    """Stop the worker (and its flow runs) and the server this state dir started."""
    from flows.controlplane import keeper, legacy, server, worker
    from flows.controlplane.ensure import say

    stopped_keeper = keeper.stop_keeper(where, say)  # first: it would start the worker again
    stopped_worker = worker.stop_worker(where, say)
    stopped_legacy = legacy.stop_legacy(where, say)
    stopped_server = False
    if where.external:
        say(f"the server at {where.api_url} is not ours (PREFECT_API_URL): left running")
    else:
        stopped_server = server.stop_server(where, say)
    if not (stopped_keeper or stopped_worker or stopped_server or stopped_legacy):
        say("nothing of this state dir was running")
    return 0

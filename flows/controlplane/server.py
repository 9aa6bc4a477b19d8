"""The Prefect server of the control plane: start it when missing, reuse it when it answers, stop it.

SQLite under `<state dir>/prefect` (the machine's, not a checkout's), listening on 127.0.0.1 only.
The server we start is recorded (`<state dir>/controlplane/server.json`, with the checkout and
interpreter it runs from) so that `deliverypipeline server stop` stops exactly it; a recorded
server whose checkout was deleted since is restarted from the current one (same database). A
server that `PREFECT_API_URL` names elsewhere is only checked, never started or stopped.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows import http
from flows.clock import Deadline, poll_until
from flows.controlplane import ControlPlaneError, legacy
from flows.controlplane import processes as proc
from flows.controlplane.decisions import (
    Port,
    Verdict,
    is_ours,
    judge_server,
    missing_files,
    slow_message,
    startup_patience,
)
from flows.controlplane.layout import HOST, PORT_ENV, STATE_DIR_ENV, Layout, prefect_executable
from flows.errors import ConfigError

Say = Callable[[str], None]
EXTERNAL_WAIT_S = 10.0
POLL_S = 0.5


@dataclass(frozen=True)
class ServerInfo:
    """The server in use: where, which process (when ours), whether this call started it."""

    api_url: str
    pid: int | None
    started: bool
    ours: bool


def record_path(layout: Layout) -> Path:
    """Where the server we started is recorded."""
    return layout.records / "server.json"


def check_state_dir(layout: Layout) -> None:
    """Create the state dir's parts, or fail with one line saying how to give a writable one."""
    try:
        for directory in (layout.state_dir, layout.home, layout.logs, layout.records):
            directory.mkdir(parents=True, exist_ok=True)
        probe = layout.records / ".writable"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"the state directory {layout.state_dir} is not writable ({exc.strerror or exc}): fix its "
            f"permissions, or set {STATE_DIR_ENV} to a writable directory"
        ) from exc


def port_state(layout: Layout, timeout: float = 3.0) -> Port:
    """What answers on the local server port."""
    try:
        with socket.create_connection((HOST, layout.port), timeout=1.0):
            pass
    except OSError:
        return Port.FREE
    return Port.PREFECT if healthy(layout.api_url, timeout) else Port.OTHER


def healthy(api_url: str, timeout: float = 3.0) -> bool:
    """Whether a Prefect API answers its health check at `api_url`."""
    answer = http.get(f"{api_url}/health", timeout=timeout)
    return answer.status == 200 and answer.json() is True


def our_pid(layout: Layout) -> int | None:
    """The pid of the server we started for this state dir, if it still runs."""
    record = proc.read_record(record_path(layout))
    if record is None or not isinstance(record.get("pid"), int):
        return None
    pid: int = record["pid"]
    if proc.alive(pid) and is_ours(proc.cmdline(pid), "server", record.get("port")):
        return pid
    return None


def ensure_server(layout: Layout, say: Say) -> ServerInfo:
    """The server answering at `layout.api_url`: reused when it answers, else started and waited for."""
    if layout.external:
        return _external(layout)
    check_state_dir(layout)
    pid = our_pid(layout)
    recorded = proc.read_record(record_path(layout)) or {}
    if pid is not None and (gone := missing_files(recorded, os.path.exists)) is not None:
        say(f"the server (pid {pid}) runs from {gone}, which is gone: restarting it from {layout.root}")
        proc.stop(pid, grace_s=10.0)
        record_path(layout).unlink(missing_ok=True)
        pid = None
    verdict = judge_server(port_state(layout), pid is not None)
    if verdict is Verdict.REUSE:
        return ServerInfo(layout.api_url, pid, started=False, ours=True)
    if verdict is Verdict.REUSE_OTHER:
        say(f"reusing the Prefect server on {HOST}:{layout.port} (not started by this state dir)")
        return ServerInfo(layout.api_url, None, started=False, ours=False)
    if verdict is Verdict.TAKEN:
        raise ConfigError(
            f"something already listens on {HOST}:{layout.port} and is not a Prefect server: stop it, "
            f"or set {PORT_ENV} to a free port (e.g. {PORT_ENV}={layout.port + 1})"
        )
    started = False
    if pid is None:
        pid = _start(layout, say)
        started = True
        say(f"started server (pid {pid}) on {layout.ui_url}, database {layout.database}")
    _wait_healthy(layout, pid, say)
    return ServerInfo(layout.api_url, pid, started=started, ours=True)


def _external(layout: Layout) -> ServerInfo:
    def look(_: Deadline) -> bool | None:
        return True if healthy(layout.api_url, timeout=3.0) else None

    def timed_out(deadline: Deadline) -> ConfigError:
        return ConfigError(
            f"PREFECT_API_URL={layout.api_url} does not answer (no healthy /health within "
            f"{deadline.seconds:.0f}s): start that server, or unset PREFECT_API_URL to use the local "
            "control plane"
        )

    poll_until(look, EXTERNAL_WAIT_S, 1.0, timed_out)
    return ServerInfo(layout.api_url, None, started=False, ours=False)


def _start(layout: Layout, say: Say) -> int:
    legacy.adopt_history(layout, say)
    args = [prefect_executable(), "server", "start", "--host", HOST, "--port", str(layout.port)]
    log = layout.logs / "server.log"
    pid = proc.spawn(args, layout.env(), log)
    proc.write_record(
        record_path(layout),
        {
            "pid": pid,
            "port": layout.port,
            "api_url": layout.api_url,
            "started": time.time(),
            "log": str(log),
            "root": str(layout.root),
            "python": sys.executable,
        },
    )
    return pid


def _wait_healthy(layout: Layout, pid: int, say: Say) -> None:
    load, cores = proc.load()
    patience = startup_patience(load, cores)
    log = layout.logs / "server.log"
    said = 0

    def look(deadline: Deadline) -> bool | None:
        nonlocal said
        if healthy(layout.api_url, timeout=3.0):
            return True
        if not proc.alive(pid):
            tail = _tail(log)
            raise ControlPlaneError(
                f"the Prefect server (pid {pid}) exited before answering; see {log}"
                + (f": {tail}" if tail else "")
            )
        if patience.notices(deadline.elapsed, said):
            said += 1
            now_load, _ = proc.load()
            say(
                slow_message(
                    f"the Prefect server on {layout.ui_url}", deadline.elapsed, patience, now_load, cores
                )
            )
        return None

    def timed_out(deadline: Deadline) -> ControlPlaneError:
        now_load, _ = proc.load()
        return ControlPlaneError(
            f"the Prefect server (pid {pid}) did not answer within {deadline.seconds:.0f}s (load average "
            f"{now_load:.1f} on {cores} cores); it keeps starting in the background: run the command again, "
            f"or see {log}"
        )

    poll_until(look, patience.seconds, POLL_S, timed_out)


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def stop_server(layout: Layout, say: Say) -> bool:
    """Stop the server we started (never another one); whether there was one."""
    pid = our_pid(layout)
    record_path(layout).unlink(missing_ok=True)
    if pid is None:
        return False
    killed = proc.stop(pid, grace_s=10.0)
    say(f"stopped server (pid {pid}){' with SIGKILL' if killed else ''}")
    return True

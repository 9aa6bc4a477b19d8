"""Detached processes and their records: start in a session of their own, find, stop by pid.

The server and the worker outlive the command that started them; their pid (with what they
were started for) is recorded as JSON under the state dir. Only recorded pids are ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
from flows.controlplane.decisions import is_ours


def spawn(args: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> int:
    """Start `args` detached (own session, no stdin), output appended to `log`; its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            args,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process.pid


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    """A process's command line, [] when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _pids() -> list[int]:
    """Every process of this host, by pid."""
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def children(pid: int) -> list[int]:
    """The direct children of `pid`."""
    found = []
    for child in _pids():
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(child)
    return found


def environment_value(pid: int, name: str) -> str | None:
    """One variable of a process's environment; None when unset, the process is gone or not ours to read."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = f"{name}=".encode()
    for entry in raw.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def running(role: str, api_url: str) -> list[int]:
    """This host's live Prefect `server`/`worker` processes (see `is_ours`) talking to `api_url`."""
    return [
        pid
        for pid in _pids()
        if is_ours(cmdline(pid), role) and environment_value(pid, "PREFECT_API_URL") == api_url and alive(pid)
    ]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal(pid: int, signum: signal.Signals) -> None:
    """`signum` to the process group `pid` leads, or to the process alone if it leads none."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _gone_within(pid: int, seconds: float, clock: Clock) -> bool:
    """Whether `pid` exited (reaped if it is our child) within `seconds`."""

    def gone(_: Deadline) -> bool | None:
        _reap(pid)
        return None if alive(pid) else True

    return poll_until(gone, seconds, 0.1, clock=clock) is True


def stop(pid: int, grace_s: float = 10.0, clock: Clock = SYSTEM_CLOCK) -> bool:
    """SIGTERM to the process group `pid` leads (twice: a worker ignores the first), SIGKILL after
    `grace_s`; whether it had to be killed."""
    for _ in range(2):
        _signal(pid, signal.SIGTERM)
        if _gone_within(pid, grace_s / 2, clock):
            return False
    _signal(pid, signal.SIGKILL)
    _gone_within(pid, 5.0, clock)
    return True


def read_record(path: Path) -> dict[str, Any] | None:
    """A recorded process (JSON object), None when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(path: Path, data: dict[str, Any]) -> None:
    """Record a process atomically (write, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    temporary.replace(path)


def load() -> tuple[float, int]:
    """The 1-minute load average and the number of cores."""
    try:
        one = os.getloadavg()[0]
    except OSError:
        one = 0.0
    return one, os.cpu_count() or 1

"""Pure decisions of the control plane, separate from the I/O that gathers their inputs.

- what to do about the server port (reuse ours, reuse another Prefect server, start, wait, refuse)
- whether a recorded server or worker may be reused (its files are there, the worker still polls)
- which runs a dead worker left orphaned
- which exit code a run's final state gives
- how long to wait for a slow server, and what to say while waiting
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

FINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
ACTIVE_STATES = ("PENDING", "RUNNING", "CANCELLING")

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_CRASHED = 3
EXIT_CANCELLED = 4
EXIT_INTERRUPTED = 130  # Ctrl-C: the run was cancelled on the user's request


class Port(Enum):
    """What answers on the server's port."""

    FREE = "free"  # connection refused
    PREFECT = "prefect"  # GET /api/health answered true
    OTHER = "other"  # something accepts connections but is not a (ready) Prefect server


class Verdict(Enum):
    """What an entry point does about the server."""

    REUSE = "reuse"  # our server answers
    REUSE_OTHER = "reuse-other"  # a Prefect server we did not start answers on the port: use it
    START = "start"
    WAIT = "wait"  # our server's process runs but does not answer yet
    TAKEN = "taken"  # another program holds the port


def judge_server(port: Port, ours_alive: bool) -> Verdict:
    """Whether to reuse, start or wait for the server, or refuse because the port is taken.

    `ours_alive`: the process recorded as the server we started still runs (and is a Prefect server).
    """
    if port is Port.PREFECT:
        return Verdict.REUSE if ours_alive else Verdict.REUSE_OTHER
    if ours_alive:
        return Verdict.WAIT
    return Verdict.START if port is Port.FREE else Verdict.TAKEN


def is_ours(cmdline: list[str], role: str, port: int | None = None) -> bool:
    """Whether a process command line is a Prefect `server`/`worker` we would have started.

    Guards against a recorded pid reused by an unrelated process.
    """
    words = [word.rsplit("/", 1)[-1] for word in cmdline]
    if not any(word.startswith("prefect") for word in words) or role not in words:
        return False
    return port is None or str(port) in words


def missing_files(record: Mapping[str, Any], exists: Callable[[str], bool]) -> str | None:
    """The recorded checkout or interpreter of a process that is gone from disk, if one is.

    A process started from a checkout that was deleted since keeps running on deleted files: its
    next import fails, and a worker would run flows from a directory that no longer exists. A
    record without these fields (an older one) is taken as it is.
    """
    for key in ("root", "python"):
        path = record.get(key)
        if isinstance(path, str) and path and not exists(path):
            return path
    return None


def stale_worker(heartbeat_age_s: float | None, running_s: float, stale_after_s: float) -> bool:
    """Whether a live worker process no longer polls: the server saw no heartbeat from it for
    `stale_after_s` (none at all counts from its start), and it has run longer than that."""
    if running_s < stale_after_s:
        return False
    return heartbeat_age_s is None or heartbeat_age_s > stale_after_s


def orphaned(state_type: str, infrastructure_pid: str | None, alive: bool) -> bool:
    """Whether a run of a dead worker can never end by itself: active, and its process is gone.

    A run with no process recorded yet was still being submitted by the dead worker; it is
    orphaned too. `alive` says whether `infrastructure_pid` runs on this host.
    """
    if state_type not in ACTIVE_STATES:
        return False
    return not infrastructure_pid or not alive


def exit_code(state_type: str, interrupted: bool = False) -> int:
    """The command's exit code for a run's final state (see EXIT_* above)."""
    if state_type == "COMPLETED":
        return EXIT_COMPLETED
    if state_type == "CANCELLED":
        return EXIT_INTERRUPTED if interrupted else EXIT_CANCELLED
    if state_type == "CRASHED":
        return EXIT_CRASHED
    return EXIT_FAILED


@dataclass(frozen=True)
class Patience:
    """How long to wait for a server to answer, and when to say that it is slow."""

    seconds: float
    notice_every: float

    def notices(self, elapsed: float, said: int) -> bool:
        """Whether another "still waiting" message is due after `elapsed` seconds (`said` so far)."""
        return elapsed >= self.notice_every * (said + 1)


def startup_patience(load: float, cores: int) -> Patience:
    """A longer (bounded) wait on a busy machine: 90 s, up to 300 s when the load exceeds the cores.

    A fresh database takes ~9 s on an idle machine, several times that with CPU-bound neighbours.
    """
    busy = max(load / max(cores, 1), 1.0)
    return Patience(seconds=min(90.0 * busy, 300.0), notice_every=15.0)


def slow_message(what: str, elapsed: float, patience: Patience, load: float, cores: int) -> str:
    """What to say while a server is slow to answer: what is slow, how busy the machine is, how long."""
    busy = " (the machine is busy)" if load > cores else ""
    return (
        f"{what} is not answering yet after {elapsed:.0f}s; load average {load:.1f} on {cores} "
        f"cores{busy}; waiting up to {patience.seconds:.0f}s"
    )

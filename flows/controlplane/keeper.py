"""The keeper: a small process beside the worker that starts it again when it dies or stops polling.

When the worker is killed, nobody marks its runs Crashed and no recovery can run (a recovery is
a flow run too, and needs a worker). The keeper looks at the worker's pid every `LOOK_S` (a
/proc read, no API call) and asks the server whether it still polls every `POLLS_EVERY_S`; when
it is gone it does what every entry point does (`worker.ensure_worker`): mark the dead worker's
orphaned runs Crashed (which starts their recovery on the server) and start a new worker.

It stops by itself when the checkout or interpreter it runs from is deleted (the next entry
point starts one from its own checkout) and when the server has not answered for `SERVER_GONE_S`
(`deliverypipeline server stop` stops it first anyway). Started by `ensure.up`, recorded in
`keeper.json`, run as `python -m flows.controlplane.keeper`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from flows.controlplane import processes as proc
from flows.controlplane import worker
from flows.controlplane.api import ControlPlaneApi
from flows.controlplane.decisions import missing_files
from flows.controlplane.layout import STATE_DIR_ENV, Layout, layout
from flows.errors import DeliveryError

MODULE = "flows.controlplane.keeper"
LOOK_S = 1.0
POLLS_EVERY_S = 30.0
SERVER_GONE_S = 120.0


def record_path(where: Layout) -> Path:
    """Where the keeper we started is recorded."""
    return where.records / "keeper.json"


def is_keeper(cmdline: list[str]) -> bool:
    """Whether a command line is a keeper's (guards against a recorded pid reused by another process)."""
    return MODULE in cmdline


def our_pid(where: Layout) -> int | None:
    """The pid of the keeper of this control plane, if it runs."""
    record = proc.read_record(record_path(where))
    if record is None or not isinstance(record.get("pid"), int) or record.get("api_url") != where.api_url:
        return None
    pid: int = record["pid"]
    return pid if proc.alive(pid) and is_keeper(proc.cmdline(pid)) else None


# How long a new keeper waits for the command that started it to write its record.
RECORD_GRACE_S = 10.0


def ensure_keeper(where: Layout, say: worker.Say) -> int:
    """The keeper's pid, started when it does not run (or runs from files that are gone).

    Under the worker's start lock: two entry points at once never start two keepers.
    """
    with worker.starting(where):
        return _ensure_keeper(where, say)


def _ensure_keeper(where: Layout, say: worker.Say) -> int:
    pid = our_pid(where)
    record = proc.read_record(record_path(where)) or {}
    if pid is not None and missing_files(record, os.path.exists) is None:
        return pid
    if pid is not None:
        proc.stop(pid, grace_s=5.0)
    env = {**where.env(), STATE_DIR_ENV: str(where.state_dir), "PREFECT_PORT": str(where.port)}
    log = where.logs / "keeper.log"
    pid = proc.spawn([sys.executable, "-m", MODULE], env, log, cwd=where.root)
    proc.write_record(
        record_path(where),
        {
            "pid": pid,
            "api_url": where.api_url,
            "started": time.time(),
            "log": str(log),
            "root": str(where.root),
            "python": sys.executable,
        },
    )
    say(f"started keeper (pid {pid}): starts the worker again if it dies, log {log}")
    return pid


def stop_keeper(where: Layout, say: worker.Say) -> bool:
    """Stop the keeper (before the worker, or it would start the worker again)."""
    pid = our_pid(where)
    record_path(where).unlink(missing_ok=True)
    if pid is None:
        return False
    proc.stop(pid, grace_s=5.0)
    say(f"stopped keeper (pid {pid})")
    return True


def died(where: Layout) -> bool:
    """Whether the worker we recorded is no longer running (a /proc read, no API call).

    No record at all (a worker of another state dir is reused) is looked at every POLLS_EVERY_S only.
    """
    return worker.record_path(where).exists() and worker.our_pid(where) is None


def replaced(where: Layout, age_s: float) -> bool:
    """Whether the keeper's record names another process than this one (once its starter wrote it)."""
    if age_s < RECORD_GRACE_S:
        return False
    record = proc.read_record(record_path(where)) or {}
    return record.get("pid") != os.getpid()


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} keeper: {message}", flush=True)


def keep(where: Layout, me: dict[str, Any]) -> str:
    """The keeper's loop; returns why it stopped."""
    asked = 0.0
    born = time.monotonic()
    unanswered_since: float | None = None
    with ControlPlaneApi(where.api_url) as client:
        while True:
            if (gone := missing_files(me, os.path.exists)) is not None:
                return f"{gone} is gone: the next entry point starts a keeper from its checkout"
            now = time.monotonic()
            if replaced(where, now - born):
                return "the control plane no longer records this keeper (stopped, or another took over)"
            due = now - asked >= POLLS_EVERY_S
            if due or died(where):
                asked = now
                try:
                    worker.ensure_worker(where, client, _say)
                    unanswered_since = None
                except DeliveryError as exc:
                    unanswered_since = unanswered_since or now
                    if now - unanswered_since >= SERVER_GONE_S:
                        return f"the server has not answered for {SERVER_GONE_S:.0f}s: {exc}"
                    _say(f"could not check the worker: {exc}")
            time.sleep(LOOK_S)


def main() -> int:
    """Run the keeper of the control plane the environment names (see `layout`)."""
    where = layout()
    me = {"root": str(where.root), "python": sys.executable}
    _say(f"keeping the worker of {where.api_url} (state dir {where.state_dir})")
    _say(f"stopped: {keep(where, me)}")
    return 0


if __name__ == "__main__":  # pragma: no cover - started by ensure_keeper
    sys.exit(main())

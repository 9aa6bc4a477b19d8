"""The control plane an older version kept inside a checkout (`<checkout>/.state`), carried over once.

Before the control plane belonged to the machine, its database, logs and process records lived in
the checkout's `.state/`. The first time the machine's server is started on an empty database, the
checkout's run history is copied in (so no run is lost by the move), and `deliverypipeline server
stop` also stops a server or worker such a checkout still records.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from flows.controlplane import processes as proc
from flows.controlplane.decisions import is_ours
from flows.controlplane.layout import Layout

Say = Callable[[str], None]
DIR = ".state"
SQLITE_PARTS = ("", "-wal", "-shm")  # the database and the journal files beside it


def legacy_dir(where: Layout) -> Path:
    """The state dir an older version used in this checkout."""
    return where.root / DIR


def adopt_history(where: Layout, say: Say) -> bool:
    """Copy the checkout's old database into an empty machine state dir; whether it did.

    Called only before our server starts (the port is free, so no server writes the old file).
    """
    old = legacy_dir(where) / "prefect" / "prefect.db"
    if where.database.exists() or not old.is_file() or old.resolve() == where.database.resolve():
        return False
    where.database.parent.mkdir(parents=True, exist_ok=True)
    for suffix in SQLITE_PARTS:
        part = old.with_name(old.name + suffix)
        if part.is_file():
            shutil.copy2(part, where.database.with_name(where.database.name + suffix))
    say(f"copied the run history of {old} into {where.database} (the control plane is the machine's now)")
    return True


def stop_legacy(where: Layout, say: Say) -> bool:
    """Stop the worker and the server an older version recorded in this checkout; whether any ran."""
    records = legacy_dir(where) / "controlplane"
    stopped = False
    for role in ("worker", "server"):
        record = proc.read_record(records / f"{role}.json")
        pid = record.get("pid") if record else None
        if isinstance(pid, int) and proc.alive(pid) and is_ours(proc.cmdline(pid), role):
            for child in proc.children(pid) if role == "worker" else []:
                proc.stop(child, grace_s=10.0)
            proc.stop(pid, grace_s=10.0)
            say(f"stopped the {role} (pid {pid}) recorded in {records}")
            stopped = True
        (records / f"{role}.json").unlink(missing_ok=True)
    return stopped

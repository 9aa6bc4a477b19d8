"""Whether our recorded worker is reused: its files on disk, and the server still hearing it poll."""

from __future__ import annotations

import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flows.controlplane import worker
from flows.controlplane.api import ApiError
from flows.controlplane.layout import layout

ROOT = Path(__file__).resolve().parents[3]


class FakeApi:
    """The pool's workers as the server lists them."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def call(self, method: str, path: str, body: Any = None) -> Any:
        assert (method, path) == ("POST", "/work_pools/deliverypipeline/workers/filter")
        return self.rows


def heard(seconds_ago: float) -> dict[str, Any]:
    seen = (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()
    return {"name": worker.WORKER_NAME, "last_heartbeat_time": seen}


def test_the_last_poll_is_read_from_the_server() -> None:
    age = worker.heartbeat_age(FakeApi([{"name": "other"}, heard(12)]))  # type: ignore[arg-type]
    assert age is not None and 11 < age < 20
    assert worker.heartbeat_age(FakeApi([{"name": "other"}])) is None  # type: ignore[arg-type]


def test_a_worker_is_reused_only_with_its_files_and_while_it_polls(tmp_path: Path) -> None:
    where = layout({"DELIVERY_STATE_DIR": str(tmp_path)}, cwd=ROOT)
    here = {"root": str(ROOT), "python": sys.executable, "started": time.time() - 600}
    assert worker.not_reusable(where, FakeApi([heard(5)]), here) is None  # type: ignore[arg-type]
    gone = {**here, "root": str(tmp_path / "deleted-clone")}
    reason = worker.not_reusable(where, FakeApi([heard(5)]), gone)  # type: ignore[arg-type]
    assert reason == f"runs from {tmp_path}/deleted-clone, which is gone"
    hung = worker.not_reusable(where, FakeApi([heard(300)]), here)  # type: ignore[arg-type]
    assert hung == "has not polled pool deliverypipeline for over 90s"
    young = {**here, "started": time.time() - 5}
    assert worker.not_reusable(where, FakeApi([]), young) is None  # type: ignore[arg-type]  # not polled yet


class SilentApi:
    """A server that does not answer (busy SQLite, restarting)."""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        raise ApiError("the control plane's API did not answer", 503)


def test_a_server_that_does_not_answer_never_gets_a_polling_worker_replaced(tmp_path: Path) -> None:
    where = layout({"DELIVERY_STATE_DIR": str(tmp_path)}, cwd=ROOT)
    here = {"root": str(ROOT), "python": sys.executable, "started": time.time() - 600}
    assert worker.not_reusable(where, SilentApi(), here) is None  # type: ignore[arg-type]


class PoolRuns:
    """Active runs of the pool as the server lists them, and the states set on them."""

    def __init__(self, runs: list[SimpleNamespace]) -> None:
        self.runs = runs
        self.crashed: list[str] = []

    def read_flow_runs_in_pool(self, pool: str, state_types: Any) -> list[SimpleNamespace]:
        return self.runs

    def set_flow_run_state(self, run_id: str, state: Any, force: bool = False) -> str:
        self.crashed.append(run_id)
        return "ACCEPT"


def test_only_this_hosts_orphaned_runs_are_marked_crashed() -> None:
    dead = 2**22 + 12345  # above any pid this machine hands out
    here = SimpleNamespace(
        id="here", name="r1", state_type="RUNNING", infrastructure_pid=f"{socket.gethostname()}:{dead}"
    )
    there = SimpleNamespace(
        id="there", name="r2", state_type="RUNNING", infrastructure_pid=f"other-host:{dead}"
    )
    api = PoolRuns([here, there])
    assert worker.reconcile(api, lambda line: None) == ["here"]  # type: ignore[arg-type]
    assert api.crashed == ["here"]

"""An older checkout's control plane: its run history carried over once, its processes stopped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from flows.controlplane import legacy
from flows.controlplane import processes as proc
from flows.controlplane.layout import layout

ROOT = Path(__file__).resolve().parents[3]


def checkout_with_old_state(tmp_path: Path) -> Path:
    checkout = tmp_path / "checkout"
    (checkout / ".state" / "prefect").mkdir(parents=True)
    shutil.copy(ROOT / "prefect.yaml", checkout / "prefect.yaml")
    (checkout / ".state" / "prefect" / "prefect.db").write_bytes(b"old history")
    (checkout / ".state" / "prefect" / "prefect.db-wal").write_bytes(b"its journal")
    return checkout


def test_the_checkouts_history_is_copied_into_an_empty_machine_state_dir_once(tmp_path: Path) -> None:
    checkout = checkout_with_old_state(tmp_path)
    where = layout({"DELIVERY_STATE_DIR": str(tmp_path / "machine")}, cwd=checkout)
    said: list[str] = []
    assert legacy.adopt_history(where, said.append)
    assert where.database.read_bytes() == b"old history"
    assert where.database.with_name("prefect.db-wal").read_bytes() == b"its journal"
    assert "copied the run history of" in said[0]
    (checkout / ".state" / "prefect" / "prefect.db").write_bytes(b"newer")
    assert not legacy.adopt_history(where, said.append)  # the machine's database is never overwritten
    assert where.database.read_bytes() == b"old history"


def test_a_checkout_without_old_state_copies_nothing(tmp_path: Path) -> None:
    checkout = tmp_path / "fresh-clone"
    checkout.mkdir()
    shutil.copy(ROOT / "prefect.yaml", checkout / "prefect.yaml")
    where = layout({"DELIVERY_STATE_DIR": str(tmp_path / "machine")}, cwd=checkout)
    assert not legacy.adopt_history(where, lambda _: None)
    assert not where.database.exists()


def test_stopping_leaves_a_recorded_pid_that_is_not_a_prefect_process(tmp_path: Path) -> None:
    checkout = checkout_with_old_state(tmp_path)
    proc.write_record(checkout / ".state" / "controlplane" / "server.json", {"pid": os.getpid()})
    where = layout({"DELIVERY_STATE_DIR": str(tmp_path / "machine")}, cwd=checkout)
    said: list[str] = []
    assert not legacy.stop_legacy(where, said.append)  # this test process is no Prefect server
    assert said == [] and not (checkout / ".state" / "controlplane" / "server.json").exists()

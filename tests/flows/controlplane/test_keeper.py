"""The keeper: recorded, told from a reused pid, stopped first, and started only when it is not running."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flows.controlplane import keeper
from flows.controlplane import processes as proc
from flows.controlplane.layout import layout

ROOT = Path(__file__).resolve().parents[3]


def test_a_keeper_is_told_by_its_command_line() -> None:
    assert keeper.is_keeper([sys.executable, "-m", "flows.controlplane.keeper"])
    assert not keeper.is_keeper(["/usr/bin/python3", "-m", "http.server"])


def test_a_recorded_pid_that_is_not_a_keeper_is_not_ours_and_not_stopped(tmp_path: Path) -> None:
    where = layout({"DELIVERY_STATE_DIR": str(tmp_path)}, cwd=ROOT)
    proc.write_record(keeper.record_path(where), {"pid": os.getpid(), "api_url": where.api_url})
    assert keeper.our_pid(where) is None  # this test process is no keeper
    said: list[str] = []
    assert not keeper.stop_keeper(where, said.append)
    assert said == [] and not keeper.record_path(where).exists()


def test_the_keeper_stops_by_itself_when_its_checkout_is_gone(tmp_path: Path) -> None:
    where = layout({"DELIVERY_STATE_DIR": str(tmp_path)}, cwd=ROOT)
    gone = {"root": str(tmp_path / "deleted-checkout"), "python": sys.executable}
    assert "deleted-checkout is gone" in keeper.keep(where, gone)


def test_a_keeper_the_record_no_longer_names_knows_it_was_replaced(tmp_path: Path) -> None:
    where = layout({"DELIVERY_STATE_DIR": str(tmp_path)}, cwd=ROOT)
    assert not keeper.replaced(where, 0.0)  # its starter has not written the record yet
    proc.write_record(keeper.record_path(where), {"pid": os.getpid()})
    assert not keeper.replaced(where, keeper.RECORD_GRACE_S + 1)
    proc.write_record(keeper.record_path(where), {"pid": os.getpid() + 1})  # another keeper's
    assert keeper.replaced(where, keeper.RECORD_GRACE_S + 1)
    keeper.record_path(where).unlink()  # `make stop` removed it
    assert keeper.replaced(where, keeper.RECORD_GRACE_S + 1)

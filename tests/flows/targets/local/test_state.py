"""The local target's persisted state: roles, serving containers, versions, update marks, events."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.targets.local.containers import Registration
from flows.targets.local.plans import PREPROD, PROD
from flows.targets.local.state import (
    EventLog,
    LocalState,
    LockTimeout,
    Serving,
    StateFile,
    UpdateMark,
    file_lock,
    live_marks,
    pid_alive,
    settle_roles,
    swapped,
)
from tests.flows.fakes import FakeClock

ENVS = ("node-1", "node-2")


def test_state_round_trips_through_json() -> None:
    state = LocalState(
        roles={PROD: "node-2", PREPROD: "node-1"},
        current={"node-2": Serving("app-node-2-v1", 32768, "v1")},
        versions={"v1": Registration("127.0.0.1:5000/app:v1", 8080)},
        updating={"node-1": UpdateMark("v2", 123, "2026-11-27T10:00:00+00:00")},
        retiring={"app-node-1-v0": 123},
    )
    assert LocalState.from_json(state.to_json()) == state
    assert LocalState.from_json("") == LocalState()
    assert state.role_of("node-1") == PREPROD
    with pytest.raises(KeyError):
        state.role_of("node-3")


def test_an_empty_target_puts_prod_on_the_first_environment() -> None:
    assert settle_roles({}, ENVS) == {PROD: "node-1", PREPROD: "node-2"}


def test_recorded_roles_are_kept_when_they_name_the_configured_environments() -> None:
    roles = {PROD: "node-2", PREPROD: "node-1"}
    assert settle_roles(roles, ENVS) == roles


@pytest.mark.parametrize(
    "roles",
    [
        {PROD: "blue", PREPROD: "green"},  # environments renamed in the configuration
        {PROD: "node-1", PREPROD: "node-1"},
        {PROD: "node-1"},
    ],
)
def test_roles_not_matching_the_configuration_fall_back_to_the_default(roles: dict[str, str]) -> None:
    assert settle_roles(roles, ENVS) == {PROD: "node-1", PREPROD: "node-2"}


def test_swapped_exchanges_the_addresses() -> None:
    assert swapped({PROD: "node-1", PREPROD: "node-2"}) == {PROD: "node-2", PREPROD: "node-1"}


def test_update_marks_of_dead_processes_are_ignored() -> None:
    marks = {"node-1": UpdateMark("v2", 11, "t"), "node-2": UpdateMark("v3", 22, "t")}
    assert live_marks(marks, {22}) == {"node-2": marks["node-2"]}
    assert pid_alive(os.getpid())


def test_state_file_update_is_written_and_read_back(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "state")
    assert store.read() == LocalState()
    with store.update() as state:
        state.roles = {PROD: "node-2", PREPROD: "node-1"}
        state.current["node-2"] = Serving("c", 1234, "v1")
    assert store.read().roles == {PROD: "node-2", PREPROD: "node-1"}
    assert store.read().current == {"node-2": Serving("c", 1234, "v1")}
    assert not list((tmp_path / "state").glob("*.tmp*"))


def test_a_failed_update_leaves_the_state_unchanged(tmp_path: Path) -> None:
    store = StateFile(tmp_path)
    with store.update() as state:
        state.roles = {PROD: "node-1", PREPROD: "node-2"}
    with pytest.raises(RuntimeError), store.update() as state:
        state.roles = {}
        raise RuntimeError("interrupted")
    assert store.read().roles == {PROD: "node-1", PREPROD: "node-2"}


def test_event_log_filters_by_environment_and_time(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    before = datetime.now(UTC) - timedelta(seconds=1)
    log.add("node-1", "created container a")
    log.add("node-2", "created container b")
    log.add("node-1", "unhealthy: probe failed", "ERROR")
    with log.path.open("a") as out:
        out.write('{"time": "cut by a cra')
    events = log.read("node-1", before)
    assert [(e.environment, e.severity, e.message) for e in events] == [
        ("node-1", "INFO", "created container a"),
        ("node-1", "ERROR", "unhealthy: probe failed"),
    ]
    assert log.read("node-1", events[0].time) == events[1:]
    assert log.read("node-1", before.replace(tzinfo=None) + timedelta(days=1)) == []
    assert EventLog(tmp_path / "none").read("node-1", before) == []


def test_a_lock_held_elsewhere_fails_at_its_deadline_and_is_free_after(tmp_path: Path) -> None:
    path = tmp_path / "ops.lock"
    expected = r"held .*ops\.lock for over 0s.*fuser"
    # flock locks belong to open files: a second open conflicts even in this process
    with file_lock(path), pytest.raises(LockTimeout, match=expected), file_lock(path, deadline=0.2):
        pass
    with file_lock(path, deadline=0.2):  # released: taken at once
        pass


def test_a_lock_wait_runs_on_the_given_clock(tmp_path: Path) -> None:
    path = tmp_path / "ops.lock"
    clock = FakeClock()
    with file_lock(path), pytest.raises(LockTimeout, match="for over 120s"), file_lock(path, clock=clock):
        pass
    assert clock.time == pytest.approx(120, abs=0.1)  # the whole default deadline, without waiting for it

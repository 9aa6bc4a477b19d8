"""The swarm's release lock over an in-memory compare-and-swap store and a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.targets import lease
from flows.targets.base import LockHolder
from flows.targets.lease import LeaseRecord, StoredLease, WallTime
from flows.targets.swarm.lock import HeldSwarmLock, LockObject, SwarmLockHeld, SwarmReleaseLock
from tests.flows.fakes import FakeClock

FIRST = LockHolder("release v1", "run-first", 101, "worker-a", "2026-12-01T09:00:00+00:00")
SECOND = LockHolder("release v2", "run-second", 202, "worker-b", "2026-12-01T09:05:00+00:00")


class MemoryStore:
    """A lock object with a version index: writes at a stale index lose, as the manager refuses them."""

    name = "app-release-lock"

    def __init__(self) -> None:
        self.index: int | None = None
        self.record: LeaseRecord | None = None
        self.writes = 0

    def read(self) -> LockObject | None:
        if self.index is None:
            return None
        stored = StoredLease(self.record, str(self.index), datetime.now(UTC)) if self.record else None
        return LockObject("cfg", self.index, stored)

    def create(self, record: LeaseRecord) -> bool:
        if self.index is not None:
            return False
        self.index, self.record = 1, record
        return True

    def write(self, current: LockObject, record: LeaseRecord | None) -> bool:
        if current.index != self.index or self.index is None:
            return False
        self.index += 1
        self.record = record
        self.writes += 1
        return True


def make(store: MemoryStore, wall: WallTime) -> SwarmReleaseLock:
    """A lock on `store`; locks of one test share one UTC time (as hosts with NTP do) and fake clock."""
    clock = wall.clock
    return SwarmReleaseLock(store, lease_s=60, renew_s=3600, skew_s=5, poll_s=1, clock=clock, wall=wall)


def test_first_run_creates_the_lock_and_frees_it() -> None:
    store, clock = MemoryStore(), FakeClock()
    lines: list[str] = []
    wall = WallTime(clock)
    with make(store, wall).hold(FIRST, 10, lines.append) as held:
        assert held.interrupted is None
        assert store.record is not None and store.record.holder == FIRST
    assert store.record is None
    assert lines[-1] == "released the swarm's release lock app-release-lock"


def test_a_second_run_waits_then_names_the_holder() -> None:
    store, clock = MemoryStore(), FakeClock()
    wall = WallTime(clock)
    first = make(store, wall).acquire(FIRST, 10, print)
    lines: list[str] = []
    with pytest.raises(SwarmLockHeld, match=r"held by release v1 \(run run-first"):
        make(store, wall).acquire(SECOND, 30, lines.append)
    assert len([line for line in lines if line.startswith("waiting")]) == 1  # one line per holder
    first.release(print)
    assert make(store, wall).acquire(SECOND, 10, print).interrupted is None


def test_an_expired_lease_is_taken_over_and_names_the_dead_holder() -> None:
    store, clock = MemoryStore(), FakeClock()
    wall = WallTime(clock)
    make(store, wall).acquire(FIRST, 10, print)  # never released: its holder was killed
    held = make(store, wall).acquire(SECOND, 120, print)
    assert held.interrupted == FIRST
    assert clock.now() >= 65  # lease + skew
    assert store.record is not None and store.record.holder == SECOND


def test_a_write_at_a_stale_version_loses() -> None:
    store = MemoryStore()
    assert store.create(lease.new_record(FIRST, "a", datetime.now(UTC), 60))
    seen = store.read()
    assert seen is not None
    assert store.write(seen, None)
    assert not store.write(seen, None)  # the same read, a second time: out of sequence


def test_a_lock_taken_over_meanwhile_is_lost_not_freed() -> None:
    store, clock = MemoryStore(), FakeClock()
    wall = WallTime(clock)
    held: HeldSwarmLock = make(store, wall).acquire(FIRST, 10, print)
    clock.sleep(100)
    make(store, wall).acquire(SECOND, 10, print)
    lines: list[str] = []
    assert not held.renew(lines.append)
    held.release(lines.append)
    assert store.record is not None and store.record.holder == SECOND
    assert "no longer ours" in lines[0]

"""The release lock's pure decisions: records, expiry, who may take the lock over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows.targets import lease
from flows.targets.base import LockHolder
from flows.targets.lease import StoredLease, Verdict, WallTime
from tests.flows.fakes import FakeClock

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOLDER = LockHolder("release v2", "run-a", 4242, "worker-a", "2026-12-01T09:00:00+00:00")


def stored(expires_in: float, record: bool = True) -> StoredLease:
    made = lease.LeaseRecord(HOLDER, "token-a", T0, T0 + timedelta(seconds=expires_in))
    return StoredLease(made if record else None, '"e1"', T0)


def test_no_object_is_created_a_live_lease_waits_an_expired_one_is_taken_over() -> None:
    assert lease.verdict(None, T0, 120, 10) is Verdict.CREATE
    assert lease.verdict(stored(60), T0 + timedelta(seconds=59), 120, 10) is Verdict.WAIT
    # expired, but hosts' clocks may differ: wait the skew too
    assert lease.verdict(stored(60), T0 + timedelta(seconds=65), 120, 10) is Verdict.WAIT
    assert lease.verdict(stored(60), T0 + timedelta(seconds=70), 120, 10) is Verdict.TAKE_OVER


def test_an_unreadable_object_expires_one_lease_after_it_was_written() -> None:
    garbage = stored(0, record=False)
    assert garbage.expiry(120) == T0 + timedelta(seconds=120)
    assert lease.verdict(garbage, T0 + timedelta(seconds=100), 120, 0) is Verdict.WAIT
    assert lease.verdict(garbage, T0 + timedelta(seconds=120), 120, 0) is Verdict.TAKE_OVER
    assert "unreadable lock object" in garbage.describe(120)


def test_a_record_survives_its_json_and_renewal_extends_it() -> None:
    record = lease.new_record(HOLDER, "token-a", T0, 120)
    assert lease.parse(lease.render(record)) == record
    again = lease.renewed(record, T0 + timedelta(seconds=30), 120)
    assert (again.expires, again.renewals, again.token) == (T0 + timedelta(seconds=150), 1, "token-a")
    assert record.describe() == (
        "release v2 (run run-a, pid 4242 on worker-a, since 2026-12-01T09:00:00+00:00), "
        "lease until 2026-12-01T09:02:00Z"
    )


def test_what_is_not_a_record_parses_to_none() -> None:
    for body in (b"", b"not json", b"[]", b'{"holder": {}}', b'{"format": 1}'):
        assert lease.parse(body) is None


def test_wall_time_follows_the_clock() -> None:
    clock = FakeClock()
    wall = WallTime(clock, start=T0)
    clock.sleep(90)
    assert wall.now() == T0 + timedelta(seconds=90)


def test_a_lease_is_ours_only_until_its_expiry_less_the_skew() -> None:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    record = lease.new_record(HOLDER, "token", start, 120)
    assert lease.still_ours(record, start + timedelta(seconds=109), 10)
    assert not lease.still_ours(record, start + timedelta(seconds=110), 10)


def test_a_held_lock_whose_lease_ran_out_refuses_the_next_change() -> None:
    from types import SimpleNamespace

    import pytest

    from flows.targets.aws.errors import AwsLockLost
    from flows.targets.aws.lock import HeldLock

    clock = FakeClock()
    wall = WallTime(clock)
    record = lease.new_record(HOLDER, "token", wall.now(), 120)
    fake_lock: object = SimpleNamespace(wall=wall, skew_s=10, renew_s=60, where="s3://bucket/locks/app.json")
    held = HeldLock(fake_lock, record, "etag")  # type: ignore[arg-type]
    held.check("swapping")  # fresh: ours
    clock.sleep(115)  # renewals failed meanwhile: another run may take it over soon
    with pytest.raises(AwsLockLost, match="not swapping: the lease ran out"):
        held.check("swapping")

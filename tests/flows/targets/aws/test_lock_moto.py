"""Two pipeline instances contend for the release lock in one (moto) S3 bucket.

moto 5.2.5 honours `IfNoneMatch='*'` and `IfMatch` on PutObject and `IfMatch` on DeleteObject
(412 PreconditionFailed otherwise), so the lock's conditional writes are exercised for real here;
the exact parameters are pinned by the Stubber tests of `test_lock.py`. Both targets share one
fake clock, so lease expiry takes no waiting; the renewal thread runs in real time (fractions of
a second).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from flows.targets import lease
from flows.targets.aws.clients import make_clients
from flows.targets.aws.errors import AwsLockHeld
from flows.targets.aws.settings import AwsSettings
from flows.targets.aws.target import ElasticBeanstalkTarget
from flows.targets.base import LockHolder
from tests.flows.fakes import FakeClock
from tests.flows.targets.aws.eb_world import BUCKET, REGION, aws_config

pytestmark = [pytest.mark.server, pytest.mark.slow]  # moto, in-process on 127.0.0.1

KEY = "deliverypipeline/locks/deliverypipeline.json"
FIRST = LockHolder("release v1", "run-first", 101, "worker-a", "2026-12-01T09:00:00+00:00")
SECOND = LockHolder("release v2", "run-second", 202, "worker-b", "2026-12-01T09:05:00+00:00")


def ignore(line: str) -> None:
    """A log that keeps nothing."""


def instance(
    endpoint: str, clock: FakeClock, renew_s: float = 0.05
) -> tuple[ElasticBeanstalkTarget, list[str]]:
    """One pipeline instance's target on the moto server: lease 60 s (fake), renewal `renew_s` (real)."""
    settings = AwsSettings(
        region=REGION,
        bucket=BUCKET,
        endpoint_url=endpoint,
        lock_lease=60,
        lock_renew=renew_s,
        lock_clock_skew=5,
    )
    config = aws_config(aws=settings)
    log: list[str] = []
    return ElasticBeanstalkTarget(config, make_clients(config), clock=clock, log=log.append), log


@pytest.fixture
def bucket(moto_endpoint: str) -> Any:
    """The bundle bucket on a fresh moto server; yields an S3 client to look into it."""
    config = aws_config(aws=AwsSettings(region=REGION, bucket=BUCKET, endpoint_url=moto_endpoint))
    s3 = make_clients(config).s3
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
    return s3


def holder_in(s3: Any) -> LockHolder | None:
    """Who the lock object names now, None without one."""
    try:
        body = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    record = lease.parse(body)
    assert record is not None
    return record.holder


def test_the_second_instance_waits_then_fails_naming_the_first(moto_endpoint: str, bucket: Any) -> None:
    clock = FakeClock()
    first, _ = instance(moto_endpoint, clock)
    second, second_log = instance(moto_endpoint, clock)

    with first.lock(FIRST, wait_s=60, log=ignore):
        assert holder_in(bucket) == FIRST
        with pytest.raises(AwsLockHeld) as failure, second.lock(SECOND, wait_s=30, log=second_log.append):
            pytest.fail("the second instance must not get the lock")
        assert holder_in(bucket) == FIRST  # untouched by the loser

    assert "release v1 (run run-first, pid 101 on worker-a" in str(failure.value)
    assert "lease until" in str(failure.value) and clock.time == 30
    assert any("waiting for the release lock" in line and "release v1" in line for line in second_log)
    assert holder_in(bucket) is None  # the first removed its own object at the end


def test_a_dead_holder_is_taken_over_after_its_lease_and_cannot_remove_the_new_lock(
    moto_endpoint: str, bucket: Any
) -> None:
    clock = FakeClock()
    dead, _ = instance(moto_endpoint, clock)
    second, second_log = instance(moto_endpoint, clock)
    held = dead.release_lock().acquire(FIRST, 0, ignore)  # taken, never renewed: its process died

    with second.lock(SECOND, wait_s=600, log=second_log.append):
        assert clock.time >= 65  # lease 60 s + skew 5 s, looked at every 10 s
        assert holder_in(bucket) == SECOND
        held.release(ignore)  # the "dead" holder wakes up and tries to remove its lock
        assert holder_in(bucket) == SECOND and held.lost is not None
    assert any("has expired: taking the lock over" in line for line in second_log)
    assert holder_in(bucket) is None


def test_renewal_keeps_the_lock_past_its_first_lease(moto_endpoint: str, bucket: Any) -> None:
    clock = FakeClock()
    first, _ = instance(moto_endpoint, clock, renew_s=0.02)
    second, _ = instance(moto_endpoint, clock)

    with first.lock(FIRST, wait_s=0, log=ignore):
        clock.sleep(600)  # ten leases later on the clock: only renewals keep it
        for _ in range(200):  # until the renewal thread wrote a lease that runs past now
            record = lease.parse(bucket.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
            if record is not None and record.expires > first.wall.now():
                break
            time.sleep(0.01)
        with pytest.raises(AwsLockHeld, match="release v1"), second.lock(SECOND, wait_s=0, log=ignore):
            pytest.fail("a renewed lease must not be taken over")
    assert holder_in(bucket) is None

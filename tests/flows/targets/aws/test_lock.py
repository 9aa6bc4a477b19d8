"""The S3 release lock against stubbed S3 answers: the exact conditional calls, contention, takeover.

S3 is a `Stubber`, so each test states what S3 holds and answers at each look; time is the fake
clock (the lease's UTC time follows it). The renewal thread is kept idle here (`lock_renew` is
long in real seconds); `test_lock_moto.py` runs it against a moto server.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY
from pydantic import ValidationError

from flows.errors import TargetError
from flows.targets import lease
from flows.targets.aws.errors import AwsLockError, AwsLockHeld, AwsLockLost
from flows.targets.aws.settings import AwsSettings
from flows.targets.aws.target import ElasticBeanstalkTarget
from flows.targets.base import LockHolder
from flows.targets.lease import LeaseRecord
from tests.flows.targets.aws.eb_world import BUCKET, NOWHERE, REGION, EbWorld, aws_config

LEASE_S = 7200.0  # fake-clock seconds (the renewal's hour of real seconds must be shorter)
KEY = "deliverypipeline/locks/deliverypipeline.json"
FIRST = LockHolder("release v1", "run-first", 101, "worker-a", "2026-12-01T09:00:00+00:00")
SECOND = LockHolder("release v2", "run-second", 202, "worker-b", "2026-12-01T09:05:00+00:00")


def lock_world(lease_s: float = LEASE_S, skew_s: float = 10) -> tuple[EbWorld, ElasticBeanstalkTarget]:
    """A target on stubbed S3, polling the lock every 10 s of the fake clock."""
    settings = AwsSettings(
        region=REGION,
        bucket=BUCKET,
        endpoint_url=NOWHERE,
        lock_lease=lease_s,
        lock_renew=3600,  # real seconds: the renewal thread stays idle in these tests
        lock_clock_skew=skew_s,
    )
    world = EbWorld(aws_config(aws=settings))
    return world, world.target()


def now(target: ElasticBeanstalkTarget) -> datetime:
    return target.wall.now()


def record_of(holder: LockHolder, expires: datetime, token: str = "their-token") -> LeaseRecord:
    return LeaseRecord(holder, token, expires - timedelta(seconds=120), expires)


def stored(world: EbWorld, record: LeaseRecord | None, etag: str = '"e-first"') -> None:
    """Queue GetObject: the lock object holds `record` (None: no object)."""
    if record is None:
        world.s3.add_client_error(
            "get_object", "NoSuchKey", "The specified key does not exist.", 404, expected_params=GET
        )
        return
    body = lease.render(record)
    world.s3.add_response(
        "get_object",
        {
            "Body": StreamingBody(io.BytesIO(body), len(body)),
            "ContentLength": len(body),
            "ETag": etag,
            "LastModified": record.acquired,
        },
        GET,
    )


GET = {"Bucket": BUCKET, "Key": KEY}


def put(world: EbWorld, condition: dict[str, str], etag: str = '"e-ours"') -> None:
    """Queue PutObject's success, expecting exactly `condition` (IfNoneMatch or IfMatch)."""
    world.s3.add_response(
        "put_object",
        {"ETag": etag},
        {**GET, "Body": ANY, "ContentType": "application/json", **condition},
    )


def put_refused(world: EbWorld, condition: dict[str, str]) -> None:
    """Queue PutObject refused with 412: another writer came first."""
    world.s3.add_client_error(
        "put_object",
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        412,
        expected_params={**GET, "Body": ANY, "ContentType": "application/json", **condition},
    )


def delete(world: EbWorld, etag: str = '"e-ours"', refused: str | None = None) -> None:
    """Queue DeleteObject with IfMatch=`etag`: done, or refused with `refused`'s code."""
    expected = {**GET, "IfMatch": etag}
    if refused is None:
        world.s3.add_response("delete_object", {}, expected)
    else:
        world.s3.add_client_error("delete_object", refused, "no", 412, expected_params=expected)


def written(world: EbWorld, index: int = -1) -> dict[str, Any]:
    """The record the target put in its `index`-th PutObject, as JSON."""
    puts = [params for name, params in world.calls if name == "PutObject"]
    record = lease.parse(puts[index]["Body"])
    assert record is not None
    return {"holder": record.holder, "expires": record.expires, "token": record.token}


def test_a_free_lock_is_created_only_if_absent_and_removed_only_if_still_ours() -> None:
    world, target = lock_world()
    stored(world, None)
    put(world, {"IfNoneMatch": "*"})
    delete(world, '"e-ours"')
    ran = []

    with target.lock(SECOND, wait_s=60, log=world.log.append):
        ran.append(world.operations())

    assert world.failed_calls == [("GetObject", "NoSuchKey")]  # no lock object yet
    assert ran == [["PutObject"]]
    assert world.operations() == ["PutObject", "DeleteObject"]
    record = written(world)
    assert record["holder"] == SECOND
    assert lease.iso(record["expires"]) == lease.iso(now(target) + timedelta(seconds=LEASE_S))
    assert any("took the release lock" in line and "release v2" in line for line in world.log)
    assert any("released the release lock" in line for line in world.log)
    assert world.clock.time == 0
    world.done()


def test_the_second_holder_waits_then_fails_naming_the_first_and_its_lease() -> None:
    world, target = lock_world()
    expires = now(target) + timedelta(seconds=110)
    for _ in range(4):  # looks at 0, 10, 20 and 30 s
        stored(world, record_of(FIRST, expires))

    with pytest.raises(AwsLockHeld) as failure, target.lock(SECOND, wait_s=30, log=world.log.append):
        pytest.fail("the block must not run")

    message = str(failure.value)
    assert isinstance(failure.value, TargetError)
    assert "release v1 (run run-first, pid 101 on worker-a" in message
    assert f"lease until {lease.iso(expires)}" in message
    assert f"aws s3api delete-object --bucket {BUCKET} --key {KEY}" in message and "re-run" in message
    assert world.clock.time == 30
    waiting = [line for line in world.log if line.startswith("waiting for the release lock")]
    assert len(waiting) == 1 and "release v1" in waiting[0]  # logged once per holder, not per look
    assert "PutObject" not in world.operations()
    world.done()


def test_an_expired_lease_is_taken_over_only_if_unchanged() -> None:
    world, target = lock_world(skew_s=10)
    expires = now(target) + timedelta(seconds=15)  # taken over from 25 s on (lease + skew)
    for _ in range(4):  # at 0, 10, 20 s: still theirs; at 30 s: expired
        stored(world, record_of(FIRST, expires), etag='"e-first"')
    put(world, {"IfMatch": '"e-first"'})
    delete(world)

    with target.lock(SECOND, wait_s=600, log=world.log.append):
        pass

    assert world.clock.time == 30
    assert written(world)["holder"] == SECOND
    assert any("has expired: taking the lock over" in line and "release v1" in line for line in world.log)
    world.done()


def test_two_takers_of_an_expired_lease_cannot_both_win() -> None:
    world, target = lock_world(skew_s=0)
    expired = now(target) - timedelta(seconds=1)
    stored(world, record_of(FIRST, expired), etag='"e-first"')
    put_refused(world, {"IfMatch": '"e-first"'})  # the other taker's put landed first
    winner = LockHolder("release v3", "run-third", 303, "worker-c", "2026-12-01T09:06:00+00:00")
    for _ in range(2):  # read again at once to name the winner, then at 10 s
        stored(world, record_of(winner, now(target) + timedelta(seconds=120)), etag='"e-third"')

    with (
        pytest.raises(AwsLockHeld, match=r"held by release v3 \(run run-third"),
        target.lock(SECOND, wait_s=10, log=world.log.append),
    ):
        pytest.fail("the block must not run")

    assert any("another run took the release lock first: release v3" in line for line in world.log)
    world.done()


def test_a_creation_race_is_lost_without_harm() -> None:
    world, target = lock_world()
    stored(world, None)
    put_refused(world, {"IfNoneMatch": "*"})
    stored(world, record_of(FIRST, now(target) + timedelta(seconds=120)))

    with pytest.raises(AwsLockHeld, match="release v1"), target.lock(SECOND, wait_s=0, log=world.log.append):
        pytest.fail("the block must not run")

    world.done()


def test_renewal_extends_the_lease_only_while_the_object_is_ours() -> None:
    world, target = lock_world()
    lock = target.release_lock()
    stored(world, None)
    put(world, {"IfNoneMatch": "*"}, etag='"e-1"')
    held = lock.acquire(SECOND, 0, world.log.append)
    world.clock.sleep(30)
    put(world, {"IfMatch": '"e-1"'}, etag='"e-2"')

    assert held.renew(world.log.append) is True
    assert held.etag == '"e-2"' and held.record.renewals == 1
    assert lease.iso(written(world)["expires"]) == lease.iso(now(target) + timedelta(seconds=LEASE_S))

    put_refused(world, {"IfMatch": '"e-2"'})  # someone replaced it: our lease had run out
    stored(world, record_of(FIRST, now(target) + timedelta(seconds=120)), etag='"e-other"')
    assert held.renew(world.log.append) is False
    assert held.lost is not None and "release v1" in held.lost
    world.done()


def test_a_failed_renewal_call_is_retried_at_the_next_renewal() -> None:
    world, target = lock_world()
    stored(world, None)
    put(world, {"IfNoneMatch": "*"}, etag='"e-1"')
    held = target.release_lock().acquire(SECOND, 0, world.log.append)
    world.s3.add_client_error("put_object", "SlowDown", "Please reduce your request rate.", 503)

    assert held.renew(world.log.append) is True
    assert held.lost is None and held.etag == '"e-1"'
    assert any("renewing the release lock failed, trying again" in line for line in world.log)
    world.done()


def test_release_leaves_an_object_that_is_no_longer_ours() -> None:
    world, target = lock_world()
    stored(world, None)
    put(world, {"IfNoneMatch": "*"})
    delete(world, '"e-ours"', refused="PreconditionFailed")
    stored(world, record_of(FIRST, now(target) + timedelta(seconds=120)), etag='"e-first"')

    with pytest.raises(AwsLockLost) as failure, target.lock(SECOND, wait_s=0, log=world.log.append):
        pass

    assert "release v1" in str(failure.value) and "deliverypipeline aws status" in str(failure.value)
    assert any("left the release lock as it is" in line for line in world.log)
    assert world.operations()[-1] == "GetObject"  # no unconditional delete follows
    world.done()


def test_an_error_of_the_block_is_not_replaced_by_the_lock() -> None:
    world, target = lock_world()
    stored(world, None)
    put(world, {"IfNoneMatch": "*"})
    delete(world)

    with (
        pytest.raises(RuntimeError, match="the block failed"),
        target.lock(SECOND, wait_s=0, log=world.log.append),
    ):
        raise RuntimeError("the block failed")

    assert world.operations()[-1] == "DeleteObject"
    world.done()


def test_a_missing_bucket_says_where_the_lock_lives() -> None:
    world, target = lock_world()
    world.s3.add_client_error("get_object", "NoSuchBucket", "The specified bucket does not exist", 404)

    with pytest.raises(AwsLockError) as failure, target.lock(SECOND, wait_s=60, log=world.log.append):
        pytest.fail("the block must not run")

    assert failure.value.code == "NoSuchBucket" and "aws.bucket" in str(failure.value)
    world.done()


def test_the_lease_must_outlast_its_renewal() -> None:
    with pytest.raises(ValidationError, match="lock_renew"):
        AwsSettings(lock_lease=30, lock_renew=30)

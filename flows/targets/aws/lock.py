"""The Elastic Beanstalk target's release lock: one S3 object, written only with conditional puts.

Two pipeline instances (on any hosts) that release to the same application share
`s3://<bucket>/<bundle_prefix>locks/<application>.json`. Taking the lock creates it with
`IfNoneMatch='*'` (only one creator wins); the holder renews its lease from a background thread
with `IfMatch=<its ETag>`; a run that finds the lease expired replaces it with `IfMatch=<the ETag
it read>` (only one taker wins); the holder removes it at the end with `IfMatch` too, so an object
that is no longer ours is left alone. The decisions are in `flows.targets.lease`.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from flows.clock import Clock, Deadline, poll_until
from flows.targets import lease, renewal
from flows.targets.aws.errors import AwsLockError, AwsLockHeld, AwsLockLost, translate
from flows.targets.aws.settings import AwsSettings
from flows.targets.base import LockHolder, Log
from flows.targets.lease import LeaseRecord, StoredLease, Verdict, WallTime
from flows.targets.renewal import Renewal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3's answers to a conditional write whose condition did not hold: another writer came first.
CONFLICTS = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404"})
# How long the end of the block waits for a renewal in flight before removing the object anyway.
RENEWAL_JOIN_S = 30.0


def is_conflict(error: ClientError) -> bool:
    """Whether a conditional S3 call failed because its condition did not hold (someone else wrote)."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code in CONFLICTS or status in {"412", "409"}


class S3ReleaseLock:
    """The lock object of one application, and the calls that read, take, renew and remove it."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        settings: AwsSettings,
        *,
        poll_s: float,
        clock: Clock,
        wall: WallTime | None = None,
    ) -> None:
        """The lock at `s3://bucket/key`, polled every `poll_s` on `clock` while it is held."""
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.lease_s = settings.lock_lease
        self.renew_s = settings.lock_renew
        self.skew_s = settings.lock_clock_skew
        self.poll_s = poll_s
        self.clock = clock
        self.wall = wall or WallTime(clock)

    @property
    def where(self) -> str:
        """The lock object's S3 URL."""
        return f"s3://{self.bucket}/{self.key}"

    # -- S3 I/O --------------------------------------------------------------------------

    def read(self) -> StoredLease | None:
        """The lock object as it is now, None if there is none."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self.key)
            body = response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, "GetObject") from exc
        except BotoCoreError as exc:
            raise self._error(exc, "GetObject") from exc
        return StoredLease(lease.parse(body), str(response["ETag"]), response["LastModified"])

    def write(self, record: LeaseRecord, *, if_match: str | None = None) -> str | None:
        """Store `record` only if the object is absent (or, with `if_match`, unchanged); its ETag.

        None when the condition did not hold: another run created, replaced or removed it first.
        """
        condition: dict[str, Any] = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        try:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=lease.render(record),
                ContentType="application/json",
                **condition,
            )
        except (ClientError, BotoCoreError) as exc:
            self._unless_conflict(exc, "PutObject")
            return None
        etag = response.get("ETag")
        if not etag:
            raise AwsLockError("PutObject", "", "S3 answered without an ETag", "re-run the release")
        return str(etag)

    def remove(self, etag: str) -> bool:
        """Delete the object only if it still has `etag` (is ours); False if it changed or is gone."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except (ClientError, BotoCoreError) as exc:
            self._unless_conflict(exc, "DeleteObject")
            return False
        return True

    def _unless_conflict(self, exc: ClientError | BotoCoreError, operation: str) -> None:
        """Return when `exc` is S3 refusing the call's condition (someone else wrote); else raise it."""
        if isinstance(exc, ClientError) and is_conflict(exc):
            return
        raise self._error(exc, operation) from exc

    def _error(self, exc: Exception, operation: str) -> AwsLockError:
        return translate(
            exc,
            AwsLockError,
            f"{operation} {self.where}",
            hint=(
                f"the release lock lives in aws.bucket ({self.bucket}): check it exists and that the "
                f"pipeline may s3:GetObject, s3:PutObject and s3:DeleteObject on {self.key} (README)"
            ),
        )

    # -- taking it -----------------------------------------------------------------------

    def acquire(self, holder: LockHolder, wait_s: float, log: Log) -> HeldLock:
        """Take the lock, waiting up to `wait_s` while another holder's lease lasts.

        Raises `AwsLockHeld` naming the holder and its lease expiry when the wait runs out.
        """
        token = uuid.uuid4().hex
        last: dict[str, StoredLease] = {}

        def look(deadline: Deadline) -> HeldLock | None:
            stored = self.read()
            now = self.wall.now()
            decision = lease.verdict(stored, now, self.lease_s, self.skew_s)
            if decision is Verdict.WAIT and stored is not None:
                previous = last.get("seen")
                if previous is None or _identity(previous) != _identity(stored):  # a new holder
                    log(
                        f"waiting for the release lock {self.where}: held by {stored.describe(self.lease_s)} "
                        f"(waited {deadline.elapsed:.0f} of {wait_s:.0f} s)"
                    )
                last["seen"] = stored
                return None
            record = lease.new_record(holder, token, now, self.lease_s)
            dead = (
                stored.record.holder if decision is Verdict.TAKE_OVER and stored and stored.record else None
            )
            if decision is Verdict.TAKE_OVER and stored is not None:
                log(f"the lease of {stored.describe(self.lease_s)} has expired: taking the lock over")
                etag = self.write(record, if_match=stored.etag)
            else:
                etag = self.write(record)
            if etag is None:  # another run created or took it between our read and our write
                winner = self.read()
                if winner is not None:
                    last["seen"] = winner
                    log(f"another run took the release lock first: {winner.describe(self.lease_s)}")
                return None
            log(
                f"took the release lock {self.where} for {holder.describe()} "
                f"(lease {self.lease_s:g} s, renewed every {self.renew_s:g} s)"
            )
            held = HeldLock(self, record, etag)
            held.interrupted = dead
            return held

        def timed_out(deadline: Deadline) -> AwsLockHeld:
            seen = last.get("seen")
            held_by = seen.describe(self.lease_s) if seen is not None else "another run"
            expiry = lease.iso(seen.expiry(self.lease_s)) if seen is not None else "?"
            return AwsLockHeld(
                self.where,
                "LockHeld",
                f"held by {held_by} after waiting {deadline.elapsed:.0f} s",
                f"wait for that run to finish (it renews its lease while it runs) and re-run, or give "
                f"the lock a longer wait; if that run is dead, its lease ends at {expiry} and the next "
                f"run takes the lock over; to free it at once, only when sure that run is gone: "
                f"`aws s3api delete-object --bucket {self.bucket} --key {self.key}`",
            )

        return poll_until(look, wait_s, self.poll_s, timed_out, clock=self.clock)

    def hold(self, holder: LockHolder, wait_s: float, log: Log) -> AbstractContextManager[HeldLock]:
        """Hold the lock for the block: take it, renew it in the background, remove it at the end.

        If another run replaced the lock object meanwhile (our lease had run out), a block that
        otherwise succeeded ends with `AwsLockLost`: that run may have changed the environments.
        """

        def lost(why: str) -> AwsLockLost:
            return AwsLockLost(
                self.where,
                "LockLost",
                why,
                "another run may have acted on the environments meanwhile: check them with "
                "`deliverypipeline aws status` before releasing again; raise aws.lock_lease if "
                "renewals are slow",
            )

        return renewal.hold(lambda: self.acquire(holder, wait_s, log), log, lost)


def _identity(stored: StoredLease) -> str:
    """Which acquisition a lock object is: its token (renewals keep it), else its ETag."""
    return stored.record.token if stored.record is not None else stored.etag


class HeldLock:
    """A lock this run holds: its current record and ETag, and the renewal thread."""

    def __init__(self, lock: S3ReleaseLock, record: LeaseRecord, etag: str) -> None:
        """Held with `record`, stored as `etag`."""
        self.lock = lock
        self.record = record
        self.etag = etag
        self.lost: str | None = None  # why the lock is no longer ours, once it is not
        self.interrupted: LockHolder | None = None  # the holder whose expired lease we took over
        self._renewal = Renewal(self.renew, lock.renew_s, "release-lock-renewal")

    def renew(self, log: Log) -> bool:
        """Extend the lease from now, only if the object is still ours; False once it is lost.

        A failed call (network, throttling) is logged and tried again at the next renewal.
        """
        record = lease.renewed(self.record, self.lock.wall.now(), self.lock.lease_s)
        try:
            etag = self.lock.write(record, if_match=self.etag)
        except AwsLockError as exc:
            log(f"renewing the release lock failed, trying again in {self.lock.renew_s:g} s: {exc}")
            return True
        if etag is None:
            self.lost = self._lost_reason()
            log(f"the release lock is no longer ours: {self.lost}")
            return False
        self.record, self.etag = record, etag
        return True

    def check(self, action: str) -> None:
        """Raise `AwsLockLost` before `action` unless the lock is still surely ours.

        Called before every change to the environments, so a run whose lease ran out (renewals
        failing, a stalled process) stops before it could overlap the run that took over.
        """
        reason = self.lost
        if reason is None and not lease.still_ours(self.record, self.lock.wall.now(), self.lock.skew_s):
            reason = f"the lease ran out at {lease.iso(self.record.expires)} (renewals failed)"
        if reason is not None:
            raise AwsLockLost(
                self.lock.where,
                "LockLost",
                f"not {action}: {reason}",
                "another run may be acting on the environments: check them with "
                "`deliverypipeline aws status`, then release again",
            )

    def _lost_reason(self) -> str:
        try:
            now = self.lock.read()
        except AwsLockError as exc:
            return f"{self.lock.where} changed under us (reading it failed: {exc})"
        if now is None:
            return f"{self.lock.where} was removed by another run"
        return f"{self.lock.where} now holds {now.describe(self.lock.lease_s)}"

    def start_renewing(self, log: Log) -> None:
        """Renew every `aws.lock_renew` seconds in a daemon thread until `release`."""
        self._renewal.start(log)

    def release(self, log: Log) -> None:
        """Stop renewing and remove the lock object if it is still ours; never raises."""
        self._renewal.stop(RENEWAL_JOIN_S)
        if self.lost is not None:
            return
        try:
            removed = self.lock.remove(self.etag)
        except AwsLockError as exc:
            log(
                f"could not remove the release lock ({exc}); its lease ends at "
                f"{lease.iso(self.record.expires)}, then the next run takes it over"
            )
            return
        if removed:
            log(f"released the release lock {self.lock.where}")
        else:
            self.lost = self._lost_reason()
            log(f"left the release lock as it is, it is no longer ours: {self.lost}")

"""Pure decisions of a lease-held release lock: what a lease record says, whether it may be taken over.

Shared by the targets whose lock lives in an object of the platform (an S3 object for aws, a
Swarm config for swarm). No I/O here. The lock object holds one `LeaseRecord` as JSON:
who holds the lock, since when, and until when its lease lasts. These functions render and read
that record and decide, from it and the time, whether a pipeline run may take the lock now.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from flows.clock import Clock
from flows.targets.base import LockHolder

FORMAT = 1  # the record's layout version, stored with it


@dataclass(frozen=True)
class LeaseRecord:
    """What the lock object says: its holder, a token naming this acquisition, and the lease."""

    holder: LockHolder
    token: str
    acquired: datetime
    expires: datetime
    renewals: int = 0

    def describe(self) -> str:
        """The holder and its lease expiry, for logs and error messages."""
        return f"{self.holder.describe()}, lease until {iso(self.expires)}"


@dataclass(frozen=True)
class StoredLease:
    """The lock object as read from S3: its record (None when unreadable), ETag and LastModified."""

    record: LeaseRecord | None
    etag: str
    last_modified: datetime

    def expiry(self, lease_s: float) -> datetime:
        """When the lease ends: the record's expiry, or LastModified + one lease if unreadable."""
        if self.record is not None:
            return self.record.expires
        return as_utc(self.last_modified) + timedelta(seconds=lease_s)

    def describe(self, lease_s: float) -> str:
        """The holder and its lease expiry; an unreadable record is named as such."""
        if self.record is not None:
            return self.record.describe()
        return (
            f"an unreadable lock object (written {iso(self.last_modified)}), "
            f"lease until {iso(self.expiry(lease_s))}"
        )


class Verdict(Enum):
    """What a run that wants the lock may do now."""

    CREATE = "create"  # no lock object: create it (only if still absent)
    TAKE_OVER = "take over"  # the holder's lease expired: replace it (only if unchanged)
    WAIT = "wait"  # held: wait and look again


def verdict(stored: StoredLease | None, now: datetime, lease_s: float, skew_s: float) -> Verdict:
    """Whether the lock is free, expired (plus `skew_s` for hosts' clocks differing), or held."""
    if stored is None:
        return Verdict.CREATE
    if as_utc(now) >= stored.expiry(lease_s) + timedelta(seconds=skew_s):
        return Verdict.TAKE_OVER
    return Verdict.WAIT


def new_record(holder: LockHolder, token: str, now: datetime, lease_s: float) -> LeaseRecord:
    """The record of a fresh acquisition at `now`."""
    now = as_utc(now)
    return LeaseRecord(holder, token, acquired=now, expires=now + timedelta(seconds=lease_s))


def renewed(record: LeaseRecord, now: datetime, lease_s: float) -> LeaseRecord:
    """The record with its lease extended to `now + lease_s`."""
    return replace(record, expires=as_utc(now) + timedelta(seconds=lease_s), renewals=record.renewals + 1)


def render(record: LeaseRecord) -> bytes:
    """The record as stored in the lock object (JSON a person can read with `aws s3 cp - `)."""
    holder = record.holder
    data = {
        "format": FORMAT,
        "holder": {
            "operation": holder.operation,
            "run": holder.run,
            "pid": holder.pid,
            "host": holder.host,
            "started": holder.started,
        },
        "token": record.token,
        "acquired": iso(record.acquired),
        "expires": iso(record.expires),
        "renewals": record.renewals,
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def parse(body: bytes) -> LeaseRecord | None:
    """The record in a lock object's body; None when it is not one (then LastModified decides)."""
    try:
        data = json.loads(body)
        holder: Mapping[str, Any] = data["holder"]
        return LeaseRecord(
            holder=LockHolder(
                operation=str(holder["operation"]),
                run=str(holder["run"]),
                pid=int(holder["pid"]),
                host=str(holder["host"]),
                started=str(holder["started"]),
            ),
            token=str(data["token"]),
            acquired=as_utc(datetime.fromisoformat(str(data["acquired"]))),
            expires=as_utc(datetime.fromisoformat(str(data["expires"]))),
            renewals=int(data.get("renewals", 0)),
        )
    except (ValueError, TypeError, KeyError):
        return None


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second."""
    return as_utc(moment).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class WallTime:
    """Wall-clock time that advances with a `Clock`, so a fake clock drives lease expiry too.

    Leases are compared across hosts, so they are in UTC; the elapsed time since this object was
    made comes from the (monotonic, injectable) clock.
    """

    def __init__(self, clock: Clock, start: datetime | None = None) -> None:
        """Anchor `start` (default: the system's UTC time now) to the clock's present reading."""
        self.clock = clock
        self.start = as_utc(start or datetime.now(UTC))
        self.anchor = clock.now()

    def now(self) -> datetime:
        """The current UTC time as the clock has advanced it."""
        return self.start + timedelta(seconds=self.clock.now() - self.anchor)


def still_ours(record: LeaseRecord, now: datetime, skew_s: float) -> bool:
    """Whether our last successful renewal still covers now, with the clock skew to spare.

    Past that, another run may already have taken the lock over: acting then could overlap it.
    """
    return now < as_utc(record.expires) - timedelta(seconds=skew_s)

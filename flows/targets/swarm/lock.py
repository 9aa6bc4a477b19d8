"""The swarm target's release lock, held by the swarm itself: a Swarm config's labels.

Two pipelines on two machines that release to one swarm share the config
`<application>-release-lock`. Its label `deliverypipeline.lease` holds a lease record (holder,
token, expiry: `flows.targets.lease`, the same pure decisions as the S3 lock) or nothing when
free. Every write is a compare-and-swap on the config object's version (the manager refuses an
update "out of sequence"), so of two runs that read the same version only one wins; creating the
object is one too (names are unique). The holder renews from a background thread; a run that
finds the lease expired takes it over and is told whose release it interrupted; the holder frees
it at the end with one more compare-and-swap, leaving a lock that is no longer ours alone.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from flows.clock import Clock, Deadline, poll_until
from flows.targets import lease, renewal
from flows.targets.base import LockHolder, Log
from flows.targets.lease import LeaseRecord, StoredLease, Verdict, WallTime
from flows.targets.renewal import Renewal
from flows.targets.swarm.engine import SwarmEngine, SwarmError, parse_time

LABEL = "deliverypipeline.lease"
FREE = ""  # the label's value when no run holds the lock


class SwarmLockHeld(SwarmError):
    """Another run held the swarm's release lock past our wait; the message names it."""


class SwarmLockLost(SwarmError):
    """Another run took the lock over while we held it (our lease ran out)."""


@dataclass(frozen=True)
class LockObject:
    """The lock config as read: its id, its version index and its record (None: free)."""

    id: str
    index: int
    stored: StoredLease | None


class LockStore(Protocol):
    """Where the lock lives: reads, a create that only one run wins, compare-and-swap writes."""

    name: str

    def read(self) -> LockObject | None:
        """The lock object now, None if it was never made."""
        ...

    def create(self, record: LeaseRecord) -> bool:
        """Make it holding `record`; False if another run made it first."""
        ...

    def write(self, current: LockObject, record: LeaseRecord | None) -> bool:
        """Store `record` (None: free) only if the object is unchanged since `current`."""
        ...


class SwarmLockStore:
    """The config's reads and compare-and-swap writes."""

    def __init__(self, engine: SwarmEngine, application: str) -> None:
        """The lock of `application` on the swarm `engine` manages."""
        self.engine = engine
        self.name = f"{application}-release-lock"

    def read(self) -> LockObject | None:
        """The lock config now, None if it was never made."""
        api = self.engine.client.api
        with self.engine._calling(f"reading config {self.name}"):
            found = [c for c in api.configs(filters={"name": self.name}) if c["Spec"]["Name"] == self.name]
        if not found:
            return None
        config = found[0]
        value = (config["Spec"].get("Labels") or {}).get(LABEL, FREE)
        stored = None
        if value != FREE:
            stored = StoredLease(
                lease.parse(value.encode()),
                str(config["Version"]["Index"]),
                parse_time(config.get("UpdatedAt")),
            )
        return LockObject(config["ID"], int(config["Version"]["Index"]), stored)

    def create(self, record: LeaseRecord) -> bool:
        """Make the lock config holding `record`; False if another run made it first."""
        from docker.errors import APIError

        api = self.engine.client.api
        try:
            with self.engine._calling(f"creating config {self.name}"):
                api.create_config(
                    self.name, b"deliverypipeline release lock\n", labels={LABEL: _text(record)}
                )
        except SwarmError as exc:
            if isinstance(exc.__cause__, APIError) and exc.__cause__.status_code == 409:
                return False
            raise
        return True

    def write(self, current: LockObject, record: LeaseRecord | None) -> bool:
        """Store `record` (None: free) only if the config is still at `current.index`; False if not."""
        from docker.errors import APIError

        api = self.engine.client.api
        with self.engine._calling(f"reading config {self.name}"):
            spec: dict[str, Any] = api.inspect_config(current.id)["Spec"]
        spec["Labels"] = {**(spec.get("Labels") or {}), LABEL: _text(record) if record else FREE}
        url = api._url("/configs/{0}/update", current.id)
        try:
            with self.engine._calling(f"updating config {self.name}"):
                api._raise_for_status(api._post_json(url, params={"version": current.index}, data=spec))
        except SwarmError as exc:
            cause = exc.__cause__
            if isinstance(cause, APIError) and ("out of sequence" in str(cause) or cause.status_code == 404):
                return False
            raise
        return True


def _token(stored: StoredLease) -> str | None:
    """Which acquisition a stored lease is (renewals keep the token)."""
    return stored.record.token if stored.record is not None else None


def _text(record: LeaseRecord) -> str:
    return lease.render(record).decode()


class SwarmReleaseLock:
    """Take, renew and free the swarm's release lock."""

    def __init__(
        self,
        store: LockStore,
        *,
        lease_s: float,
        renew_s: float,
        skew_s: float,
        poll_s: float,
        clock: Clock,
        wall: WallTime | None = None,
    ) -> None:
        """Leases of `lease_s`, renewed every `renew_s`, taken over `skew_s` after they expire.

        `wall`: the UTC time leases are compared in (default: the system's, advancing with `clock`).
        """
        self.store = store
        self.lease_s, self.renew_s, self.skew_s, self.poll_s = lease_s, renew_s, skew_s, poll_s
        self.clock = clock
        self.wall = wall or WallTime(clock)

    def acquire(self, holder: LockHolder, wait_s: float, log: Log) -> HeldSwarmLock:
        """Take the lock, waiting up to `wait_s` while another run's lease lasts."""
        token = uuid.uuid4().hex
        seen: list[StoredLease] = []

        def look(deadline: Deadline) -> HeldSwarmLock | None:
            current = self.store.read()
            now = self.wall.now()
            record = lease.new_record(holder, token, now, self.lease_s)
            if current is None:
                return HeldSwarmLock(self, record, None) if self.store.create(record) else None
            decision = lease.verdict(current.stored, now, self.lease_s, self.skew_s)
            if decision is Verdict.WAIT and current.stored is not None:
                if not seen or _token(seen[-1]) != _token(current.stored):  # a new holder
                    log(
                        f"waiting for the swarm's release lock {self.store.name}: held by "
                        f"{current.stored.describe(self.lease_s)} "
                        f"(waited {deadline.elapsed:.0f} of {wait_s:.0f} s)"
                    )
                seen.append(current.stored)
                return None
            dead = current.stored.record.holder if current.stored and current.stored.record else None
            if current.stored is not None:
                expired = current.stored.describe(self.lease_s)
                log(f"the lease of {expired} has expired: taking the lock over")
            if not self.store.write(current, record):
                return None  # another run wrote between our read and our write: look again
            log(
                f"took the swarm's release lock {self.store.name} for {holder.describe()} "
                f"(lease {self.lease_s:g} s)"
            )
            return HeldSwarmLock(self, record, dead)

        def too_late(deadline: Deadline) -> SwarmLockHeld:
            held_by = seen[-1].describe(self.lease_s) if seen else "another run"
            return SwarmLockHeld(
                f"the swarm's release lock {self.store.name} is held by {held_by} after waiting "
                f"{deadline.elapsed:.0f} s; wait for that run (it renews its lease while it runs) or, if it "
                f"is dead, for its lease to end: the next run takes it over"
            )

        return poll_until(look, wait_s, self.poll_s, too_late, clock=self.clock)

    def hold(self, holder: LockHolder, wait_s: float, log: Log) -> AbstractContextManager[HeldSwarmLock]:
        """Hold the lock for the block: take it, renew it in the background, free it at the end.

        A block whose lock another run took over meanwhile ends with `SwarmLockLost`.
        """

        def lost(why: str) -> SwarmLockLost:
            return SwarmLockLost(
                f"the swarm's release lock was lost while held: {why}; another run may have acted "
                "on the services meanwhile: check `deliverypipeline swarm status` before releasing again"
            )

        return renewal.hold(lambda: self.acquire(holder, wait_s, log), log, lost)


class HeldSwarmLock:
    """A lock this run holds: its record, whose release it interrupted, the renewal thread."""

    def __init__(self, lock: SwarmReleaseLock, record: LeaseRecord, interrupted: LockHolder | None) -> None:
        """Held with `record`; `interrupted` is the holder whose expired lease was taken over."""
        self.lock = lock
        self.record = record
        self.interrupted = interrupted
        self.lost: str | None = None
        self._renewal = Renewal(self.renew, lock.renew_s, "swarm-lock-renewal")

    def _ours(self) -> LockObject | None:
        current = self.lock.store.read()
        if current is None or current.stored is None or current.stored.record is None:
            return None
        return current if current.stored.record.token == self.record.token else None

    def renew(self, log: Log) -> bool:
        """Extend the lease from now if the lock is still ours; False once it is lost."""
        try:
            current = self._ours()
            record = lease.renewed(self.record, self.lock.wall.now(), self.lock.lease_s)
            if current is not None and self.lock.store.write(current, record):
                self.record = record
                return True
        except SwarmError as exc:
            log(f"renewing the swarm's release lock failed, trying again in {self.lock.renew_s:g} s: {exc}")
            return True
        self.lost = "another run took it over or freed it"
        log(f"the swarm's release lock is no longer ours: {self.lost}")
        return False

    def start_renewing(self, log: Log) -> None:
        """Renew every `renew_s` seconds in a daemon thread until `release`."""
        self._renewal.start(log)

    def release(self, log: Log) -> None:
        """Stop renewing and free the lock if it is still ours; never raises."""
        self._renewal.stop(30)
        if self.lost is not None:
            return
        try:
            current = self._ours()
            if current is not None and self.lock.store.write(current, None):
                log(f"released the swarm's release lock {self.lock.store.name}")
                return
        except SwarmError as exc:
            log(
                f"could not free the swarm's release lock ({exc}); "
                f"its lease ends at {lease.iso(self.record.expires)}"
            )
            return
        self.lost = "another run took it over meanwhile"
        log(f"left the swarm's release lock as it is: {self.lost}")

"""Holding a lease: one daemon thread renewing it at an interval, and the block that holds it.

Shared by the targets whose release lock is a lease (aws, swarm): the holder renews while it
lives, so a holder that dies lets its lease expire and a later run takes the lock over; `hold`
takes, renews and frees a lease around a block, and tells a block whose lease was lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar, Protocol, Self, TypeVar

from pydantic import BaseModel, model_validator

from flows.targets.base import Log


class LeaseSettings(BaseModel):
    """A target's settings with a release lock held as a lease (its section declares the defaults)."""

    section: ClassVar[str]  # the configuration section, as error messages name the settings
    lock_lease: float  # seconds a holder's lease lasts unless renewed
    lock_renew: float  # seconds between renewals while the holder runs
    lock_clock_skew: float  # extra seconds past expiry before a takeover

    @model_validator(mode="after")
    def _renew_within_lease(self) -> Self:
        """A lease must be renewed before it runs out, or a live holder would lose it."""
        if self.lock_renew >= self.lock_lease:
            raise ValueError(
                f"{self.section}.lock_renew ({self.lock_renew:g} s) must be shorter than "
                f"{self.section}.lock_lease ({self.lock_lease:g} s): a live holder renews its lease "
                "before it expires"
            )
        return self


class HeldLease(Protocol):
    """A lease taken by this run: renewed until released, and why it was lost (None: still ours)."""

    lost: str | None

    def start_renewing(self, log: Log) -> None:
        """Renew in the background from now on."""
        ...

    def release(self, log: Log) -> None:
        """Stop renewing and free the lease if it is still ours; never raises."""
        ...


Held = TypeVar("Held", bound=HeldLease)


@contextmanager
def hold(acquire: Callable[[], Held], log: Log, lost: Callable[[str], Exception]) -> Iterator[Held]:
    """Hold a lease for the block: take it (`acquire`), renew it in the background, free it at the end.

    If another run took it over meanwhile (our lease had run out), a block that otherwise
    succeeded ends with the exception `lost(why)` makes: that run may have acted on the target.
    """
    held = acquire()
    held.start_renewing(log)
    try:
        yield held
    finally:
        held.release(log)
    if held.lost is not None:
        raise lost(held.lost)


class Renewal:
    """Calls `renew(log)` every `every_s` seconds in a daemon thread until it answers False or `stop`."""

    def __init__(self, renew: Callable[[Log], bool], every_s: float, name: str) -> None:
        """`renew` answers whether the lease is still ours (False ends it); `name` names the thread."""
        self.renew = renew
        self.every_s = every_s
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, log: Log) -> None:
        """Renew in the background from now on."""

        def loop() -> None:
            while not self._stop.wait(self.every_s):
                if not self.renew(log):
                    return

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, join_s: float) -> None:
        """Stop renewing, waiting up to `join_s` for a renewal in flight to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_s)

"""The renewal of a held lease: one daemon thread renewing it at an interval until told to stop.

Shared by the targets whose release lock is a lease (aws, swarm): the holder renews while it
lives, so a holder that dies lets its lease expire and a later run takes the lock over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flows.targets.base import Log


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

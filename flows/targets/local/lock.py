"""The local target's release lock: `flock` on `<state_dir>/release.lock`, the holder named inside.

The kernel frees a `flock` when its holder's process dies (even by SIGKILL), so a crashed
release never blocks the next one; the holder's record left in the file tells the next taker
that release was interrupted. The AWS target's counterpart is `flows.targets.aws.lock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
from flows.flock import try_lock
from flows.targets.base import LockHolder, Log
from flows.targets.local import guards
from flows.targets.local.errors import LockBusy


class ReleaseLock:
    """The target's exclusive release lock: `flock` on a file whose content names the holder.

    Independent of the short `ops.lock`/`state.lock` locks, which a holder keeps taking inside
    the block. Not re-entrant: one holder per process at a time.
    """

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK, poll_s: float = 0.2) -> None:
        """`path`: the lock file, created on first use."""
        self.path = path
        self.clock = clock
        self.poll_s = poll_s

    def holder(self) -> LockHolder | None:
        """Who holds the lock according to its record (stale once the lock is free)."""
        try:
            return guards.holder_from_json(self.path.read_text())
        except OSError:
            return None

    @contextlib.contextmanager
    def held(
        self, holder: LockHolder, wait_s: float, log: Log, before_unlock: Callable[[], None] | None = None
    ) -> Iterator[LockHolder | None]:
        """Hold the lock for the block, waiting up to `wait_s` and logging every few seconds.

        The block gets the holder whose record was still in the file: it died holding the lock
        (a clean holder empties the file when it lets go). `before_unlock` runs after the record
        is emptied but while the lock is still held: clean-up that must not be taken for an
        interrupted release if the holder dies during it. Raises `LockBusy` naming the holder.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            logged_at = -math.inf

            def look(deadline: Deadline) -> bool | None:
                nonlocal logged_at
                if try_lock(fd):
                    return True
                if deadline.elapsed - logged_at >= guards.LOCK_LOG_EVERY_S:
                    logged_at = deadline.elapsed
                    log(guards.lock_waiting_message(self.holder(), deadline.elapsed, wait_s))
                return None

            poll_until(
                look,
                wait_s,
                self.poll_s,
                lambda _: LockBusy(guards.lock_timeout_message(self.holder(), wait_s, self.path)),
                clock=self.clock,
            )
            try:
                left = os.pread(fd, 1 << 16, 0).decode(errors="replace")
                interrupted = guards.holder_from_json(left) if left.strip() else None
                os.ftruncate(fd, 0)
                os.pwrite(fd, guards.holder_json(holder).encode(), 0)
                yield interrupted
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                try:
                    if before_unlock is not None:
                        before_unlock()
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

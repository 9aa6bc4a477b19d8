"""Exclusive flocks on lock files: taken at once when free, or waited for up to a deadline.

The one lock mechanism of the project's lock files (the local target's ops, state and claims
locks, its release lock, the worker's start lock, the checkout slots): the kernel frees a flock
when its holder dies, so a crashed holder never leaves a lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until


def try_lock(file: int | IO[Any]) -> bool:
    """Take an exclusive flock on `file` (a descriptor or an open file) if it is free; whether it was."""
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def held(
    path: Path,
    seconds: float,
    interval: float,
    timed_out: Callable[[Deadline], BaseException],
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created, with its directory, if needed) for the block.

    Waits for the holder, looking every `interval` seconds, up to `seconds` on `clock`; then
    raises `timed_out(deadline)`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        poll_until(lambda _: True if try_lock(fd) else None, seconds, interval, timed_out, clock=clock)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

"""The target's release lock as the release stage takes it: who holds it, and holding it for a block.

Every operation that changes a target (a release, its recovery, a manual swap) holds the lock,
so two never overlap; the holder's identity is what a waiting operation logs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flows.config import PipelineConfig
from flows.release.facts import Log, quiet
from flows.targets.base import LockHolder, Target


def holder(operation: str, run: str) -> LockHolder:
    """This process as a lock holder, for `operation` in `run`."""
    return LockHolder(operation, run, os.getpid(), socket.gethostname(), datetime.now(UTC).isoformat())


@contextmanager
def locked(
    target: Target, who: LockHolder, config: PipelineConfig, log: Log = quiet
) -> Iterator[LockHolder | None]:
    """Hold the target's release lock (the safety against overlapping operations) for the block.

    The block gets the holder that died holding the lock, if one did (see `recover`).
    """
    with target.lock(who, config.deadlines.target_lock, log) as interrupted:
        log(f"holding the {target.name} target's lock: {who.describe()}")
        if interrupted is not None:
            log(f"the previous holder died holding the lock: {interrupted.describe()}")
        yield interrupted

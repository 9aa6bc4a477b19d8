"""The local target's exception branch: every error it raises is a `LocalTargetError`.

Kept in its own module so the executors, the lock and the jobs raise the same types without
importing each other; `flows.targets.local.target` re-exports the root.
"""

from __future__ import annotations

from flows.errors import TargetError


class LocalTargetError(TargetError):
    """A local target operation cannot proceed; the message says what to fix."""


class ProxyError(LocalTargetError):
    """The reverse proxy could not be started, reached or changed."""


class ContainerError(LocalTargetError):
    """A container could not be started, became unhealthy or could not be stopped."""


class LockBusy(LocalTargetError):
    """The release lock stayed held by another operation past the wait; the message names it."""


class PruneError(LocalTargetError):
    """An image could not be removed from the engine or the registry (logged, never fatal)."""

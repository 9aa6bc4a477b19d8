"""The local target's exception branch: every error it raises is a `LocalTargetError`.

Kept in its own module so the executor, the lock and the target raise the same type without
importing each other; `flows.targets.local.target` re-exports it.
"""

from __future__ import annotations

from flows.errors import TargetError


class LocalTargetError(TargetError):
    """A local target operation cannot proceed; the message says what to fix."""

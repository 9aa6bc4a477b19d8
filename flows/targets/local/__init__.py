"""The local Docker target: two environments as containers behind HAProxy on 127.0.0.1."""

from flows.targets.local.target import LocalTarget, LocalTargetError

__all__ = ["LocalTarget", "LocalTargetError"]

"""Following a target's events while a deploy runs: each new one into the log, the first failure kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flows.release.facts import Log
from flows.targets.base import Target, TargetEvent

FAILING_SEVERITIES = frozenset({"ERROR", "FATAL"})


@dataclass
class EventFollower:
    """Streams a target's new events into a log, and remembers the first failing one."""

    target: Target
    environment: str
    since: datetime
    log: Log
    seen: set[tuple[datetime, str]] = field(default_factory=set)
    failure: TargetEvent | None = None

    def poll(self) -> None:
        """Log events not yet logged; record the first ERROR/FATAL one."""
        for event in self.target.events(self.environment, self.since):
            key = (event.time, event.message)
            if key in self.seen:
                continue
            self.seen.add(key)
            self.log(f"[{event.environment}] {event.severity} {event.message}")
            if event.severity.upper() in FAILING_SEVERITIES and self.failure is None:
                self.failure = event

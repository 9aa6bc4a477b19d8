"""The swarm target's events: what the manager reports of a service, and the edge's own log.

Task failures on each node (a node that cannot pull the image is an ERROR naming it), tasks of
the version running, the service's update state (a rollback is an ERROR), and what the target
did at the edge (waves, swaps: `<state_dir>/edge/events.jsonl`), merged oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from flows.targets.base import TargetEvent
from flows.targets.swarm import decisions
from flows.targets.swarm.decisions import ServiceFacts, TaskFacts


def service_events(
    environment: str,
    service: ServiceFacts,
    tasks: Sequence[TaskFacts],
    hostnames: Mapping[str, str],
    since: datetime,
) -> list[TargetEvent]:
    """One environment's events after `since` from its service and tasks (pure), oldest first."""
    found = []
    for task in tasks:
        if task.time <= since:
            continue
        where = hostnames.get(task.node_id, task.node_id[:12])
        if task.state in ("failed", "rejected"):
            severity = "ERROR" if decisions.pull_failure(task) else "WARN"
            found.append(
                TargetEvent(
                    task.time, environment, severity, f"node {where}: task {task.state}: {task.error}"
                )
            )
        elif task.state == "running" and task.desired == "running":
            found.append(
                TargetEvent(task.time, environment, "INFO", f"node {where}: version {task.version} running")
            )
    if service.update_time is not None and service.update_time > since and service.update_state:
        failed = service.update_state in decisions.UPDATE_FAILED
        message = f"update {service.update_state}: {service.update_message}".rstrip(": ")
        found.append(TargetEvent(service.update_time, environment, "ERROR" if failed else "INFO", message))
    return sorted(found, key=lambda event: event.time)

"""What the control plane's API returns, as small typed records, and how they are read from its JSON.

One `FlowRun` type for every reader of the API (the CLI and its follower, the webhook receiver,
superseding, the run lifecycle, approval): its state, and the parameters, tags, deployment and
creation time that superseding decides on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class RunState:
    """A run's state: its type (SCHEDULED, RUNNING, COMPLETED...), its shown name and message."""

    type: str
    name: str
    message: str | None = None


@dataclass(frozen=True)
class FlowRun:
    """What the pipeline reads of a flow run."""

    id: UUID
    name: str
    state: RunState | None
    infrastructure_pid: str | None = None
    deployment_id: UUID | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    created: datetime | None = None

    @property
    def state_type(self) -> str:
        """Its state's type; a run the server gave no state yet is one just scheduled."""
        return self.state.type if self.state else "SCHEDULED"

    @property
    def state_name(self) -> str:
        """Its state's name as the UI shows it."""
        return self.state.name if self.state else "Scheduled"


@dataclass(frozen=True)
class LogLine:
    """One log line of a run; `task_run_id` is None for the flow's own lines."""

    timestamp: datetime
    level: int
    message: str
    task_run_id: UUID | None


@dataclass(frozen=True)
class Deployment:
    """A deployment: its id and the version it was deployed with."""

    id: UUID
    name: str
    version: str | None


@dataclass(frozen=True)
class Worker:
    """A worker the server knows for a pool, and whether it sees it polling (ONLINE)."""

    name: str
    status: str


def _state(data: Mapping[str, Any] | None) -> RunState | None:
    if not data:
        return None
    state_type = str(data.get("type", ""))
    return RunState(state_type, str(data.get("name") or state_type), data.get("message"))


def _uuid(value: Any) -> UUID | None:
    return UUID(str(value)) if value else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def flow_run(data: Mapping[str, Any]) -> FlowRun:
    """A flow run from the API's JSON."""
    return FlowRun(
        UUID(data["id"]),
        data.get("name", ""),
        _state(data.get("state")),
        data.get("infrastructure_pid"),
        _uuid(data.get("deployment_id")),
        dict(data.get("parameters") or {}),
        tuple(str(tag) for tag in data.get("tags") or ()),
        _time(data.get("created")),
    )


def log_line(data: Mapping[str, Any]) -> LogLine:
    """A log line from the API's JSON."""
    return LogLine(
        datetime.fromisoformat(data["timestamp"]),
        int(data.get("level", 20)),
        data.get("message", ""),
        _uuid(data.get("task_run_id")),
    )

"""What the local target remembers between processes, in small files under its state directory.

`state.json` holds which environment holds which address, each environment's serving container,
the registered versions (and the deploy history, for retention) and the environments being
updated; `events.jsonl` is the event log.
Writes are atomic (temp file + rename) under an exclusive lock, so the pipeline and the CLI can
read and change it concurrently. While the proxy runs, its runtime state is the truth about the
roles; this file is what restarts the proxy the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from flows import flock
from flows.clock import SYSTEM_CLOCK, Clock
from flows.errors import TargetError
from flows.targets.base import TargetEvent
from flows.targets.local.containers import Registration
from flows.targets.local.plans import PREPROD, PROD, ROLES


class JsonDocument:
    """A dataclass kept as one JSON object: `to_json` writes it, `json_object` reads one back."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_json(self) -> str:
        """Serialise as indented JSON with sorted keys."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def json_object(text: str) -> dict[str, Any]:
        """The JSON object `text` holds (empty text: an empty object)."""
        raw: dict[str, Any] = json.loads(text) if text.strip() else {}
        return raw


@dataclass(frozen=True)
class Serving:
    """The container currently serving an environment."""

    container: str
    port: int
    version: str


@dataclass(frozen=True)
class UpdateMark:
    """An environment being deployed by process `pid` since `since` (ISO time)."""

    version: str
    pid: int
    since: str


@dataclass
class LocalState(JsonDocument):
    """The whole persisted state of one local target."""

    roles: dict[str, str] = field(default_factory=dict)  # role (prod|preprod) -> environment
    current: dict[str, Serving] = field(default_factory=dict)  # environment -> its container
    versions: dict[str, Registration] = field(default_factory=dict)
    updating: dict[str, UpdateMark] = field(default_factory=dict)
    releases: list[str] = field(default_factory=list)  # deployed versions, most recent last
    # containers a deploy's clean-up is draining and stopping -> the pid of the process doing it
    retiring: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> LocalState:
        """Parse `state.json`; unknown keys are ignored so older files still load."""
        raw = cls.json_object(text)
        return cls(
            roles={str(k): str(v) for k, v in raw.get("roles", {}).items()},
            current={k: Serving(**v) for k, v in raw.get("current", {}).items()},
            versions={k: Registration(**v) for k, v in raw.get("versions", {}).items()},
            updating={k: UpdateMark(**v) for k, v in raw.get("updating", {}).items()},
            releases=[str(v) for v in raw.get("releases", [])],
            retiring={str(k): int(v) for k, v in raw.get("retiring", {}).items()},
        )

    def role_of(self, environment: str) -> str:
        """The role (prod or preprod) an environment holds."""
        for role, env in self.roles.items():
            if env == environment:
                return role
        raise KeyError(environment)


def settle_roles(roles: dict[str, str], environments: Sequence[str]) -> dict[str, str]:
    """Roles naming exactly the configured environments; otherwise the first is prod, the second preprod.

    The default makes a first release onto an empty target deploy into the second environment.
    """
    if set(roles) == set(ROLES) and sorted(roles.values()) == sorted(environments):
        return dict(roles)
    return {PROD: environments[0], PREPROD: environments[1]}


def swapped(roles: dict[str, str]) -> dict[str, str]:
    """The roles after a swap: each environment holds the other's address."""
    return {PROD: roles[PREPROD], PREPROD: roles[PROD]}


def live_marks(marks: dict[str, UpdateMark], alive: set[int]) -> dict[str, UpdateMark]:
    """Update marks whose deploying process still runs; a crashed deploy leaves no Updating forever."""
    return {env: mark for env, mark in marks.items() if mark.pid in alive}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Holders keep a lock for seconds (a state write, a proxy start, `down` retiring containers):
# waiting this long means a holder hung.
LOCK_DEADLINE_S = 120.0
LOCK_POLL_S = 0.05


class LockTimeout(TargetError):
    """Another process held one of the local target's lock files past the deadline."""


def file_lock(
    path: Path, deadline: float = LOCK_DEADLINE_S, clock: Clock = SYSTEM_CLOCK
) -> AbstractContextManager[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block.

    Waits for other holders up to `deadline` seconds (on `clock`), then raises `LockTimeout`.
    """
    return flock.held(
        path,
        deadline,
        LOCK_POLL_S,
        lambda _: LockTimeout(
            f"another process held {path} for over {deadline:.0f}s; look for a hung "
            f"`deliverypipeline` or pipeline process (`fuser -v {path}`) and stop it"
        ),
        clock=clock,
    )


class StateFile:
    """`state.json` under a lock: read it, or change it atomically."""

    def __init__(self, state_dir: Path) -> None:
        """Files live in `state_dir`, created on first write."""
        self.path = state_dir / "state.json"
        self.lock_path = state_dir / "state.lock"

    def read(self) -> LocalState:
        """The state as last written (empty when none yet)."""
        try:
            return LocalState.from_json(self.path.read_text())
        except FileNotFoundError:
            return LocalState()

    @contextmanager
    def update(self) -> Iterator[LocalState]:
        """Yield the state to change in place; written back atomically when the block succeeds."""
        with file_lock(self.lock_path):
            state = self.read()
            yield state
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(state.to_json())
            os.replace(tmp, self.path)


class EventLog:
    """The local target's event stream: one JSON line per container lifecycle event."""

    def __init__(self, state_dir: Path) -> None:
        """Events are appended to `<state_dir>/events.jsonl`."""
        self.path = state_dir / "events.jsonl"

    def add(self, environment: str, message: str, severity: str = "INFO") -> None:
        """Append one event, stamped now."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "time": datetime.now(UTC).isoformat(),
                "environment": environment,
                "severity": severity,
                "message": message,
            }
        )
        with self.path.open("a") as out:
            out.write(line + "\n")

    def read(self, environment: str, since: datetime) -> list[TargetEvent]:
        """Events of `environment` strictly after `since` (naive times are taken as UTC), oldest first."""
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            try:
                raw = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            event = TargetEvent(
                time=datetime.fromisoformat(raw["time"]),
                environment=raw["environment"],
                severity=raw["severity"],
                message=raw["message"],
            )
            if event.environment == environment and event.time > since:
                events.append(event)
        return events

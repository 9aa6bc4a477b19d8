"""The one small interface every deployment target implements, and the facts it reports.

A target looks like the seed's Elastic Beanstalk application: two long-lived environments,
each reachable at an address (prod or preprod), each running one version. The pipeline
decides *what* to do from these facts (see `decisions`); a target only carries it out.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

# Status and health use Elastic Beanstalk's vocabulary on every target, so one set of
# decisions serves all of them.
READY = "Ready"
UPDATING = "Updating"
LAUNCHING = "Launching"
TERMINATED = "Terminated"
MISSING = "Missing"

GREEN = "Green"
YELLOW = "Yellow"
RED = "Red"
GREY = "Grey"


@dataclass(frozen=True)
class Environment:
    """What a target reports about one environment at one moment."""

    name: str
    address: str  # local: "127.0.0.1:8081"; aws: the CNAME, e.g. "app-preprod.elasticbeanstalk.com"
    version: str | None  # the version label it runs, None if it runs nothing yet
    status: str  # Ready | Updating | Launching | Terminated | Missing
    health: str  # Green | Yellow | Red | Grey
    details: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TargetEvent:
    """One line of a target's event stream (EB events; local container lifecycle)."""

    time: datetime
    environment: str
    severity: str  # TRACE | DEBUG | INFO | WARN | ERROR | FATAL
    message: str


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or asks for) a target's release lock: shown to whoever waits for it."""

    operation: str  # "release v1.2.0", "manual swap", "down"
    run: str  # the flow run's id or name, or "cli"
    pid: int
    host: str
    started: str  # ISO 8601, UTC

    def describe(self) -> str:
        """One line: what holds the lock, since when, in which process."""
        return f"{self.operation} (run {self.run}, pid {self.pid} on {self.host}, since {self.started})"


@dataclass(frozen=True)
class TrafficCounters:
    """What an environment served so far, as the target itself counted it (all clients).

    Cumulative: the analysis subtracts two readings to judge a window. Latencies are what the
    target can tell: a mean over recent requests (HAProxy) and/or a p99 (EB enhanced health).
    """

    requests: int
    server_errors: int  # 5xx answers
    connection_errors: int  # requests that got no answer (connection or response errors)
    mean_response_ms: float | None = None
    p99_ms: float | None = None


Log = Callable[[str], None]


@runtime_checkable
class Target(Protocol):
    """Carries out the pipeline's decisions on one platform."""

    name: str

    def environments(self) -> list[Environment]:
        """Both environments as they are now."""
        ...

    def url(self, address: str) -> str:
        """The HTTP base URL through which an address (prod or preprod) is reached."""
        ...

    def register_version(self, version: str, bundle: dict[str, Any]) -> None:
        """Make a version deployable from its rendered `Dockerrun.aws.json`; idempotent."""
        ...

    def deploy(self, environment: str, version: str) -> None:
        """Start deploying a registered version to one environment; may return before ready."""
        ...

    def swap(self, first: str, second: str) -> None:
        """Exchange the addresses of two environments in one step."""
        ...

    def events(self, environment: str, since: datetime) -> list[TargetEvent]:
        """Events of one environment after `since`, oldest first."""
        ...

    def preflight(self) -> list[str]:
        """What would stop a release on this target, found before anything is built (empty: ready).

        Each problem is one line saying what is missing and what to do (no credentials, no such
        application or environment, no bucket, an address held by another target).
        """
        ...

    def reconcile(self) -> list[str]:
        """Bring the target back to its own record after crashes; one line per repair. Called under the lock.

        Local: serving containers a host or engine restart stopped start again, the proxy runs and
        points at them, orphan containers of killed deploys are removed. EB replaces its instances
        itself, so nothing there.
        """
        ...

    def lock(self, holder: LockHolder, wait_s: float, log: Log) -> AbstractContextManager[LockHolder | None]:
        """Hold the target's exclusive release lock for the block; the safety against overlaps.

        Waits up to `wait_s`, logging who holds it, then raises `TargetError` naming the holder.
        A holder that dies frees the lock (the kernel, or an expiring lease). The block gets the
        holder that died holding it (its release was interrupted), or None after a clean release.
        """
        ...

    def traffic(self, environment: str) -> TrafficCounters:
        """The environment's cumulative traffic counters, as the target counts all clients' requests."""
        ...

    def set_traffic_share(self, environment: str, percent: int) -> None:
        """Canary: send `percent` of prod's traffic to `environment` (0 ends it); see `supports_canary`."""
        ...

    @property
    def supports_canary(self) -> bool:
        """Whether `set_traffic_share` can split prod's traffic on this target."""
        ...

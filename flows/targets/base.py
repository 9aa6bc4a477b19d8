"""The one small interface every deployment target implements, and the facts it reports.

A target looks like the seed's Elastic Beanstalk application: two long-lived environments,
each reachable at an address (prod or preprod), each running one version. The pipeline
decides *what* to do from these facts (see `decisions`); a target only carries it out.
"""

from __future__ import annotations

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


class TargetError(RuntimeError):
    """A target operation failed; the message says what to check."""


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

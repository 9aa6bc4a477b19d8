"""The one small interface every deployment target implements, the facts it reports, and its contract.

A target looks like the seed's Elastic Beanstalk application: two long-lived environments,
each reachable at an address (prod or preprod), each running one version. The pipeline
decides *what* to do from these facts (see `flows.release.decisions`); a target only carries
it out.

The contract, for every method of `Target` (each method's docstring says it again):

- Failures are `flows.errors.TargetError` (a target's own branch of it, e.g.
  `LocalTargetError`, `AwsTargetError`) whose message says what was seen and what to do;
  never a bare SDK or OS exception. An unknown environment, an unregistered version, a refused
  swap, an unreachable platform: all `TargetError`.
- Every call is bounded in time: a wait inside a target has a deadline (`flows.clock.poll_until`
  on the target's clock), after which it raises `TargetError` (or, where the deadline is a
  normal end, returns what it has). Nothing waits for ever on a platform that stops answering.
- Reads (`environments`, `url`, `events`, `preflight`, `traffic`, `supports_canary`) change
  nothing and may be called at any time, also while another process releases.
- Idempotent: `register_version` (the same version and bundle twice is one registration),
  `reconcile` (a second call right after the first repairs nothing and returns []),
  `set_traffic_share(env, 0)` (always allowed, also on a target without canary).
  Not idempotent: `deploy` (each call replaces the environment's version, even with the same one)
  and `swap` (a plain exchange: a second swap undoes the first).
- `environments` reports exactly the configured environments, in configuration order, one holding
  the prod address and the other the preprod one (an empty environment is `Missing`, never absent).
- `deploy` may return before the environment is ready; `environments` then shows `Updating` until
  it is `Ready` with the new version and an accepted health. A failed deploy leaves the
  environment's previous version serving.
- `lock` is exclusive across processes and machines sharing the target; a dead holder frees it
  (the kernel, or an expiring lease); the next taker is told who died holding it.
- `traffic` counters are cumulative and never go back for one environment across swaps,
  deploys and restarts of the target's proxy.

A new target proves itself by passing the contract suite, `tests/flows/targets/contract.py`:
add one fixture to `tests/flows/targets/test_contract.py` that builds a `Stage` (the target, a
bundle of a deployable version, and the world's clock and waiting), and every check runs against
it. The fake target of the tests, the local target (with Docker) and the aws target (botocore
events and moto) pass it.
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
        """Both configured environments as they are now, in configuration order; a read.

        One holds the prod address, the other the preprod one; an environment with nothing
        deployed is `Missing`. Raises `TargetError` when the platform cannot be read.
        """
        ...

    def url(self, address: str) -> str:
        """The HTTP base URL through which an address (prod or preprod) is reached; a read."""
        ...

    def register_version(self, version: str, bundle: dict[str, Any]) -> None:
        """Make a version deployable from its rendered `Dockerrun.aws.json`; idempotent, bounded.

        The same version with the same bundle twice is one registration; a bundle that cannot be
        deployed (or, where versions are immutable, differs from the registered one) is a
        `TargetError`.
        """
        ...

    def deploy(self, environment: str, version: str) -> None:
        """Start deploying a registered version to one environment; may return before ready.

        Not idempotent (each call replaces the environment's version). Bounded: a target that
        blocks until the version serves does so within `deadlines.ready`. `environments` shows
        `Updating` until the environment is `Ready` with the version. An unknown environment or
        an unregistered version is a `TargetError`, and so is a version that never gets healthy;
        the environment's previous version then keeps serving.
        """
        ...

    def swap(self, first: str, second: str) -> None:
        """Exchange the addresses of two environments in one step; a second swap undoes it.

        Both addresses switch together (no moment where both point at one environment). An
        unknown environment, or one the platform cannot swap now, is a `TargetError` and
        nothing changes.
        """
        ...

    def events(self, environment: str, since: datetime) -> list[TargetEvent]:
        """Events of one environment strictly after `since`, oldest first; a read, bounded."""
        ...

    def preflight(self) -> list[str]:
        """What would stop a release on this target, found before anything is built (empty: ready).

        Each problem is one line saying what is missing and what to do (no credentials, no such
        application or environment, no bucket, an address held by another target). A read: starts,
        creates and changes nothing; problems are returned, not raised.
        """
        ...

    def reconcile(self) -> list[str]:
        """Bring the target back to its own record after crashes; one line per repair. Called under the lock.

        Local: serving containers a host or engine restart stopped start again, the proxy runs and
        points at them, orphan containers of killed deploys are removed. EB replaces its instances
        itself, so nothing there. Idempotent: called again at once, it returns [].
        """
        ...

    def lock(self, holder: LockHolder, wait_s: float, log: Log) -> AbstractContextManager[LockHolder | None]:
        """Hold the target's exclusive release lock for the block; the safety against overlaps.

        Waits up to `wait_s`, logging who holds it, then raises `TargetError` naming the holder.
        A holder that dies frees the lock (the kernel, or an expiring lease). The block gets the
        holder that died holding it (its release was interrupted), or None after a clean release.
        Exclusive across processes (and machines, where the target is shared); taken again at
        once after the block ends. The block's exit waits only for the target's own bounded
        clean-up.
        """
        ...

    def traffic(self, environment: str) -> TrafficCounters:
        """The environment's cumulative traffic counters, as the target counts all clients' requests.

        Never below an earlier reading of the same environment (across swaps, deploys and proxy
        restarts). A target that cannot count (no metrics) raises `TargetError`.
        """
        ...

    def set_traffic_share(self, environment: str, percent: int) -> None:
        """Canary: send `percent` of prod's traffic to `environment` (0 ends it); see `supports_canary`.

        0 is always accepted (idempotent). A share above 0 on a target without canary, or a
        percentage outside 0..100, is a `TargetError` and changes nothing.
        """
        ...

    @property
    def supports_canary(self) -> bool:
        """Whether `set_traffic_share` can split prod's traffic on this target."""
        ...

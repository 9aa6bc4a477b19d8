"""In-memory stand-ins for a target, a clock and an HTTP check, to test release logic without I/O."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flows.errors import TargetError
from flows.release.health import HealthReport, PathAnswer
from flows.release.settings import UserPath
from flows.targets.base import (
    GREEN,
    READY,
    UPDATING,
    Environment,
    LockHolder,
    TargetEvent,
    TrafficCounters,
)


class FakeClock:
    """A clock that advances only when slept on."""

    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.time += seconds


@dataclass
class FakeTarget:
    """Two environments whose addresses swap; deploys finish after `deploy_polls` looks.

    It passes the target contract (`tests/flows/targets/contract.py`): errors are `TargetError`,
    and with `known_versions` set, only registered versions deploy (the release tests leave it
    None: any version deploys without registering).
    """

    envs: dict[str, Environment]
    name: str = "fake"
    deploy_polls: int = 2
    health_after_deploy: str = GREEN
    events_after_deploy: list[TargetEvent] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    pending: dict[str, tuple[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what preflight reports
    lock_holder: LockHolder | None = None  # another holder: `lock` fails naming it
    interrupted: LockHolder | None = None  # a holder that died holding the lock (the next taker sees it)
    held_by: list[LockHolder] = field(default_factory=list)  # who took the lock, in order
    broken_versions: frozenset[str] = frozenset()  # versions whose user paths answer 500
    requests_per_look: int = 50  # traffic each counter reading adds per environment serving prod
    counters: dict[str, TrafficCounters] = field(default_factory=dict)
    shares: list[tuple[str, int]] = field(default_factory=list)
    canary: bool = True
    fail_swap_after: int | None = None  # swaps allowed before `swap` raises (the swap back fails)
    orphans: list[str] = field(default_factory=list)  # what killed operations left (`reconcile` removes)
    known_versions: set[str] | None = None  # registered versions; None: any version deploys

    @classmethod
    def pair(cls, prod_version: str | None = "v1", preprod_version: str | None = "v0") -> FakeTarget:
        return cls(
            envs={
                "node-1": Environment("node-1", "127.0.0.1:8080", prod_version, READY, GREEN),
                "node-2": Environment("node-2", "127.0.0.1:8081", preprod_version, READY, GREEN),
            }
        )

    def environments(self) -> list[Environment]:
        for name, (version, polls) in list(self.pending.items()):
            if polls <= 0:
                self.envs[name] = replace(
                    self.envs[name], version=version, status=READY, health=self.health_after_deploy
                )
                del self.pending[name]
            else:
                self.pending[name] = (version, polls - 1)
        return list(self.envs.values())

    def url(self, address: str) -> str:
        return f"http://{address}"

    def _known(self, environment: str) -> None:
        if environment not in self.envs:
            raise TargetError(f"unknown environment {environment!r}; this target has {', '.join(self.envs)}")

    def register_version(self, version: str, bundle: dict[str, Any]) -> None:
        if not isinstance(bundle.get("Image"), dict) or not bundle["Image"].get("Name"):
            raise TargetError(f"version {version}: the bundle has no Image.Name")
        self.calls.append(("register_version", version))
        if self.known_versions is not None:
            self.known_versions.add(version)

    def deploy(self, environment: str, version: str) -> None:
        self._known(environment)
        if self.known_versions is not None and version not in self.known_versions:
            raise TargetError(f"version {version} is not registered; call register_version first")
        self.calls.append(("deploy", environment, version))
        self.envs[environment] = replace(self.envs[environment], status=UPDATING, health="Grey")
        self.pending[environment] = (version, self.deploy_polls)

    def swap(self, first: str, second: str) -> None:
        self._known(first)
        self._known(second)
        if (
            self.fail_swap_after is not None
            and sum(c[0] == "swap" for c in self.calls) >= self.fail_swap_after
        ):
            raise TargetError("the proxy refused the swap")
        self.calls.append(("swap", first, second))
        a, b = self.envs[first], self.envs[second]
        self.envs[first] = replace(a, address=b.address)
        self.envs[second] = replace(b, address=a.address)

    def events(self, environment: str, since: datetime) -> list[TargetEvent]:
        mine = [e for e in self.events_after_deploy if e.environment == environment and e.time > since]
        return sorted(mine, key=lambda e: e.time)

    def serving(self, address: str) -> Environment:
        return next(env for env in self.envs.values() if env.address == address)

    def preflight(self) -> list[str]:
        return list(self.problems)

    def reconcile(self) -> list[str]:
        removed, self.orphans = self.orphans, []
        if removed:
            self.calls.append(("reconcile", *removed))
        return [f"removed orphan container {name}" for name in removed]

    @contextmanager
    def lock(self, holder: LockHolder, wait_s: float, log: Any) -> Iterator[LockHolder | None]:
        if self.lock_holder is not None:
            raise TargetError(f"the target is locked by {self.lock_holder.describe()}")
        self.held_by.append(holder)
        self.calls.append(("lock", holder.operation))
        interrupted, self.interrupted = self.interrupted, None
        self.lock_holder = holder  # exclusive while the block runs
        try:
            yield interrupted
        finally:
            self.lock_holder = None
            self.calls.append(("unlock", holder.operation))

    def traffic(self, environment: str) -> TrafficCounters:
        """Each look adds traffic to the environment on prod: 5xx when its version is broken."""
        env = self.envs[environment]
        before = self.counters.get(environment, TrafficCounters(0, 0, 0, 5.0))
        on_prod = env.address == "127.0.0.1:8080"
        added = self.requests_per_look if on_prod else 0
        errors = added if env.version in self.broken_versions else 0
        now = TrafficCounters(before.requests + added, before.server_errors + errors, 0, 5.0)
        self.counters[environment] = now
        return now

    def set_traffic_share(self, environment: str, percent: int) -> None:
        self._known(environment)
        if not 0 <= percent <= 100:
            raise TargetError(f"a traffic share is a percentage, 0..100; got {percent}")
        if percent and not self.canary:
            raise TargetError("this target moves prod's traffic at once: no canary share")
        self.shares.append((environment, percent))

    @property
    def supports_canary(self) -> bool:
        return self.canary


def paths_check_of(target: FakeTarget) -> Any:
    """A user-path check: 500 from the versions the target lists as broken, else 200."""

    def check(url: str, paths: Sequence[UserPath]) -> list[PathAnswer]:
        env = target.serving(url.removeprefix("http://"))
        status = 500 if env.version in target.broken_versions else 200
        return [PathAnswer(path, status, 0.001) for path in paths]

    return check


def http_check_of(target: FakeTarget, broken_versions: frozenset[str] = frozenset()) -> Any:
    """An HTTP check answering with the version of the environment behind an address."""

    def check(url: str) -> HealthReport:
        env = target.serving(url.removeprefix("http://"))
        if env.version in broken_versions or env.version is None:
            return HealthReport(url, 503, None, error="HTTP 503")
        return HealthReport(url, 200, env.version)

    return check


def event(environment: str, severity: str, message: str) -> TargetEvent:
    """An event stamped just after now, so it counts as happening during a deploy started now."""
    return TargetEvent(datetime.now(UTC) + timedelta(seconds=1), environment, severity, message)

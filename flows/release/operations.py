"""The release half of the pipeline, target-agnostic: preprod, deploy, wait, verify, swap, swap back.

Each function is one pipeline step over the `Target` interface; the Prefect tasks in
`flows.steps` wrap them. Decisions come from `flows.release.decisions`; time comes from an
injectable `Clock` so deadlines are tested without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flows.clock import SYSTEM_CLOCK, Clock
from flows.config import PipelineConfig
from flows.errors import ReleaseError
from flows.release.decisions import (
    Readiness,
    Roles,
    assign_roles,
    describe,
    readiness,
    settled,
    swap_pair,
)
from flows.release.health import HealthCheck, HealthReport, fetch_health
from flows.targets.base import Environment, Target, TargetEvent

Log = Callable[[str], None]
Progress = Callable[[float], None]  # fraction of the deadline used, 0.0 .. 1.0

FAILING_SEVERITIES = frozenset({"ERROR", "FATAL"})


class PreprodBusy(ReleaseError):
    """Preprod stayed busy with another operation past the deadline."""


class DeploymentFailed(ReleaseError):
    """The deployment settled in a bad state (an ERROR event, or health outside the accepted set)."""


class NotReadyInTime(ReleaseError):
    """The deployment did not become ready before its deadline."""


class VerificationFailed(ReleaseError):
    """An address did not serve the expected version before its deadline."""


class SwappedBack(ReleaseError):
    """Prod failed verification after the swap; the addresses were swapped back."""


def _ignore(_: str) -> None:
    return None


def find_roles(target: Target, config: PipelineConfig) -> Roles:
    """Which environment holds prod and which preprod, by address (never by a fixed name)."""
    return assign_roles(target.environments(), config.prod_address, config.preprod_address)


def wait_for_preprod(
    target: Target, config: PipelineConfig, log: Log = _ignore, clock: Clock = SYSTEM_CLOCK
) -> Roles:
    """The current roles, once preprod is free of any other operation (waiting up to the deadline)."""
    deadline = clock.now() + config.deadlines.preprod_free
    while True:
        roles = find_roles(target, config)
        if settled(roles.preprod):
            return roles
        if clock.now() >= deadline:
            raise PreprodBusy(
                f"preprod is still busy after {config.deadlines.preprod_free:.0f}s: "
                f"{describe(roles.preprod)}; wait for the other operation to finish "
                "(see the target's events or `deliverypipeline <target> status`) and re-run"
            )
        log(f"preprod is busy, waiting: {describe(roles.preprod)}")
        clock.sleep(config.deadlines.poll_s)


def deploy(target: Target, environment: str, version: str) -> datetime:
    """Start deploying `version` to `environment`; returns when it started, for event streaming."""
    started = datetime.now(UTC)
    target.deploy(environment, version)
    return started


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


def wait_until_ready(
    target: Target,
    environment: str,
    version: str,
    config: PipelineConfig,
    *,
    since: datetime,
    log: Log = _ignore,
    clock: Clock = SYSTEM_CLOCK,
    check: HealthCheck = fetch_health,
    progress: Progress | None = None,
) -> Environment:
    """Wait until `environment` is Ready, healthy by the accepted set, and serves `version` over HTTP.

    Fails fast on an ERROR event or a settled bad health; at the deadline fails with what
    it last saw.
    """
    started = clock.now()
    limit = config.deadlines.ready
    follower = EventFollower(target, environment, since, log)
    last_seen = "nothing yet"
    bad_since: float | None = None  # when an unaccepted health was first seen on a Ready environment
    while True:
        follower.poll()
        if follower.failure is not None:
            raise DeploymentFailed(
                f"deploying {version} to {environment} failed: {follower.failure.message} "
                f"(event at {follower.failure.time.isoformat()}); prod was not touched"
            )
        current = _environment(target, environment)
        state = readiness(current, version, config.accepted_health)
        last_seen = describe(current)
        if state is Readiness.FAILED:
            bad_since = clock.now() if bad_since is None else bad_since
        else:
            bad_since = None
        if bad_since is not None and clock.now() - bad_since >= config.deadlines.grace_s:
            raise DeploymentFailed(
                f"{environment} settled with health {current.health}, accepted: "
                f"{', '.join(config.accepted_health)} ({last_seen}); prod was not touched; "
                "look at the environment's logs and events"
            )
        if state is Readiness.READY:
            report = check(target.url(current.address))
            last_seen = f"{last_seen}; {report.summary()}"
            if report.ok and report.version == version:
                if progress is not None:
                    progress(1.0)
                log(f"ready: {last_seen}")
                return current
        elapsed = clock.now() - started
        if progress is not None:
            progress(min(elapsed / limit, 1.0) if limit > 0 else 1.0)
        if elapsed >= limit:
            raise NotReadyInTime(
                f"{environment} did not become ready with version {version} within {limit:.0f}s; "
                f"last seen: {last_seen}; prod was not touched"
            )
        log(f"waiting ({elapsed:.0f}s of {limit:.0f}s): {last_seen}")
        clock.sleep(config.deadlines.poll_s)


def deploy_and_wait(
    target: Target,
    environment: str,
    version: str,
    config: PipelineConfig,
    log: Log = _ignore,
    clock: Clock = SYSTEM_CLOCK,
    check: HealthCheck = fetch_health,
) -> Environment:
    """Deploy `version` to `environment` and wait until it is ready (steps 8 and 9 together)."""
    since = deploy(target, environment, version)
    return wait_until_ready(
        target, environment, version, config, since=since, log=log, clock=clock, check=check
    )


@dataclass(frozen=True)
class Verification:
    """The result of checking that an address serves a version."""

    url: str
    expected: str
    seen: str | None
    ok: bool
    attempts: int
    seconds: float
    detail: str

    def summary(self) -> str:
        """One line for logs and the run report."""
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.url}: {verdict}, expected {self.expected}, saw {self.seen or '-'} "
            f"after {self.attempts} attempt(s) in {self.seconds:.1f}s ({self.detail})"
        )


def verify(
    url: str,
    version: str,
    deadline_s: float,
    clock: Clock = SYSTEM_CLOCK,
    check: HealthCheck = fetch_health,
    interval: float = 1.0,
) -> Verification:
    """Check, retrying up to the deadline, that `url` serves `version`.

    Retrying covers DNS caches that still send some clients to the old environment after
    a CNAME swap.
    """
    started = clock.now()
    attempts = 0
    report: HealthReport | None = None
    while True:
        attempts += 1
        report = check(url)
        elapsed = clock.now() - started
        if report.ok and report.version == version:
            return Verification(url, version, report.version, True, attempts, elapsed, report.summary())
        if elapsed >= deadline_s:
            return Verification(url, version, report.version, False, attempts, elapsed, report.summary())
        clock.sleep(interval)


def require(verification: Verification, what: str) -> Verification:
    """Fail the step unless the verification passed."""
    if not verification.ok:
        raise VerificationFailed(
            f"{what} does not serve {verification.expected}: {verification.summary()}; "
            "look at the environment's logs"
        )
    return verification


def swap(
    target: Target, roles: Roles, config: PipelineConfig, log: Log = _ignore, clock: Clock = SYSTEM_CLOCK
) -> Roles:
    """Exchange the prod and preprod addresses, then wait until both environments settle."""
    first, second = swap_pair(roles)
    log(f"swapping addresses of {first} (to prod) and {second} (to preprod)")
    target.swap(first, second)
    return _wait_settled_roles(target, config, log, clock, expected_prod=roles.preprod.name)


def _wait_settled_roles(
    target: Target, config: PipelineConfig, log: Log, clock: Clock, expected_prod: str
) -> Roles:
    deadline = clock.now() + config.deadlines.swap
    while True:
        roles = find_roles(target, config)
        if settled(roles.prod) and settled(roles.preprod) and roles.prod.name == expected_prod:
            return roles
        if clock.now() >= deadline:
            raise ReleaseError(
                f"the swap did not settle within {config.deadlines.swap:.0f}s: prod is "
                f"{describe(roles.prod)}, preprod is {describe(roles.preprod)}; check the "
                "target's events and, if needed, swap by hand with `deliverypipeline <target> swap`"
            )
        log(f"waiting for the swap to settle: prod {describe(roles.prod)}")
        clock.sleep(config.deadlines.poll_s)


def verify_prod_or_swap_back(
    target: Target,
    roles: Roles,
    version: str,
    config: PipelineConfig,
    log: Log = _ignore,
    clock: Clock = SYSTEM_CLOCK,
    check: HealthCheck = fetch_health,
) -> Verification:
    """Verify prod serves `version` after a swap; otherwise swap back at once and fail.

    The previous environment still runs the old version, so swapping back restores it.
    """
    url = target.url(config.prod_address)
    result = verify(url, version, config.deadlines.verify, clock, check, config.deadlines.poll_s)
    if result.ok:
        log(f"prod verified: {result.summary()}")
        return result
    log(f"prod verification failed, swapping back: {result.summary()}")
    restored = swap(target, roles, config, log, clock)
    raise swapped_back(version, result, restored, failed=roles.prod.name)


def swapped_back(version: str, result: Verification, restored: Roles, failed: str) -> SwappedBack:
    """The error that ends a release whose prod verification failed and was swapped back."""
    return SwappedBack(
        f"prod did not serve {version} after the swap ({result.summary()}); swapped back: "
        f"prod is {describe(restored.prod)} again. Look at {failed}'s logs "
        "(`deliverypipeline <target> status`) before re-running"
    )


def swap_and_verify(
    target: Target,
    roles: Roles,
    version: str,
    config: PipelineConfig,
    log: Log = _ignore,
    clock: Clock = SYSTEM_CLOCK,
    check: HealthCheck = fetch_health,
) -> Roles:
    """Swap, then verify prod, swapping back on failure (steps 11 and 12 together)."""
    after = swap(target, roles, config, log, clock)
    verify_prod_or_swap_back(target, after, version, config, log, clock, check)
    return after


def _environment(target: Target, name: str) -> Environment:
    for environment in target.environments():
        if environment.name == name:
            return environment
    raise ReleaseError(f"the target reports no environment named {name!r}; check the configuration")

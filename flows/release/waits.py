"""Preprod's waits: until it is free of other operations, the deploy, until it is ready with the version.

Every wait is `flows.clock.poll_until` over an injectable clock, so deadlines are tested without
waiting; at a deadline the error says what was last seen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
from flows.config import PipelineConfig
from flows.release.decisions import Readiness, Roles, describe, preprod_already_on, readiness, settled
from flows.release.errors import DeploymentFailed, NotReadyInTime, PreprodBusy
from flows.release.events import EventFollower
from flows.release.facts import Log, environment_named, find_roles, quiet
from flows.release.health import HealthCheck, fetch_health
from flows.targets.base import Environment, Target

Progress = Callable[[float], None]  # fraction of the deadline used, 0.0 .. 1.0


def wait_for_preprod(
    target: Target, config: PipelineConfig, log: Log = quiet, clock: Clock = SYSTEM_CLOCK
) -> Roles:
    """The current roles, once preprod is free of any other operation (waiting up to the deadline)."""
    seen: list[Roles] = []

    def look(_: Deadline) -> Roles | None:
        roles = find_roles(target, config)
        seen[:] = [roles]
        if settled(roles.preprod):
            return roles
        log(f"preprod is busy, waiting: {describe(roles.preprod)}")
        return None

    def busy(deadline: Deadline) -> PreprodBusy:
        return PreprodBusy(
            f"preprod is still busy after {deadline.seconds:.0f}s: {describe(seen[0].preprod)}; wait for "
            "the other operation to finish (see the target's events or `deliverypipeline <target> status`) "
            "and re-run"
        )

    return poll_until(look, config.deadlines.preprod_free, config.deadlines.poll_s, busy, clock=clock)


def deploy(target: Target, roles: Roles, version: str, config: PipelineConfig, log: Log = quiet) -> datetime:
    """Start deploying `version` to preprod, unless it already runs it healthily; returns the start time."""
    started = datetime.now(UTC)
    if preprod_already_on(roles, version, config.accepted_health):
        log(f"preprod {roles.preprod.name} already runs {version} and is healthy: not deploying again")
        return started
    log(f"deploying {version} to preprod {roles.preprod.name}")
    target.deploy(roles.preprod.name, version)
    return started


def wait_until_ready(
    target: Target,
    environment: str,
    version: str,
    config: PipelineConfig,
    *,
    since: datetime,
    log: Log = quiet,
    clock: Clock = SYSTEM_CLOCK,
    check: HealthCheck = fetch_health,
    progress: Progress | None = None,
) -> Environment:
    """Wait until `environment` is Ready, healthy by the accepted set, and serves `version` over HTTP.

    Fails fast on an ERROR event or a health outside the accepted set for longer than the grace
    period; at the deadline fails with what it last saw.
    """
    follower = EventFollower(target, environment, since, log)
    last_seen = ["nothing yet"]
    bad_since: list[float] = []  # when an unaccepted health was first seen on a Ready environment

    def look(deadline: Deadline) -> Environment | None:
        follower.poll()
        if follower.failure is not None:
            raise DeploymentFailed(
                f"deploying {version} to {environment} failed: {follower.failure.message} "
                f"(event at {follower.failure.time.isoformat()}); prod was not touched"
            )
        current = environment_named(target, environment)
        state = readiness(current, version, config.accepted_health)
        last_seen[0] = describe(current)
        if state is not Readiness.FAILED:
            bad_since.clear()
        elif not bad_since:
            bad_since.append(clock.now())
        if bad_since and clock.now() - bad_since[0] >= config.deadlines.grace_s:
            raise DeploymentFailed(
                f"{environment} settled with health {current.health}, accepted: "
                f"{', '.join(config.accepted_health)} ({last_seen[0]}); prod was not touched; "
                "look at the environment's logs and events"
            )
        if state is Readiness.READY:
            report = check(target.url(current.address))
            last_seen[0] = f"{last_seen[0]}; {report.summary()}"
            if report.ok and report.version == version:
                if progress is not None:
                    progress(1.0)
                log(f"ready: {last_seen[0]}")
                return current
        if progress is not None:
            progress(deadline.fraction)
        log(f"waiting ({deadline.elapsed:.0f}s of {deadline.seconds:.0f}s): {last_seen[0]}")
        return None

    def too_late(deadline: Deadline) -> NotReadyInTime:
        return NotReadyInTime(
            f"{environment} did not become ready with version {version} within {deadline.seconds:.0f}s; "
            f"last seen: {last_seen[0]}; prod was not touched"
        )

    return poll_until(look, config.deadlines.ready, config.deadlines.poll_s, too_late, clock=clock)

"""The release operations over the `Target` interface: each waits, acts and judges through one helper.

One function per thing a release does to a target: find the roles, wait for preprod, deploy,
wait until ready, verify an address, shift canary traffic, swap (the one call site of
`Target.swap`, used by the flow, the swap back and the CLI's manual swap alike), analyse real
traffic, swap back. Decisions come from `decisions` and `analysis` (pure); every wait is
`flows.clock.poll_until` over an injectable clock, so deadlines are tested without waiting.
The Prefect tasks in `tasks` call these, one task per step.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, GaveUp, poll_until
from flows.config import PipelineConfig
from flows.errors import ReleaseError, TargetError
from flows.release.analysis import Verdict, WindowFigures, judge, window
from flows.release.decisions import (
    Agreement,
    Consistency,
    Readiness,
    Roles,
    assign_roles,
    describe,
    preprod_already_on,
    readiness,
    settled,
    swap_happened,
    swap_pair,
    swappable,
    unfinished_swap,
)
from flows.release.health import HealthCheck, PathAnswer, PathCheck, fetch_health, fetch_paths
from flows.targets.base import Environment, LockHolder, Target, TargetEvent, TrafficCounters

Log = Callable[[str], None]
Progress = Callable[[float], None]  # fraction of the deadline used, 0.0 .. 1.0

FAILING_SEVERITIES = frozenset({"ERROR", "FATAL"})
AGREEING_INTERVAL_S = 0.05  # between the consistent answers (each over a new connection)


class PreprodBusy(ReleaseError):
    """Preprod stayed busy with another operation past the deadline."""


class DeploymentFailed(ReleaseError):
    """The deployment settled in a bad state (an ERROR event, or health outside the accepted set)."""


class NotReadyInTime(ReleaseError):
    """The deployment did not become ready before its deadline."""


class VerificationFailed(ReleaseError):
    """An address did not serve the expected version consistently, or a user path failed."""


class ProdRejected(ReleaseError):
    """After the swap (or at a canary step), prod did not serve users well: swap back."""


class AnalysisFailed(ProdRejected):
    """The real traffic of a window failed the analysis; `verdict` has the figures."""

    def __init__(self, message: str, verdict: Verdict, share: int = 100) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.share = share  # percent of prod traffic the failing window judged


class SwappedBack(ReleaseError):
    """The new prod was rejected after the swap; the addresses were swapped back."""


class SwapBackFailed(ReleaseError):
    """The new prod was rejected and swapping back failed too: a person must act."""


class ReleaseRejected(ReleaseError):
    """The release was not approved; preprod runs the new version, prod was not touched."""


class ZeroDowntimeViolation(ReleaseError):
    """Requests to prod failed while the release deployed or swapped."""


class PreflightFailed(ReleaseError):
    """The target is not ready for a release (missing environment, bucket, address held...)."""


def _ignore(_: str) -> None:
    return None


def find_roles(target: Target, config: PipelineConfig) -> Roles:
    """Which environment holds prod and which preprod, by address (never by a fixed name)."""
    return assign_roles(target.environments(), config.prod_address, config.preprod_address)


def preflight(target: Target) -> None:
    """Fail before anything is built when the target reports what would stop the release."""
    problems = target.preflight()
    if problems:
        listed = "; ".join(problems)
        raise PreflightFailed(f"the {target.name} target is not ready for a release: {listed}")


def holder(operation: str, run: str) -> LockHolder:
    """This process as a lock holder, for `operation` in `run`."""
    return LockHolder(operation, run, os.getpid(), socket.gethostname(), datetime.now(UTC).isoformat())


@contextmanager
def locked(
    target: Target, who: LockHolder, config: PipelineConfig, log: Log = _ignore
) -> Iterator[LockHolder | None]:
    """Hold the target's release lock (the safety against overlapping operations) for the block.

    The block gets the holder that died holding the lock, if one did (see `recover`).
    """
    with target.lock(who, config.deadlines.target_lock, log) as interrupted:
        log(f"holding the {target.name} target's lock: {who.describe()}")
        if interrupted is not None:
            log(f"the previous holder died holding the lock: {interrupted.describe()}")
        yield interrupted


def recover(
    target: Target, interrupted: LockHolder | None, config: PipelineConfig,
    log: Log = _ignore, clock: Clock = SYSTEM_CLOCK,
) -> str:  # fmt: skip
    """Undo what crashes left: stopped environments, leftovers, and a swap never verified.

    Needs no person: the target is brought back to its own record (`Target.reconcile`: locally,
    containers a host restart stopped start again, the proxy runs, orphans are removed); when
    the holder died after its swap, the previous version still runs on preprod, so swapping back
    restores the last verified prod; the new release then goes through every check. Returns what
    was done.
    """
    repairs = target.reconcile()
    for line in repairs:
        log(line)
    left = f"; {len(repairs)} repair(s) of the target, see the log" if repairs else ""
    if interrupted is None:
        return f"the previous holder let go of the lock cleanly: nothing to recover{left}"
    roles = find_roles(target, config)
    if not unfinished_swap(roles, interrupted.operation):
        untouched = describe(roles.prod)
        return f"{interrupted.describe()} died before its swap: prod ({untouched}) was not touched{left}"
    log(f"{interrupted.describe()} died after its swap: prod runs its unverified version, swapping back")
    restored = swap(target, config, log, clock, seen=roles)
    prod = describe(restored.prod)
    return f"swapped back the unverified swap of {interrupted.operation}: prod is {prod}{left}"


def wait_for_preprod(
    target: Target, config: PipelineConfig, log: Log = _ignore, clock: Clock = SYSTEM_CLOCK
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


def deploy(
    target: Target, roles: Roles, version: str, config: PipelineConfig, log: Log = _ignore
) -> datetime:
    """Start deploying `version` to preprod, unless it already runs it healthily; returns the start time."""
    started = datetime.now(UTC)
    if preprod_already_on(roles, version, config.accepted_health):
        log(f"preprod {roles.preprod.name} already runs {version} and is healthy: not deploying again")
        return started
    log(f"deploying {version} to preprod {roles.preprod.name}")
    target.deploy(roles.preprod.name, version)
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


@dataclass(frozen=True)
class Verification:
    """The result of checking that an address serves a version, consistently, on every user path."""

    url: str
    expected: str
    seen: str | None
    ok: bool
    attempts: int
    seconds: float
    detail: str
    paths: tuple[PathAnswer, ...] = ()

    def failing_paths(self) -> list[PathAnswer]:
        """The user paths that failed (5xx, no answer, timeout)."""
        return [answer for answer in self.paths if not answer.ok]

    def summary(self) -> str:
        """One line for logs and the run report."""
        verdict = "ok" if self.ok else "FAILED"
        paths = "; ".join(answer.summary() for answer in self.paths)
        return (
            f"{self.url}: {verdict}, expected {self.expected}, saw {self.seen or '-'} "
            f"after {self.attempts} answer(s) in {self.seconds:.1f}s ({self.detail})"
            + (f"; user paths: {paths}" if paths else "")
        )


def verify(
    url: str, version: str, config: PipelineConfig,
    clock: Clock = SYSTEM_CLOCK, check: HealthCheck = fetch_health, paths_check: PathCheck = fetch_paths,
) -> Verification:  # fmt: skip
    """Check that `url` serves `version` consistently and that every user path answers.

    Retries until the new version first answers (a CNAME swap reaches DNS caches gradually),
    then asks for `verification.consistent_answers` more answers over new connections, which
    must all show it; then requests each user path once (any 5xx, no answer or timeout fails).
    """
    tally = Consistency(version, config.verification.consistent_answers)
    attempts = [0]
    last: list[str] = ["no answer yet"]
    seen: list[str | None] = [None]

    def look(_: Deadline) -> Agreement | None:
        attempts[0] += 1
        report = check(url)
        last[0], seen[0] = report.summary(), report.version
        agreement = tally.add(report.version, report.ok, report.summary())
        return None if agreement is Agreement.PENDING else agreement

    def interval() -> float:
        return AGREEING_INTERVAL_S if tally.first_seen else min(config.deadlines.poll_s, 2.0)

    started = clock.now()
    agreed = poll_until(look, config.deadlines.verify, interval, clock=clock)
    agreement = Agreement.PENDING if isinstance(agreed, GaveUp) else agreed  # answers did not agree in time
    seconds = clock.now() - started
    if agreement is not Agreement.PASSED:
        detail = tally.reason if agreement is Agreement.FAILED else f"last answer: {last[0]}"
        if agreement is Agreement.PENDING and tally.first_seen:
            detail = f"only {tally.agreed} of {tally.required} answers agreed in time; {detail}"
        return Verification(url, version, seen[0], False, attempts[0], seconds, detail)
    answers = tuple(paths_check(url, config.verification.user_paths))
    failing = [answer for answer in answers if not answer.ok]
    detail = f"{tally.agreed + 1} consistent answers; " + (
        f"{len(failing)} user path(s) failed" if failing else "every user path answered"
    )
    return Verification(url, version, version, not failing, attempts[0], seconds, detail, answers)


def require(
    verification: Verification, what: str, error: type[ReleaseError] = VerificationFailed
) -> Verification:
    """Fail the step unless the verification passed, naming the failing path or answer."""
    if not verification.ok:
        failing = verification.failing_paths()
        named = f"user path {failing[0].summary()}" if failing else verification.detail
        raise error(
            f"{what} does not serve {verification.expected} to users: {named}; {verification.summary()}"
        )
    return verification


def read_traffic(target: Target, environment: str, log: Log = _ignore) -> TrafficCounters | None:
    """An environment's traffic counters, None (logged) when the target cannot tell right now."""
    try:
        return target.traffic(environment)
    except TargetError as exc:
        log(f"no traffic counters for {environment}: {exc}")
        return None


def baseline(
    target: Target, environment: str, since: TrafficCounters | None, seconds: float, log: Log = _ignore
) -> WindowFigures | None:
    """The previous prod's figures from `since` up to now: what the new prod is judged against."""
    if since is None:
        return None
    now = read_traffic(target, environment, log)
    return None if now is None else window(since, now, seconds)


def analyse(
    target: Target,
    environment: str,
    previous: WindowFigures | None,
    config: PipelineConfig,
    what: str,
    *,
    since: tuple[TrafficCounters, float] | None = None,
    log: Log = _ignore,
    clock: Clock = SYSTEM_CLOCK,
) -> Verdict:
    """Judge the real traffic `environment` serves for one analysis window; fail at the first bad figure.

    The window starts now, or at `since` (a reading of the counters and its time on `clock`, e.g.
    taken at the swap: the traffic served since then counts, and the window ends that much sooner).
    Raises `AnalysisFailed` with the figures when the window fails; returns the passing verdict.
    """
    settings = config.analysis
    start, started = since if since is not None else (target.traffic(environment), clock.now())
    already = max(0.0, clock.now() - started)
    last: list[WindowFigures] = []
    logged = [-1]

    def look(deadline: Deadline) -> Verdict | None:
        elapsed = already + deadline.elapsed
        figures = window(start, target.traffic(environment), elapsed)
        last[:] = [figures]
        verdict = judge(figures, previous, settings, final=False)
        if verdict.decided:
            return verdict
        if int(elapsed) > logged[0]:  # one progress line a second
            logged[0] = int(elapsed)
            log(f"{what}: {elapsed:.0f}s of {settings.window_s:.0f}s: {figures.summary()}")
        return None

    interval = min(config.deadlines.poll_s, max(settings.window_s / 20, 0.25))
    decided = poll_until(look, max(settings.window_s - already, 0.0), interval, clock=clock)
    # a window that ended without a failure gets the final judgement
    verdict = judge(last[0], previous, settings, final=True) if isinstance(decided, GaveUp) else decided
    log(f"{what}: {verdict.summary()}")
    if not verdict.passed:
        raise AnalysisFailed(f"{what} failed the traffic analysis: {verdict.summary()}", verdict)
    return verdict


def shift_traffic(
    target: Target,
    roles: Roles,
    previous: WindowFigures | None,
    config: PipelineConfig,
    *,
    log: Log = _ignore,
    clock: Clock = SYSTEM_CLOCK,
) -> list[tuple[int, Verdict]]:
    """Canary: send each configured share of prod traffic to preprod, analysing each; abort returns to 0 %.

    Prod keeps its address throughout; the swap follows when every step passed. Returns the
    verdict of each step, for the report.
    """
    steps = [share for share in config.traffic_steps if share < 100]
    if not steps:
        return []
    if not target.supports_canary:
        raise ReleaseError(
            f"traffic_steps {config.traffic_steps} need a target that splits prod traffic; the "
            f"{target.name} target cannot: leave traffic_steps empty for it"
        )
    verdicts: list[tuple[int, Verdict]] = []
    try:
        for share in steps:
            log(f"canary: {share} % of prod traffic to {roles.preprod.name}")
            target.set_traffic_share(roles.preprod.name, share)
            what = f"canary at {share} %"
            try:
                verdict = analyse(target, roles.preprod.name, previous, config, what, log=log, clock=clock)
            except AnalysisFailed as failed:
                raise AnalysisFailed(str(failed), failed.verdict, share) from None
            verdicts.append((share, verdict))
    except BaseException:
        target.set_traffic_share(roles.preprod.name, 0)
        log(f"canary aborted: all prod traffic back on {roles.prod.name}")
        raise
    return verdicts


def swap(
    target: Target, config: PipelineConfig, log: Log = _ignore, clock: Clock = SYSTEM_CLOCK,
    seen: Roles | None = None,
) -> Roles:  # fmt: skip
    """Exchange the prod and preprod addresses: the one call site of `Target.swap`, for the release's
    swap, the swap back, the recovery and the CLI's swap.

    Waits (bounded by `deadlines.swap`) until both environments can be swapped (EB: both Ready),
    swaps, then waits until both settle with the other environment on the prod address. The
    target is asked afresh; `seen`: roles just read (they count as the first look).
    """
    ready = _wait_roles(
        target,
        config,
        clock,
        log,
        lambda now: swappable(now.prod) and swappable(now.preprod),
        "both environments to be swappable (Ready)",
        "before the swap",
        first=seen,
    )
    first, second = swap_pair(ready)
    log(f"swapping the addresses of {first} (to prod) and {second} (to preprod)")
    target.swap(first, second)
    after = _wait_roles(
        target, config, clock, log,
        lambda now: settled(now.prod) and settled(now.preprod) and now.prod.name == first,
        f"{first} to hold prod and both to settle", "after the swap",
    )  # fmt: skip
    if config.traffic_steps and target.supports_canary:
        target.set_traffic_share(after.prod.name, 0)  # the canary's share is all of prod now
    return after


def _wait_roles(
    target: Target, config: PipelineConfig, clock: Clock, log: Log,
    done: Callable[[Roles], bool], waiting_for: str, when: str, first: Roles | None = None,
) -> Roles:  # fmt: skip
    seen: list[Roles] = []

    def look(_: Deadline) -> Roles | None:
        roles = find_roles(target, config)
        seen[:] = [roles]
        if done(roles):
            return roles
        log(f"waiting for {waiting_for}: prod {describe(roles.prod)}; preprod {describe(roles.preprod)}")
        return None

    def stuck(deadline: Deadline) -> ReleaseError:
        roles = seen[0]
        return ReleaseError(
            f"waited {deadline.seconds:.0f}s {when} for {waiting_for}: prod is {describe(roles.prod)}, "
            f"preprod is {describe(roles.preprod)}; check the target's events and, if needed, swap by "
            "hand with `deliverypipeline <target> swap`"
        )

    if first is not None and done(first):
        return first
    return poll_until(look, config.deadlines.swap, config.deadlines.poll_s, stuck, clock=clock)


def swap_back(
    target: Target, before: Roles, failure: BaseException, config: PipelineConfig,
    log: Log = _ignore, clock: Clock = SYSTEM_CLOCK,
) -> ReleaseError:  # fmt: skip
    """End a release rejected (or interrupted) at or after the swap; returns the error that ends it.

    `before` are the roles before the swap. Any canary share ends; if the addresses were already
    exchanged, the previous prod (still on the previous version) takes prod again (`SwappedBack`);
    if not, prod was never touched. Raises `SwapBackFailed` when the swap back fails (a person
    must act then).
    """
    failure_said = str(failure) or f"the run was stopped ({type(failure).__name__}: cancelled or killed)"
    try:
        if config.traffic_steps and target.supports_canary:
            target.set_traffic_share(before.preprod.name, 0)
        now = find_roles(target, config)
        if not swap_happened(before, now):
            log(f"the swap had not happened: prod is {describe(now.prod)}, unchanged")
            return ReleaseError(
                f"{failure_said}; the swap had not happened: prod is {describe(now.prod)}, unchanged"
            )
        restored = swap(target, config, log, clock, seen=now)
    except Exception as exc:
        raise SwapBackFailed(
            f"the new prod {before.preprod.name} was rejected ({failure_said}) and swapping back failed too: "
            f"{exc}. Prod may still be {before.preprod.name}: look with `deliverypipeline <target> status`, "
            "swap by hand with `deliverypipeline <target> swap` or release the previous commit"
        ) from exc
    log(f"swapped back: prod is {describe(restored.prod)} again")
    return SwappedBack(
        f"{failure_said}; swapped back: prod is {describe(restored.prod)} again. Look at "
        f"{before.preprod.name}'s logs (`deliverypipeline <target> status`) before re-running"
    )


def manual_swap(
    target: Target, config: PipelineConfig, run: str = "cli", log: Log = _ignore, clock: Clock = SYSTEM_CLOCK
) -> tuple[Roles, Roles]:
    """The CLI's swap (a manual rollback): under the target's lock, the same swap as the release's.

    Refused when preprod runs nothing (after the first release): prod would answer 503.
    """
    with locked(target, holder("manual swap", run), config, log):
        before = find_roles(target, config)
        if before.preprod.version is None:
            raise ReleaseError(
                f"not swapping: preprod ({describe(before.preprod)}) runs nothing, so there is no previous "
                "version to roll back to; swapping would put an empty environment on prod"
            )
        return before, swap(target, config, log, clock)


def environment_named(target: Target, name: str) -> Environment:
    """The environment called `name` as the target reports it now."""
    for environment in target.environments():
        if environment.name == name:
            return environment
    raise ReleaseError(f"the target reports no environment named {name!r}; check the configuration")

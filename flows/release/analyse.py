"""Judging real traffic: the target's own counters over a window, for the canary steps and after the swap.

`read_traffic` and `baseline` give the previous prod's figures (what the new prod is judged
against); `analyse` judges one window with `flows.release.analysis` (pure); `shift_traffic` runs the
canary steps, each analysed, back to 0 % on any failure.
"""

from __future__ import annotations

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, GaveUp, poll_until
from flows.config import PipelineConfig
from flows.errors import TargetError
from flows.release.analysis import Verdict, WindowFigures, judge, window
from flows.release.decisions import Roles
from flows.release.errors import AnalysisFailed, CanaryUnsupported
from flows.release.facts import Log, quiet
from flows.targets.base import Target, TrafficCounters


def read_traffic(target: Target, environment: str, log: Log = quiet) -> TrafficCounters | None:
    """An environment's traffic counters, None (logged) when the target cannot tell right now."""
    try:
        return target.traffic(environment)
    except TargetError as exc:
        log(f"no traffic counters for {environment}: {exc}")
        return None


def baseline(
    target: Target, environment: str, since: TrafficCounters | None, seconds: float, log: Log = quiet
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
    log: Log = quiet,
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
    log: Log = quiet,
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
        raise CanaryUnsupported(
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

"""Pure judgement of real traffic: is the new prod serving users as well as the previous one did?

The target counts every client's requests (HAProxy's per-server counters, EB enhanced health);
the analysis subtracts two readings to get a window's figures and judges them against the
thresholds and the previous prod's figures measured just before the swap. No I/O here: the
operations in `flows.release.analyse` take the readings, this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.release.settings import AnalysisSettings
from flows.targets.base import TrafficCounters

EARLY_MIN_SERVER_ERRORS = 2


@dataclass(frozen=True)
class WindowFigures:
    """What one environment served during one window."""

    requests: int
    server_errors: int
    connection_errors: int
    mean_response_ms: float | None
    p99_ms: float | None
    seconds: float = 0.0

    @property
    def server_error_percent(self) -> float:
        """The 5xx share of the window's requests, in percent (0 without requests)."""
        return 100.0 * self.server_errors / self.requests if self.requests else 0.0

    @property
    def latency_ms(self) -> float | None:
        """The latency figure the target can tell: its p99 when known, else its mean."""
        return self.p99_ms if self.p99_ms is not None else self.mean_response_ms

    def summary(self) -> str:
        """`812 requests, 0 5xx (0.0 %), 0 without answer, latency 3.1 ms`."""
        latency = "-" if self.latency_ms is None else f"{self.latency_ms:.1f} ms"
        return (
            f"{self.requests} requests, {self.server_errors} 5xx ({self.server_error_percent:.1f} %), "
            f"{self.connection_errors} without answer, latency {latency}"
        )


def window(before: TrafficCounters, after: TrafficCounters, seconds: float = 0.0) -> WindowFigures:
    """The figures between two cumulative readings (latencies are the later reading's)."""
    return WindowFigures(
        requests=max(0, after.requests - before.requests),
        server_errors=max(0, after.server_errors - before.server_errors),
        connection_errors=max(0, after.connection_errors - before.connection_errors),
        mean_response_ms=after.mean_response_ms,
        p99_ms=after.p99_ms,
        seconds=seconds,
    )


@dataclass(frozen=True)
class Verdict:
    """The analysis' answer for a window: failed (with reasons), passed, or not decided yet."""

    decided: bool
    passed: bool
    figures: WindowFigures
    reasons: tuple[str, ...] = ()
    conclusive: bool = True

    def summary(self) -> str:
        """One line: the verdict, why, and the figures."""
        if not self.decided:
            return f"analysing: {self.figures.summary()}"
        if not self.passed:
            return f"FAILED: {'; '.join(self.reasons)} ({self.figures.summary()})"
        note = "" if self.conclusive else " (inconclusive: too little traffic to judge the 5xx share)"
        return f"passed{note}: {self.figures.summary()}"


def judge(
    figures: WindowFigures,
    baseline: WindowFigures | None,
    thresholds: AnalysisSettings,
    *,
    final: bool,
) -> Verdict:
    """Judge a window so far; a failure is decided at once, a pass only when the window is over (`final`).

    Fails on: a 5xx share above the threshold over at least `min_requests` requests; more
    requests without an answer than allowed; a latency above `max_latency_ratio` times the
    previous prod's (both above `latency_floor_ms`, so sub-millisecond noise never fails).
    A final window with fewer than `min_requests` requests passes as inconclusive when nothing
    failed, and fails when any request did.
    """
    reasons: list[str] = []
    enough = figures.requests >= thresholds.min_requests
    # Decided before the window ends only on more than one 5xx: a single stray one is judged
    # over the whole window.
    judged = final or figures.server_errors >= EARLY_MIN_SERVER_ERRORS
    if enough and judged and figures.server_error_percent > thresholds.max_server_error_percent:
        reasons.append(
            f"5xx share {figures.server_error_percent:.1f} % over {figures.requests} requests "
            f"(at most {thresholds.max_server_error_percent:g} %)"
        )
    if figures.connection_errors > thresholds.max_connection_errors:
        reasons.append(
            f"{figures.connection_errors} requests got no answer (at most {thresholds.max_connection_errors})"
        )
    limit = _latency_limit(baseline, thresholds)
    if enough and limit is not None and figures.latency_ms is not None and figures.latency_ms > limit:
        reasons.append(
            f"latency {figures.latency_ms:.1f} ms above {thresholds.max_latency_ratio:g}x the previous "
            f"prod's ({limit:.1f} ms)"
        )
    if final and not enough and figures.server_errors > 0:
        reasons.append(
            f"{figures.server_errors} of only {figures.requests} requests answered 5xx "
            f"(fewer than {thresholds.min_requests} to judge a share)"
        )
    if reasons:
        return Verdict(True, False, figures, tuple(reasons))
    if not final:
        return Verdict(False, False, figures)
    return Verdict(True, True, figures, conclusive=enough)


def _latency_limit(baseline: WindowFigures | None, thresholds: AnalysisSettings) -> float | None:
    if baseline is None or baseline.latency_ms is None:
        return None
    return thresholds.max_latency_ratio * max(baseline.latency_ms, thresholds.latency_floor_ms)


@dataclass(frozen=True)
class AnalysisRow:
    """One judged window of real traffic as the run report shows it: a canary step or after the swap."""

    step: str  # "canary 10 %", "after the swap"
    share: int  # percent of prod traffic on the new version
    verdict: str  # "passed", "passed (inconclusive)", "FAILED: ..."
    requests: int
    server_errors: int
    connection_errors: int
    new_latency_ms: float | None
    old_latency_ms: float | None


def analysis_row(step: str, share: int, verdict: Verdict, previous: WindowFigures | None) -> AnalysisRow:
    """The report's row for one judged window; `previous`: the previous prod's figures, if measured."""
    figures = verdict.figures
    return AnalysisRow(
        step,
        share,
        verdict.summary().split(":", 1)[0],
        figures.requests,
        figures.server_errors,
        figures.connection_errors,
        figures.latency_ms,
        previous.latency_ms if previous is not None else None,
    )

"""Pure reading of EB enhanced health: one metrics window per answer, summed into cumulative counters.

`DescribeEnvironmentHealth(AttributeNames=["All"])` reports the application's requests over its
latest window (`ApplicationMetrics.Duration`, usually 10 s): how many, what share ended in each
status-code class, and latency percentiles. `TrafficCounters` are cumulative, so the target adds
each new window (one whose `RefreshedAt` moved on) to a `TrafficTally`; p99 is the latest window's.
No boto3 here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.targets.aws.lease import as_utc
from flows.targets.base import TrafficCounters


@dataclass(frozen=True)
class MetricsWindow:
    """One window of an environment's application metrics, as EB enhanced health reports it."""

    refreshed: datetime | None  # RefreshedAt: when EB computed it
    duration_s: int  # the window's length
    requests: int  # requests answered in the window
    server_error_percent: float  # share of 5xx answers, 0..100
    p99_ms: float | None  # the window's p99 latency, None when there were no requests
    causes: tuple[str, ...] = ()

    @property
    def server_errors(self) -> float:
        """The window's 5xx answers (EB gives a whole-number percentage, so this is approximate)."""
        return self.requests * self.server_error_percent / 100.0


def window_from(answer: Mapping[str, Any]) -> MetricsWindow | None:
    """The window in a DescribeEnvironmentHealth answer; None when it has no application metrics.

    No `ApplicationMetrics` (or neither a Duration nor a RequestCount in it) is what basic health
    reports. `RequestCount` is read as the requests of the `Duration`-second window.
    """
    metrics: Mapping[str, Any] = answer.get("ApplicationMetrics") or {}
    if "Duration" not in metrics and "RequestCount" not in metrics:
        return None
    codes: Mapping[str, Any] = metrics.get("StatusCodes") or {}
    latency: Mapping[str, Any] = metrics.get("Latency") or {}
    p99 = latency.get("P99")
    refreshed = answer.get("RefreshedAt")
    causes: Sequence[Any] = answer.get("Causes") or ()
    return MetricsWindow(
        refreshed=as_utc(refreshed) if isinstance(refreshed, datetime) else None,
        duration_s=int(metrics.get("Duration") or 0),
        requests=int(metrics.get("RequestCount") or 0),
        server_error_percent=float(codes.get("Status5xx") or 0),
        p99_ms=float(p99) * 1000.0 if p99 is not None else None,
        causes=tuple(str(cause) for cause in causes),
    )


@dataclass(frozen=True)
class TrafficTally:
    """The windows of one environment summed so far, and the latest one."""

    requests: int = 0
    server_errors: float = 0.0
    windows: int = 0
    latest: MetricsWindow | None = None

    def add(self, window: MetricsWindow) -> TrafficTally:
        """This tally with `window` added, if it is newer than the latest one (else unchanged).

        A window without `RefreshedAt` cannot be told apart from the last one, so it is not added.
        """
        if window.refreshed is None:
            return self
        latest = self.latest.refreshed if self.latest is not None else None
        if latest is not None and window.refreshed <= latest:
            return self
        return TrafficTally(
            requests=self.requests + window.requests,
            server_errors=self.server_errors + window.server_errors,
            windows=self.windows + 1,
            latest=window,
        )

    def counters(self) -> TrafficCounters:
        """The cumulative counters; EB counts no connection errors, and gives no mean latency."""
        return TrafficCounters(
            requests=self.requests,
            server_errors=round(self.server_errors),
            connection_errors=0,
            mean_response_ms=None,
            p99_ms=self.latest.p99_ms if self.latest is not None else None,
        )

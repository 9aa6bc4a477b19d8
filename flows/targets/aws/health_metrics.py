"""Pure reading of EB enhanced health: one metrics window per answer, summed into cumulative counters.

`DescribeEnvironmentHealth(AttributeNames=["All"])` reports the application's requests over its
latest window (`ApplicationMetrics.Duration`, usually 10 s): a request figure, one figure per
status-code class, and latency percentiles. The figures come in two readings: botocore's model
documents `StatusCodes` as percentages and `RequestCount` as an average per second, while AWS's
own CLI example shows counts. The 5xx share is taken relative to the status codes' own sum, which
is the same under both readings; the request count follows whichever reading the answer is
consistent with (codes summing to `RequestCount`: counts; summing to 100: percentages of
`RequestCount` x `Duration` requests). An answer consistent with neither stops the analysis
(`AwsHealthError`), never an impossible share. `TrafficCounters` are cumulative, so the target
adds each new window (one whose `RefreshedAt` moved on) to a `TrafficTally`; p99 is the latest
window's. No boto3 here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.targets.aws.errors import AwsHealthError
from flows.targets.base import TrafficCounters
from flows.targets.lease import as_utc

STATUS_CLASSES = ("Status2xx", "Status3xx", "Status4xx", "Status5xx")
# Four whole-number percentages, each rounded, sum to 100 give or take 2.
PERCENT_SUM = (98.0, 102.0)
HEALTH_HINT = (
    "look at the environment's enhanced health in the EB console (or `aws elasticbeanstalk "
    "describe-environment-health --attribute-names All`); the analysis judges nothing it cannot read"
)


@dataclass(frozen=True)
class MetricsWindow:
    """One window of an environment's application metrics, as EB enhanced health reports it."""

    refreshed: datetime | None  # RefreshedAt: when EB computed it
    duration_s: int  # the window's length
    requests: int  # requests answered in the window
    server_errors: float  # 5xx answers in the window (approximate when EB gave percentages)
    p99_ms: float | None  # the window's p99 latency, None when there were no requests
    causes: tuple[str, ...] = ()
    reading: str = "counts"  # how the figures were read: "counts" or "percentages"

    @property
    def server_error_percent(self) -> float:
        """The window's 5xx share, 0..100."""
        return 100.0 * self.server_errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Figures:
    """A window's request and 5xx figures, and which reading gave them."""

    requests: int
    server_errors: float
    reading: str


def _number(value: Any, field: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _unreadable(f"{field} is {value!r}, not a count or percentage")
    return float(value)


def _unreadable(what: str) -> AwsHealthError:
    message = f"cannot read EB's application metrics: {what}"
    return AwsHealthError("DescribeEnvironmentHealth", "UninterpretableMetrics", message, HEALTH_HINT)


def figures_from(metrics: Mapping[str, Any]) -> Figures:
    """Requests and 5xx answers of one `ApplicationMetrics`, under whichever reading fits it.

    Raises `AwsHealthError` when the status codes fit neither reading (they sum neither to
    `RequestCount` nor to about 100), when requests were counted but no status code was, or
    when a figure is negative or not a number.
    """
    count = _number(metrics.get("RequestCount"), "RequestCount")
    duration = _number(metrics.get("Duration"), "Duration")
    raw: Mapping[str, Any] = metrics.get("StatusCodes") or {}
    codes = {name: _number(raw.get(name), f"StatusCodes.{name}") for name in STATUS_CLASSES}
    total = sum(codes.values())
    share = codes["Status5xx"] / total if total else 0.0  # the same under both readings
    if total == 0:
        if count:
            raise _unreadable(f"RequestCount is {count:g} but no status code was counted")
        return Figures(0, 0.0, "counts")
    if total == count:  # counts: the classes add up to the requests
        return Figures(int(count), codes["Status5xx"], "counts")
    if PERCENT_SUM[0] <= total <= PERCENT_SUM[1]:
        if not duration:
            raise _unreadable("status codes are percentages, but there is no Duration to count requests over")
        requests = round(count * duration)  # RequestCount: an average per second over the window
        return Figures(requests, requests * share, "percentages")
    raise _unreadable(
        f"the status codes sum to {total:g}, which is neither RequestCount ({count:g}: counts) "
        "nor 100 (percentages)"
    )


def window_from(answer: Mapping[str, Any]) -> MetricsWindow | None:
    """The window in a DescribeEnvironmentHealth answer; None when it has no application metrics.

    No `ApplicationMetrics` (or neither a Duration nor a RequestCount in it) is what basic health
    reports. Figures it cannot interpret raise `AwsHealthError` (see `figures_from`).
    """
    metrics: Mapping[str, Any] = answer.get("ApplicationMetrics") or {}
    if "Duration" not in metrics and "RequestCount" not in metrics:
        return None
    figures = figures_from(metrics)
    latency: Mapping[str, Any] = metrics.get("Latency") or {}
    p99 = latency.get("P99")
    refreshed = answer.get("RefreshedAt")
    causes: Sequence[Any] = answer.get("Causes") or ()
    return MetricsWindow(
        refreshed=as_utc(refreshed) if isinstance(refreshed, datetime) else None,
        duration_s=int(metrics.get("Duration") or 0),
        requests=figures.requests,
        server_errors=figures.server_errors,
        p99_ms=float(p99) * 1000.0 if p99 is not None else None,
        causes=tuple(str(cause) for cause in causes),
        reading=figures.reading,
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

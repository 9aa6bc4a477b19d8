"""Traffic from EB enhanced health: windows summed into cumulative counters; canary refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flows.errors import TargetError
from flows.targets.aws.errors import AwsCanaryUnsupported, AwsHealthError
from flows.targets.aws.health_metrics import MetricsWindow, TrafficTally, window_from
from flows.targets.base import TrafficCounters
from tests.flows.targets.aws.eb_world import NODE_1, EbWorld

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def health(
    seconds: float,
    requests: int,
    percent_5xx: int = 0,
    p99_s: float | None = 0.25,
    causes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A DescribeEnvironmentHealth answer (AttributeNames=All) refreshed `seconds` after T0."""
    metrics: dict[str, Any] = {"Duration": 10, "RequestCount": requests}
    if requests:
        metrics["StatusCodes"] = {
            "Status2xx": 100 - percent_5xx,
            "Status3xx": 0,
            "Status4xx": 0,
            "Status5xx": percent_5xx,
        }
        if p99_s is not None:
            metrics["Latency"] = {"P999": p99_s * 2, "P99": p99_s, "P95": p99_s / 2, "P50": 0.01}
    return {
        "EnvironmentName": NODE_1,
        "HealthStatus": "Ok",
        "Status": "Ready",
        "Color": "Green",
        "Causes": list(causes),
        "ApplicationMetrics": metrics,
        "InstancesHealth": {"Ok": 2},
        "RefreshedAt": T0 + timedelta(seconds=seconds),
    }


def queue(world: EbWorld, answer: dict[str, Any]) -> None:
    world.eb.add_response(
        "describe_environment_health", answer, {"EnvironmentName": NODE_1, "AttributeNames": ["All"]}
    )


def test_a_window_reads_requests_5xx_share_and_p99() -> None:
    window = window_from(health(10, 200, percent_5xx=3, p99_s=0.412, causes=("3 % of requests fail",)))
    assert window == MetricsWindow(T0 + timedelta(seconds=10), 10, 200, 3.0, 412.0, ("3 % of requests fail",))
    assert window.server_errors == 6.0


def test_basic_health_has_no_window() -> None:
    answer = health(10, 5)
    del answer["ApplicationMetrics"]
    assert window_from(answer) is None
    assert window_from({**answer, "ApplicationMetrics": {}}) is None


def test_a_window_is_added_once_and_never_backwards() -> None:
    first, second = window_from(health(10, 100, 2)), window_from(health(20, 50, 0, p99_s=0.1))
    assert first is not None and second is not None
    tally = TrafficTally().add(first).add(first).add(second).add(first)
    assert (tally.requests, tally.server_errors, tally.windows) == (150, 2.0, 2)
    assert tally.counters() == TrafficCounters(150, 2, 0, None, 100.0)


def test_traffic_accumulates_windows_as_refreshed_at_moves_on() -> None:
    world = EbWorld()
    target = world.target()
    queue(world, health(10, 100, percent_5xx=1, p99_s=0.2))
    queue(world, health(10, 100, percent_5xx=1, p99_s=0.2))  # the same window, read again
    queue(world, health(20, 300, percent_5xx=2, p99_s=0.35))
    queue(world, health(30, 0))  # a quiet window: no status codes, no latency

    readings = [target.traffic(NODE_1) for _ in range(4)]

    assert [r.requests for r in readings] == [100, 100, 400, 400]
    assert [r.server_errors for r in readings] == [1, 1, 7, 7]
    assert [r.p99_ms for r in readings] == [200.0, 200.0, 350.0, None]
    assert all(r.connection_errors == 0 and r.mean_response_ms is None for r in readings)
    world.done()


def test_health_causes_are_logged_when_they_change() -> None:
    world = EbWorld()
    target = world.target()
    causes = ("Overall health is Degraded", "5.0 % of the requests are failing with HTTP 5xx.")
    queue(world, health(10, 100, percent_5xx=5, causes=causes))
    queue(world, health(20, 100, percent_5xx=5, causes=causes))

    target.traffic(NODE_1)
    target.traffic(NODE_1)

    assert len([line for line in world.log if "failing with HTTP 5xx" in line]) == 1
    world.done()


def test_basic_health_says_to_turn_on_enhanced_health() -> None:
    world = EbWorld()
    answer = health(10, 0)
    del answer["ApplicationMetrics"]
    queue(world, answer)

    with pytest.raises(AwsHealthError) as failure:
        world.target().traffic(NODE_1)

    assert "enhanced health" in str(failure.value) and "SystemType=enhanced" in str(failure.value)
    world.done()


def test_a_refused_health_call_names_the_permission() -> None:
    world = EbWorld()
    world.eb.add_client_error(
        "describe_environment_health",
        "InvalidRequestException",
        "Enhanced health reporting is not enabled for this environment.",
        400,
    )

    with pytest.raises(AwsHealthError) as failure:
        world.target().traffic(NODE_1)

    assert failure.value.code == "InvalidRequestException"
    assert "elasticbeanstalk:DescribeEnvironmentHealth" in str(failure.value)
    world.done()


def test_canary_traffic_steps_are_refused_clearly() -> None:
    target = EbWorld().target()
    assert target.supports_canary is False

    with pytest.raises(AwsCanaryUnsupported) as failure:
        target.set_traffic_share(NODE_1, 10)

    message = str(failure.value)
    assert isinstance(failure.value, TargetError)
    assert (
        "local-only" in message and "traffic-splitting" in message and "leave traffic_steps empty" in message
    )
    target.set_traffic_share(NODE_1, 0)  # ending a canary asks for what is always true here

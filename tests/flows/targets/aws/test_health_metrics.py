"""Traffic from EB enhanced health: windows summed into cumulative counters; canary refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flows.errors import TargetError
from flows.targets.aws.errors import AwsCanaryUnsupported, AwsHealthError
from flows.targets.aws.health_metrics import MetricsWindow, TrafficTally, figures_from, window_from
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
    """A DescribeEnvironmentHealth answer (AttributeNames=All) refreshed `seconds` after T0, in the
    shape of AWS's CLI example: `requests` answers in the window, status codes as counts."""
    metrics: dict[str, Any] = {"Duration": 10, "RequestCount": requests}
    if requests:
        errors = round(requests * percent_5xx / 100)
        metrics["StatusCodes"] = {
            "Status2xx": requests - errors,
            "Status3xx": 0,
            "Status4xx": 0,
            "Status5xx": errors,
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


def documented(
    seconds: float, per_second: int, percent: dict[str, int], duration: int = 10
) -> dict[str, Any]:
    """The same answer in the shape botocore's model documents: `RequestCount` an average per
    second over the window, status codes as whole-number percentages."""
    answer = health(seconds, 0)
    answer["ApplicationMetrics"] = {
        "Duration": duration,
        "RequestCount": per_second,
        "StatusCodes": {f"Status{k}": v for k, v in percent.items()},
        "Latency": {"P99": 0.3},
    }
    return answer


def queue(world: EbWorld, answer: dict[str, Any]) -> None:
    world.eb.add_response(
        "describe_environment_health", answer, {"EnvironmentName": NODE_1, "AttributeNames": ["All"]}
    )


def test_a_window_reads_requests_5xx_share_and_p99() -> None:
    window = window_from(health(10, 200, percent_5xx=3, p99_s=0.412, causes=("3 % of requests fail",)))
    assert window == MetricsWindow(
        T0 + timedelta(seconds=10), 10, 200, 6.0, 412.0, ("3 % of requests fail",), "counts"
    )
    assert window.server_error_percent == 3.0


def test_counts_as_aws_cli_shows_them_give_the_share_of_the_requests() -> None:
    """The failed release of the report: 90 of 655 requests 5xx in a window, read as counts."""
    window = window_from(health(10, 655, percent_5xx=0) | {"ApplicationMetrics": {
        "Duration": 10, "RequestCount": 655,
        "StatusCodes": {"Status2xx": 565, "Status3xx": 0, "Status4xx": 0, "Status5xx": 90},
    }})  # fmt: skip
    assert window is not None
    assert (window.requests, window.server_errors, window.reading) == (655, 90.0, "counts")
    assert window.server_error_percent == pytest.approx(13.74, abs=0.01)


def test_percentages_as_botocore_documents_them_give_the_same_share() -> None:
    """65.5 requests/s over 10 s, 86 % 2xx and 14 % 5xx: the share is read relative to the sum."""
    window = window_from(documented(10, 65, {"2xx": 85, "3xx": 0, "4xx": 1, "5xx": 14}))
    assert window is not None
    assert (window.requests, window.reading) == (650, "percentages")
    assert window.server_errors == pytest.approx(91.0)
    assert window.server_error_percent == pytest.approx(14.0)


def test_rounded_percentages_that_miss_100_are_still_percentages() -> None:
    window = window_from(documented(10, 3, {"2xx": 34, "3xx": 33, "4xx": 33, "5xx": 1}))  # sum 101
    assert window is not None and window.reading == "percentages" and window.requests == 30
    assert window.server_error_percent == pytest.approx(100 / 101)


def test_a_share_never_exceeds_100_percent_under_either_reading() -> None:
    for answer in (
        health(10, 40, percent_5xx=100),
        documented(10, 4, {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 100}),
    ):
        window = window_from(answer)
        assert window is not None and window.server_error_percent == 100.0


@pytest.mark.parametrize(
    ("metrics", "said"),
    [
        (
            {"Duration": 10, "RequestCount": 655, "StatusCodes": {"Status2xx": 400, "Status5xx": 90}},
            "the status codes sum to 490, which is neither RequestCount (655: counts) nor 100",
        ),
        ({"Duration": 10, "RequestCount": 12}, "RequestCount is 12 but no status code was counted"),
        (
            {"Duration": 10, "RequestCount": 5, "StatusCodes": {"Status2xx": 5, "Status5xx": -1}},
            "StatusCodes.Status5xx is -1",
        ),
        ({"Duration": 10, "RequestCount": "many"}, "RequestCount is 'many'"),
        (
            {"RequestCount": 7, "StatusCodes": {"Status2xx": 99, "Status5xx": 1}},
            "no Duration to count requests over",
        ),
    ],
)
def test_figures_it_cannot_interpret_stop_the_analysis_with_a_message(
    metrics: dict[str, Any], said: str
) -> None:
    with pytest.raises(AwsHealthError) as failure:
        figures_from(metrics)
    assert said in str(failure.value) and "cannot read EB's application metrics" in str(failure.value)
    assert failure.value.code == "UninterpretableMetrics"


def test_the_target_stops_on_figures_it_cannot_interpret() -> None:
    world = EbWorld()
    answer = health(10, 655)
    answer["ApplicationMetrics"]["StatusCodes"] = {"Status2xx": 300, "Status5xx": 900}
    queue(world, answer)

    with pytest.raises(AwsHealthError, match="sum to 1200"):
        world.target().traffic(NODE_1)
    world.done()


def test_traffic_accumulates_documented_windows() -> None:
    world = EbWorld()
    target = world.target()
    queue(world, documented(10, 20, {"2xx": 99, "3xx": 0, "4xx": 0, "5xx": 1}))
    queue(world, documented(20, 30, {"2xx": 90, "3xx": 0, "4xx": 0, "5xx": 10}))

    readings = [target.traffic(NODE_1) for _ in range(2)]

    assert [(r.requests, r.server_errors) for r in readings] == [(200, 2), (500, 32)]
    world.done()


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

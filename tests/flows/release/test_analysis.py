"""The pure judgement of real traffic: window figures from two readings, and the verdict on them."""

from __future__ import annotations

import pytest

from flows.release.analysis import Verdict, WindowFigures, judge, window
from flows.release.settings import AnalysisSettings
from flows.targets.base import TrafficCounters

SETTINGS = AnalysisSettings(
    max_server_error_percent=1.0,
    min_requests=20,
    max_connection_errors=0,
    max_latency_ratio=2.0,
    latency_floor_ms=50.0,
)


def figures(
    requests: int,
    server_errors: int = 0,
    connection_errors: int = 0,
    mean_ms: float | None = None,
    p99_ms: float | None = None,
) -> WindowFigures:
    return WindowFigures(requests, server_errors, connection_errors, mean_ms, p99_ms, seconds=10.0)


def final(now: WindowFigures, baseline: WindowFigures | None = None) -> Verdict:
    return judge(now, baseline, SETTINGS, final=True)


def early(now: WindowFigures, baseline: WindowFigures | None = None) -> Verdict:
    return judge(now, baseline, SETTINGS, final=False)


# --- window figures --------------------------------------------------------------------------


def test_a_window_is_the_difference_of_two_cumulative_readings() -> None:
    before = TrafficCounters(100, 2, 1, 4.0, 30.0)
    after = TrafficCounters(350, 7, 1, 6.0, 45.0)
    assert window(before, after, 12.5) == WindowFigures(250, 5, 0, 6.0, 45.0, 12.5)


def test_a_counter_reset_never_gives_negative_figures() -> None:
    assert window(TrafficCounters(500, 10, 3), TrafficCounters(20, 0, 0)) == WindowFigures(
        0, 0, 0, None, None
    )


def test_the_latency_figure_is_the_p99_when_known_else_the_mean() -> None:
    assert figures(10, mean_ms=4.0, p99_ms=40.0).latency_ms == 40.0
    assert figures(10, mean_ms=4.0).latency_ms == 4.0
    assert figures(10).latency_ms is None


def test_the_server_error_share_and_the_summary() -> None:
    assert figures(0).server_error_percent == 0.0
    assert figures(200, server_errors=3).server_error_percent == pytest.approx(1.5)
    assert (
        figures(812, mean_ms=3.1).summary() == "812 requests, 0 5xx (0.0 %), 0 without answer, latency 3.1 ms"
    )
    assert figures(0).summary().endswith("latency -")


# --- the 5xx share -----------------------------------------------------------------------------


def test_a_5xx_share_over_the_threshold_with_enough_requests_fails_at_once() -> None:
    verdict = early(figures(100, server_errors=2))
    assert verdict.decided and not verdict.passed
    assert verdict.reasons == ("5xx share 2.0 % over 100 requests (at most 1 %)",)
    assert verdict.summary().startswith("FAILED: 5xx share 2.0 % over 100 requests")


def test_a_5xx_share_at_or_under_the_threshold_passes_at_the_end() -> None:
    assert not early(figures(100, server_errors=1)).decided  # a pass waits for the window's end
    verdict = final(figures(100, server_errors=1))
    assert verdict.decided and verdict.passed and verdict.conclusive
    assert verdict.summary() == "passed: 100 requests, 1 5xx (1.0 %), 0 without answer, latency -"


def test_a_5xx_share_over_too_few_requests_is_not_judged_early() -> None:
    verdict = early(figures(10, server_errors=5))  # 50 %, but only 10 of the 20 requests needed
    assert not verdict.decided and not verdict.passed
    assert verdict.summary().startswith("analysing: 10 requests")


def test_any_5xx_in_a_final_window_with_too_few_requests_fails() -> None:
    verdict = final(figures(10, server_errors=1))
    assert verdict.decided and not verdict.passed
    assert verdict.reasons == ("1 of only 10 requests answered 5xx (fewer than 20 to judge a share)",)


# --- requests without an answer ------------------------------------------------------------------


def test_a_request_without_an_answer_fails_at_once_even_with_little_traffic() -> None:
    verdict = early(figures(3, connection_errors=1))
    assert verdict.decided and not verdict.passed
    assert verdict.reasons == ("1 requests got no answer (at most 0)",)


def test_connection_errors_within_the_allowance_pass() -> None:
    lenient = SETTINGS.model_copy(update={"max_connection_errors": 2})
    verdict = judge(figures(100, connection_errors=2), None, lenient, final=True)
    assert verdict.passed


# --- latency against the previous prod -----------------------------------------------------------


def test_a_latency_over_the_ratio_of_the_previous_prods_fails() -> None:
    baseline = figures(500, p99_ms=80.0)
    verdict = early(figures(100, p99_ms=170.0), baseline)
    assert verdict.decided and not verdict.passed
    assert verdict.reasons == ("latency 170.0 ms above 2x the previous prod's (160.0 ms)",)


def test_a_latency_within_the_ratio_passes() -> None:
    assert final(figures(100, p99_ms=150.0), figures(500, p99_ms=80.0)).passed


def test_the_floor_keeps_fast_previous_prods_from_failing_on_noise() -> None:
    baseline = figures(500, mean_ms=2.0)  # 2 ms: the limit is 2 x the 50 ms floor, not 4 ms
    assert final(figures(100, mean_ms=90.0), baseline).passed
    verdict = final(figures(100, mean_ms=101.0), baseline)
    assert not verdict.passed and "above 2x the previous prod's (100.0 ms)" in verdict.reasons[0]


def test_latency_is_not_judged_without_a_baseline_or_with_too_few_requests() -> None:
    assert final(figures(100, p99_ms=5000.0)).passed  # no previous prod measured
    assert final(figures(100, p99_ms=5000.0), figures(500)).passed  # the previous prod had no latency
    assert final(figures(10, p99_ms=5000.0), figures(500, p99_ms=80.0)).passed  # too few to judge


def test_every_failing_figure_is_named() -> None:
    verdict = early(
        figures(100, server_errors=50, connection_errors=3, p99_ms=900.0), figures(500, p99_ms=80.0)
    )
    assert len(verdict.reasons) == 3
    assert verdict.summary().count("; ") == 2


# --- too little traffic ---------------------------------------------------------------------------


def test_a_quiet_clean_window_passes_as_inconclusive() -> None:
    verdict = final(figures(5))
    assert verdict.decided and verdict.passed and not verdict.conclusive
    assert verdict.summary().startswith("passed (inconclusive: too little traffic to judge the 5xx share)")
    assert final(figures(0)).passed and not final(figures(0)).conclusive


def test_a_pass_is_never_decided_before_the_window_is_over() -> None:
    verdict = early(figures(10_000))
    assert not verdict.decided and not verdict.passed and verdict.reasons == ()


def test_a_single_stray_5xx_is_judged_over_the_whole_window_not_early() -> None:
    assert not early(figures(50, server_errors=1)).decided  # 2 %, but one error: wait for the end
    assert not judge(figures(50, server_errors=1), None, SETTINGS, final=True).passed
    assert judge(figures(200, server_errors=1), None, SETTINGS, final=True).passed  # 0.5 %

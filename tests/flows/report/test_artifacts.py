"""Rendering of the run's artifacts: unit tests, the zero-downtime probe, the release report."""

from __future__ import annotations

from flows.release.probe_stats import Sample, SwapMark, buckets, summarize
from flows.report.artifacts import (
    RunReport,
    StepRecord,
    probe_verdict,
    render_probe,
    render_run,
    render_unit_tests,
)
from flows.source.junit import TestFailure, TestSummary


def test_unit_tests_artifact_lists_failures() -> None:
    summary = TestSummary(
        5, 1, 0, 1, 1.25, (TestFailure("tests.test_x::test_y", "failure", "assert 1 == 2"),)
    )
    text = render_unit_tests(summary, "v1.0")
    assert "# Unit tests FAILED: v1.0" in text
    assert "| 5 | 3 | 1 | 0 | 1 | 1.2 |" in text
    assert "`tests.test_x::test_y` | failure | assert 1 == 2" in text


def test_probe_artifact_shows_phases_chart_and_violation() -> None:
    samples = [Sample(t / 10, 0.002, True) for t in range(50)] + [Sample(2.05, 0.1, False, "HTTP 503")]
    summary = summarize("http://127.0.0.1:9", samples, SwapMark(2.0, 2.1))
    text = render_probe(summary, buckets(samples, summary.swap, count=20))
    assert "**VIOLATION**: 1 of 51 requests to prod failed (1 during the swap)" in text
    assert "| during |" in text and "| before |" in text and "| after |" in text
    chart_swap_line = next(line for line in text.splitlines() if line.startswith("swap "))
    assert "x" in chart_swap_line
    assert "| HTTP 503 |" in text


def test_probe_verdict_without_failures() -> None:
    summary = summarize("u", [Sample(0.0, 0.001, True)], SwapMark(0.0, 0.0))
    assert probe_verdict(summary) == "zero downtime held: 0 of 1 requests to prod failed"


def test_run_report_has_version_commit_prod_and_step_durations() -> None:
    report = RunReport(application="app", target="local", repo="/r", ref="HEAD", version="v2", commit="abc")
    report.ok, report.outcome = True, "v2 is live on prod (node-1)"
    report.prod = "node-1 at 127.0.0.1:8080: version v2, status Ready, health Green"
    report.steps = [
        StepRecord("checkout", "Completed", 0.31),
        StepRecord("unit tests", "Cached", 0.02, "reused"),
    ]
    report.verifications = ["http://127.0.0.1:8080: ok"]
    text = render_run(report)
    assert text.startswith("# app v2: released")
    assert "| commit | `abc` |" in text
    assert "| prod now | node-1 at 127.0.0.1:8080: version v2, status Ready, health Green |" in text
    assert "| unit tests | Cached | 0.02 | reused |" in text
    assert "- http://127.0.0.1:8080: ok" in text


def test_run_report_escapes_table_pipes() -> None:
    report = RunReport(application="a", target="local", repo="r", ref="x", outcome="failed | badly")
    assert "failed \\| badly" in render_run(report)


def test_the_report_shows_the_traffic_analysis_per_step_with_a_chart() -> None:
    from flows.report.artifacts import AnalysisRow, RunReport, render_run

    report = RunReport(application="app", target="local", repo="/r", ref="HEAD", version="v2", ok=False)
    report.analysis = [
        AnalysisRow("canary 10 %", 10, "passed", 300, 0, 0, 3.0, 5.0),
        AnalysisRow("canary 50 %", 50, "FAILED: 5xx share 8.0 %", 1500, 120, 3, 9.0, 5.0),
    ]
    text = render_run(report)
    assert "| canary 10 % | 10 % | passed | 300 | 0 | 0 | 3.0 ms | 5.0 ms |" in text
    assert "| canary 50 % | 50 % | FAILED: 5xx share 8.0 % | 1500 | 120 | 3 | 9.0 ms | 5.0 ms |" in text
    chart = [line for line in text.splitlines() if line.startswith("canary 50 %  ")]
    assert chart and "xxx" in chart[0] and "8.2 % failed  FAILED" in chart[0]


def test_the_probe_artifact_reports_each_user_path_old_against_new() -> None:
    from flows.release.probe_stats import Sample, SwapMark, summarize
    from flows.report.artifacts import render_probe

    samples = [
        Sample(0.1, 0.004, True, "", "/ (text/html)"),
        Sample(5.0, 0.002, False, "HTTP 500", "/ (text/html)"),
    ]
    samples += [Sample(0.2, 0.001, True, "", "/health (application/json)")]
    text = render_probe(summarize("http://127.0.0.1:8080", samples, SwapMark(2.0, 2.1)), [])
    assert "| / (text/html) | 2 | 1 | 4.0 ms | - | 4.0 ms | - |" in text
    assert "| /health (application/json) | 1 | 0 | 1.0 ms | - | 1.0 ms | - |" in text

"""Rendering of the run report: version, commit, who is prod, the steps, the traffic analysis."""

from __future__ import annotations

from flows.release.analysis import AnalysisRow
from flows.report.artifacts import RunReport, StepRecord, render_run


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

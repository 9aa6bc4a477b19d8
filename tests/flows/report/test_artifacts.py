"""Rendering of the run report: version, commit, who is prod, the steps, the traffic analysis."""

from __future__ import annotations

import base64
import re

from flows.markdown import shorten
from flows.release.analysis import AnalysisRow
from flows.report.artifacts import DESCRIPTION_CHARS, RunReport, StepRecord, render_run, title

LONG = (
    "node-2 at 127.0.0.1:8080: version v2-0a1b2c3d, status Ready, health Green, serving since "
    "03:12:44 with 4 workers behind the proxy's prod address"
)


def svg_of(text: str) -> str:
    """The SVG document of the report's (first) inline picture."""
    found = re.search(r"!\[[^\]]*\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", text)
    assert found, "no inline SVG picture"
    return base64.b64decode(found.group(1)).decode()


def test_run_report_has_version_commit_prod_and_step_durations() -> None:
    report = RunReport(application="app", target="local", repo="/r", ref="HEAD", version="v2", commit="abc")
    report.ok, report.outcome = True, "v2 is live on prod (node-1)"
    report.prod = LONG
    report.steps = [
        StepRecord("checkout", "Completed", 0.31),
        StepRecord("unit tests", "Cached", 0.02, "reused from an earlier run"),
    ]
    report.verifications = ["http://127.0.0.1:8080: ok"]
    text = render_run(report)
    assert text.startswith("# app v2: released\n")
    assert "- **version** `v2`, commit `abc`" in text
    assert f"- **prod now** {LONG}\n" in text  # whole, in a list item that wraps
    assert "| unit tests | Cached | 0.02 |" in text
    assert "- **unit tests** (Cached): reused from an earlier run" in text
    assert "- http://127.0.0.1:8080: ok" in text


def test_no_table_starts_with_an_empty_header_and_no_long_text_sits_in_a_cell() -> None:
    report = RunReport(application="app", target="local", repo="/r", ref="HEAD", version="v2")
    report.outcome = "DeploymentFailed: " + LONG
    report.prod = report.preprod = LONG
    report.steps = [StepRecord("deploy", "Failed", 1.0, LONG)]
    text = render_run(report)
    tables = [line for line in text.splitlines() if line.startswith("|")]
    assert "| | |" not in text
    assert all(len(cell.strip()) <= 40 for line in tables for cell in line.strip("|").split("|"))
    assert f"**Outcome:** DeploymentFailed: {LONG}" in text


def test_a_run_its_worker_stopped_is_titled_stopped_not_failed() -> None:
    report = RunReport(application="app", target="local", repo=".", ref="main", version="v3-12345678")
    report.stopped = True
    assert title(report) == "app v3-12345678: STOPPED"
    assert render_run(report).startswith("# app v3-12345678: STOPPED\n")


def test_a_run_that_failed_before_its_checkout_is_titled_by_its_ref() -> None:
    report = RunReport(application="app", target="local", repo="/r", ref="main", outcome="PreflightFailed: x")
    assert title(report) == "app main (before its checkout): FAILED"
    assert render_run(report).startswith("# app main (before its checkout): FAILED\n")
    report.version = "v3-12345678"
    assert title(report) == "app v3-12345678: FAILED"


def test_the_artifact_description_is_cut_at_a_word() -> None:
    report = RunReport(application="app", target="local", repo="/r", ref="HEAD", version="v2")
    report.outcome = "NotReadyInTime: " + LONG * 3
    description = shorten(f"{title(report)}: {report.outcome}", DESCRIPTION_CHARS)
    assert len(description) <= DESCRIPTION_CHARS and description.endswith("…")
    assert (title(report) + ": " + report.outcome).startswith(description[:-1])
    assert description[:-1].split()[-1] in (title(report) + ": " + report.outcome).split()


def test_the_report_shows_the_traffic_analysis_per_step_with_a_chart() -> None:
    report = RunReport(application="app", target="local", repo="/r", ref="HEAD", version="v2", ok=False)
    report.analysis = [
        AnalysisRow("canary 10 %", 10, "passed (inconclusive", 300, 0, 0, 3.0, 5.0),
        AnalysisRow("canary 50 %", 50, "FAILED", 1500, 120, 3, 9.0, 5.0),
    ]
    text = render_run(report)
    assert "| canary 10 % | 10 % | passed (inconclusive) | 300 | 0 | 0 | 3.0 ms | 5.0 ms |" in text
    assert "| canary 50 % | 50 % | FAILED | 1500 | 120 | 3 | 9.0 ms | 5.0 ms |" in text
    svg = svg_of(text)
    assert "canary 50 % (50 %)" in svg
    assert "1500 req, 8.2 % failed, 9.0 ms (old 5.0 ms), FAILED" in svg
    assert "####" not in text and "```" not in text

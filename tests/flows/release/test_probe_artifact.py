"""The zero-downtime probe's artifact: phases, per user path, the chart, the violation."""

from __future__ import annotations

from flows.release.probe_artifact import probe_verdict, render_probe
from flows.release.probe_stats import Sample, SwapMark, buckets, summarize


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


def test_the_probe_artifact_reports_each_user_path_old_against_new() -> None:
    samples = [
        Sample(0.1, 0.004, True, "", "/ (text/html)"),
        Sample(5.0, 0.002, False, "HTTP 500", "/ (text/html)"),
    ]
    samples += [Sample(0.2, 0.001, True, "", "/health (application/json)")]
    text = render_probe(summarize("http://127.0.0.1:8080", samples, SwapMark(2.0, 2.1)), [])
    assert "| / (text/html) | 2 | 1 | 4.0 ms | - | 4.0 ms | - |" in text
    assert "| /health (application/json) | 1 | 0 | 1.0 ms | - | 1.0 ms | - |" in text

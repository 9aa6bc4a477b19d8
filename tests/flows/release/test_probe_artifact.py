"""The zero-downtime probe's artifact: phases, per user path, the chart, the violation."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flows.release.probe_artifact import latency_svg, probe_verdict, render_probe
from flows.release.probe_stats import Sample, SwapMark, buckets, summarize
from tests.flows.report.test_artifacts import svg_of


def test_probe_artifact_shows_phases_chart_and_violation() -> None:
    samples = [Sample(t / 10, 0.002, True) for t in range(50)] + [Sample(2.05, 0.1, False, "HTTP 503")]
    summary = summarize("http://127.0.0.1:9", samples, SwapMark(2.0, 2.1))
    text = render_probe(summary, buckets(samples, summary.swap, count=20))
    assert "**VIOLATION**: 1 of 51 requests to prod failed (1 during the swap)" in text
    assert "| during |" in text and "| before |" in text and "| after |" in text
    svg = svg_of(text)
    assert ">swap</text>" in svg and ">failed request</text>" in svg
    assert "- at 2.050 s, after 100.0 ms: HTTP 503" in text
    assert "▁" not in text and "```" not in text


def test_the_latency_chart_shades_the_swap_where_it_happened() -> None:
    samples = [Sample(t / 10, 0.002, True) for t in range(100)]
    swap = SwapMark(5.0, 6.0)
    root = ET.fromstring(latency_svg(buckets(samples, swap, count=10), swap))
    shaded = next(r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill-opacity"))
    end = 9.902  # the last slice ends with the last answer (9.9 s + 2 ms)
    x0, width = float(shaded.get("x", 0)), float(shaded.get("width", 0))
    assert abs(x0 - (60 + 680 * 5.0 / end)) < 1 and abs(width - 680 * 1.0 / end) < 1


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

"""The hand-drawn SVG charts: well-formed documents with the data where it belongs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flows.report.svg import BarRow, Segment, Series, Span, bar_rows, line_chart, nice_top

NS = "{http://www.w3.org/2000/svg}"


def test_nice_top_rounds_up_to_a_readable_axis() -> None:
    assert [nice_top(v) for v in (0.0, 0.7, 3.2, 18.0, 240.0)] == [1.0, 1.0, 5.0, 20.0, 250.0]


def test_line_chart_draws_lines_with_gaps_the_span_and_the_marks() -> None:
    svg = line_chart(
        "Latency <prod>",
        [Series("p50", "#00f", [(0.5, 2.0), (1.5, None), (2.5, 4.0), (3.5, 8.0)])],
        x_end=4.0,
        spans=[Span(2.0, 3.0, "swap")],
        marks=[3.0],
    )
    root = ET.fromstring(svg)  # well-formed, title escaped
    assert root.get("viewBox") == "0 0 760 260"
    assert root.find(f"{NS}title").text == "Latency <prod>"  # type: ignore[union-attr]
    lines = root.findall(f"{NS}polyline")
    assert len(lines) == 1 and len(lines[0].get("points", "").split()) == 2  # the gap splits the line
    assert len(root.findall(f"{NS}circle")) == 1  # the lone point before the gap
    shaded = [r for r in root.findall(f"{NS}rect") if r.get("fill-opacity")]
    left, width = float(shaded[0].get("x", 0)), float(shaded[0].get("width", 0))
    assert (left, round(width, 1)) == (60 + 680 * 0.5, 680 * 0.25)  # 2 s .. 3 s of 4 s
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "swap" in texts and "10 ms" in texts and "4 s" in texts and "failed request" in texts


def test_bar_rows_scale_to_the_largest_and_keep_small_failures_visible() -> None:
    svg = bar_rows(
        "Traffic",
        [
            BarRow("canary", [Segment(100, "green"), Segment(0, "red")], "100 req"),
            BarRow(
                "after", [Segment(199, "green"), Segment(1, "red")], "200 req", extra=[Segment(3.0, "blue")]
            ),
        ],
        legend=[("answered", "green")],
    )
    root = ET.fromstring(svg)
    rects = {(r.get("fill"), r.get("width")) for r in root.findall(f"{NS}rect")}
    assert ("green", "110.0") in rects and ("green", "218.9") in rects
    assert ("red", "2.0") in rects  # 1 of 200 is under a pixel: drawn 2 px wide
    assert ("blue", "220.0") in rects
    assert [t.text for t in root.iter(f"{NS}text")][:3] == ["Traffic", "canary", "100 req"]


def test_a_long_text_widens_the_bar_chart_instead_of_being_cut() -> None:
    text = "2210 req, 0.0 % failed, 4.0 ms (old 3.9 ms), passed (inconclusive: too little traffic)"
    root = ET.fromstring(bar_rows("Traffic", [BarRow("after the swap", [Segment(1, "green")], text)]))
    assert float(root.get("width", 0)) >= 170 + 220 + 10 + 7 * len(text)

"""Charts as SVG documents, drawn by hand: a line chart over time with marked spans, and bar rows.

Pure functions (data in, SVG text out), so the pictures are tested like the text around them;
no plotting library is needed. The artifacts embed them with `flows.markdown.svg_image`. Every
chart has a `viewBox`, so the UI scales it down to its column's width instead of cutting it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

WIDTH = 760
FONT = 'font-family="sans-serif" font-size="12"'
AXIS = "#64748b"
GRID = "#e2e8f0"
FAILED = "#dc2626"
PASSED = "#16a34a"
HIGHLIGHT = "#f59e0b"  # a span's colour unless it is given one
CHAR_W = 7.0  # an upper bound of a 12 px sans-serif character's width


@dataclass(frozen=True)
class Series:
    """One line of a line chart: `(x, y)` points, a gap where `y` is None."""

    name: str
    color: str
    points: Sequence[tuple[float, float | None]]


@dataclass(frozen=True)
class Span:
    """A shaded stretch of the x axis with its label (e.g. the swap)."""

    start: float
    end: float
    label: str
    color: str = HIGHLIGHT


class Segment(NamedTuple):
    """One part of a bar: its size and colour (a pair, unpacked where it is drawn)."""

    value: float
    color: str


@dataclass(frozen=True)
class BarRow:
    """One labelled bar made of segments, with a line of text beside it."""

    label: str
    segments: Sequence[Segment]
    text: str = ""
    text_color: str = AXIS
    extra: Sequence[Segment] = ()  # a thinner second bar under the first


def nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1.0, 2.0, 2.5, 5.0, 10.0) if value <= step * power)


def _text(x: float, y: float, text: str, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" {FONT}{" " + extra if extra else ""}>{escape(text)}</text>'


def _document(height: int, title: str, body: list[str], width: int = WIDTH) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)}>'
        f'<title>{escape(title)}</title><rect width="{width}" height="{height}" fill="#ffffff"/>'
        + "".join(body)
        + "</svg>"
    )


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_end: float,
    x_unit: str = "s",
    y_unit: str = "ms",
    spans: Sequence[Span] = (),
    marks: Sequence[float] = (),
    height: int = 260,
) -> str:
    """Lines over `0 .. x_end`, `spans` shaded behind them, `marks` as red ticks (e.g. failures)."""
    left, right, top, bottom = 60, WIDTH - 20, 30, height - 40
    values = [y for s in series for _, y in s.points if y is not None]
    y_top = nice_top(max(values, default=0.0))
    x_span = x_end if x_end > 0 else 1.0

    def px(x: float) -> float:
        return left + (right - left) * min(max(x / x_span, 0.0), 1.0)

    def py(y: float) -> float:
        return bottom - (bottom - top) * min(y / y_top, 1.0)

    body = [_text(left, 18, title, 'font-weight="bold"')]
    for span in spans:
        x0, x1 = px(span.start), max(px(span.end), px(span.start) + 2)
        body.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{bottom - top}" '
            f'fill="{span.color}" fill-opacity="0.25"/>'
        )
        body.append(_text(x0, top - 3, span.label, f'fill="{span.color}" font-weight="bold"'))
    for index in range(5):
        y_value = y_top * index / 4
        y = py(y_value)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, f"{y_value:g} {y_unit}", f'text-anchor="end" fill="{AXIS}"'))
    for index in range(5):
        x_value = x_span * index / 4
        body.append(
            _text(px(x_value), bottom + 16, f"{x_value:.0f} {x_unit}", f'text-anchor="middle" fill="{AXIS}"')
        )
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{AXIS}"/>')
    for mark in marks:
        x = px(mark)
        body.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{FAILED}" stroke-width="2"/>'
        )
    legend_x = float(left)
    for line in series:
        body += [_polyline(run, line.color, px, py) for run in _runs(line.points)]
        body.append(f'<rect x="{legend_x:.1f}" y="{height - 14}" width="14" height="4" fill="{line.color}"/>')
        body.append(_text(legend_x + 18, height - 9, line.name, f'fill="{AXIS}"'))
        legend_x += 30 + 7 * len(line.name)
    if marks:
        body.append(f'<rect x="{legend_x:.1f}" y="{height - 18}" width="3" height="12" fill="{FAILED}"/>')
        body.append(_text(legend_x + 8, height - 9, "failed request", f'fill="{AXIS}"'))
    return _document(height, title, body)


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The points split at gaps (None): each run is drawn as one line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def _polyline(
    run: list[tuple[float, float]], color: str, px: Callable[[float], float], py: Callable[[float], float]
) -> str:
    if len(run) == 1:
        x, y = run[0]
        return f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>'
    coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
    return f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>'


def bar_rows(title: str, rows: Sequence[BarRow], *, legend: Sequence[tuple[str, str]] = ()) -> str:
    """One horizontal bar per row, scaled to the largest, its label on the left and text on the right."""
    bar_w, row_h, top = 220, 40, 30
    label_w = max(170, round(16 + CHAR_W * max((len(row.label) for row in rows), default=0)))  # never cut
    longest = max((len(row.text) for row in rows), default=0)
    width = max(WIDTH, round(label_w + bar_w + 20 + CHAR_W * longest))  # the text is never cut
    height = top + row_h * len(rows) + (26 if legend else 10)
    most = max((sum(s.value for s in row.segments) for row in rows), default=0.0) or 1.0
    most_extra = max((sum(s.value for s in row.extra) for row in rows), default=0.0) or 1.0
    body = [_text(10, 18, title, 'font-weight="bold"')]
    for index, row in enumerate(rows):
        y = top + index * row_h
        body.append(_text(label_w - 8, y + 16, row.label, 'text-anchor="end"'))
        body += _bar(row.segments, label_w, y + 4, 16, bar_w / most)
        body += _bar(row.extra, label_w, y + 23, 6, bar_w / most_extra)
        body.append(_text(label_w + bar_w + 10, y + 16, row.text, f'fill="{row.text_color}"'))
    legend_x = 10.0
    for name, color in legend:
        body.append(f'<rect x="{legend_x:.1f}" y="{height - 18}" width="12" height="10" fill="{color}"/>')
        body.append(_text(legend_x + 16, height - 9, name, f'fill="{AXIS}"'))
        legend_x += 30 + 7 * len(name)
    return _document(height, title, body, width)


def _bar(segments: Sequence[Segment], x: float, y: float, h: int, scale: float) -> list[str]:
    shapes = []
    for value, color in segments:
        w = value * scale
        if value > 0:
            w = max(w, 2.0)  # a few failures among many requests stay visible
            shapes.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h}" fill="{color}"/>')
        x += w
    return shapes

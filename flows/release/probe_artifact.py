"""The zero-downtime probe's artifact: totals, per phase and per user path, the latency chart, failures.

`render_*` are pure (a summary in, markdown out); `publish_probe` puts it on the run as the
`zero-downtime` artifact. The run report reuses `probe_verdict` and `render_paths`.
"""

from __future__ import annotations

from collections.abc import Sequence

from flows.markdown import cell, ms, svg_image
from flows.release.probe_stats import Bucket, ProbeSummary, Sample, SwapMark
from flows.report.svg import Series, Span, line_chart

FAILURES_SHOWN = 20


def probe_verdict(summary: ProbeSummary) -> str:
    """One line: zero downtime held, or VIOLATION with the counts."""
    if summary.violation:
        return (
            f"**VIOLATION**: {summary.failures} of {summary.requests} requests to prod failed "
            f"({summary.swap_failures} during the swap)"
        )
    return f"zero downtime held: 0 of {summary.requests} requests to prod failed"


def latency_svg(slices: list[Bucket], swap: SwapMark | None, failed: Sequence[Sample] = ()) -> str:
    """The latency chart: p50 and max per slice over the probe's time, the swap shaded, failures in red."""
    middle = [((b.start + b.end) / 2, b) for b in slices]
    series = [
        Series("p50", "#2563eb", [(x, b.p50_ms) for x, b in middle]),
        Series("max", "#94a3b8", [(x, b.max_ms) for x, b in middle]),
    ]
    spans = [Span(swap.start, swap.end, "swap")] if swap is not None else []
    return line_chart(
        "Latency of prod over the release (ms)",
        series,
        x_end=slices[-1].end if slices else 0.0,
        spans=spans,
        marks=[sample.start for sample in failed],
    )


def render_chart(slices: list[Bucket], swap: SwapMark | None, failed: Sequence[Sample] = ()) -> list[str]:
    """The latency chart as an inline picture, and its peak in words (the tables hold the numbers)."""
    if not slices:
        return ["(no requests recorded)"]
    peak = max((b.max_ms for b in slices if b.max_ms is not None), default=0.0)
    where = f"swap from {swap.start:.2f} s to {swap.end:.2f} s (shaded)" if swap is not None else "no swap"
    return [
        svg_image("latency of prod over the release, the swap shaded", latency_svg(slices, swap, failed)),
        "",
        f"p50 (blue) and slowest (grey) answer per {slices[0].end - slices[0].start:.2f} s slice, "
        f"peak {peak:.1f} ms; {where}; {len(failed)} failed requests (red lines).",
    ]


def render_paths(summary: ProbeSummary) -> list[str]:
    """Per user path: requests, failures (5xx, no answer, timeout), p50/p99 before (old) and after (new)."""
    if not summary.paths:
        return []
    lines = [
        "",
        "## Per user path (probe)",
        "",
        "| path | requests | failed | p50 old | p50 new | p99 old | p99 new |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for path in summary.paths:
        old, new = path.before, path.after
        cells = (
            cell(path.path),
            path.requests,
            path.failures,
            ms(old.p50_ms),
            ms(new.p50_ms),
            ms(old.p99_ms),
            ms(new.p99_ms),
        )
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return lines


def render_probe(summary: ProbeSummary, slices: list[Bucket]) -> str:
    """The zero-downtime artifact: totals, p50/p99 before/during/after the swap, chart, failures."""
    lines = [f"# Zero-downtime probe: {summary.url}", "", probe_verdict(summary), ""]
    if summary.swap is not None:
        lines.append(
            f"Swap from {summary.swap.start:.2f} s to {summary.swap.end:.2f} s of a "
            f"{summary.duration_s:.1f} s probe."
        )
    else:
        lines.append("No swap happened during the probe.")
    lines += ["", "| phase | requests | failed | p50 | p99 |", "|---|---:|---:|---:|---:|"]
    for phase in summary.phases:
        cells = (phase.phase, phase.requests, phase.failures, ms(phase.p50_ms), ms(phase.p99_ms))
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    lines.append(f"| **all** | **{summary.requests}** | **{summary.failures}** | | |")
    lines += render_paths(summary)
    lines += ["", "## Latency over time", "", *render_chart(slices, summary.swap, summary.failed)]
    if summary.failed:  # a list, not a table: an error's text wraps instead of being cut
        lines += ["", "## Failed requests", ""]
        for sample in summary.failed[:FAILURES_SHOWN]:
            where = f" {sample.path}" if sample.path else ""
            lines.append(
                f"- at {sample.start:.3f} s{where}, after {sample.latency * 1000:.1f} ms: {sample.detail}"
            )
        if len(summary.failed) > FAILURES_SHOWN:
            lines.append(f"- and {len(summary.failed) - FAILURES_SHOWN} more")
    return "\n".join(lines) + "\n"


def publish_probe(summary: ProbeSummary, slices: list[Bucket]) -> None:
    """The probe's result as the `zero-downtime` artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        render_probe(summary, slices), key="zero-downtime", description=probe_verdict(summary)
    )

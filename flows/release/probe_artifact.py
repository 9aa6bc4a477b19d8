"""The zero-downtime probe's artifact: totals, per phase and per user path, the latency chart, failures.

`render_*` are pure (a summary in, markdown out); `publish_probe` puts it on the run as the
`zero-downtime` artifact. The run report reuses `probe_verdict` and `render_paths`.
"""

from __future__ import annotations

from flows.markdown import cell, ms
from flows.release.probe_stats import Bucket, ProbeSummary, sparkline, swap_marker

FAILURES_SHOWN = 20


def probe_verdict(summary: ProbeSummary) -> str:
    """One line: zero downtime held, or VIOLATION with the counts."""
    if summary.violation:
        return (
            f"**VIOLATION**: {summary.failures} of {summary.requests} requests to prod failed "
            f"({summary.swap_failures} during the swap)"
        )
    return f"zero downtime held: 0 of {summary.requests} requests to prod failed"


def render_chart(slices: list[Bucket]) -> list[str]:
    """A text chart of median latency over time; `^` marks the swap, `x` a slice with failures."""
    if not slices:
        return ["(no requests recorded)"]
    p50 = [b.p50_ms for b in slices]
    top = [b.max_ms for b in slices]
    peak = max((v for v in top if v is not None), default=0.0)
    return [
        "```",
        f"p50  {sparkline(p50)}",
        f"max  {sparkline(top)}   (peak {peak:.1f} ms)",
        f"swap {swap_marker(slices)}",
        f"     0 s{' ' * max(len(slices) - 8, 1)}{slices[-1].end:.0f} s",
        "```",
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
    lines += ["", "## Latency over time", "", *render_chart(slices)]
    if summary.failed:
        lines += ["", "## Failed requests", "", "| at | after | detail |", "|---:|---:|---|"]
        for sample in summary.failed[:FAILURES_SHOWN]:
            lines.append(f"| {sample.start:.3f} s | {sample.latency * 1000:.1f} ms | {cell(sample.detail)} |")
    return "\n".join(lines) + "\n"


def publish_probe(summary: ProbeSummary, slices: list[Bucket]) -> None:
    """The probe's result as the `zero-downtime` artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        render_probe(summary, slices), key="zero-downtime", description=probe_verdict(summary)
    )

"""The run report: how each step ended, who is prod now, the verifications and the traffic analysis.

`render_*` functions are pure (data in, markdown out) and tested; `publish_run` puts the report on
the current Prefect run as the `release-report` artifact, so the UI's Artifacts page shows its
history across runs. The stages publish their own artifacts (`flows.source.artifact`,
`flows.release.probe_artifact`); the report reuses the probe's verdict and per-path table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.markdown import cell, ms, shorten, svg_image
from flows.release.analysis import AnalysisRow
from flows.release.probe_artifact import probe_verdict, render_paths
from flows.release.probe_stats import ProbeSummary
from flows.report.svg import FAILED, PASSED, BarRow, Segment, bar_rows

DESCRIPTION_CHARS = 200


@dataclass(frozen=True)
class StepRecord:
    """How one step ended: Completed, Cached, Failed, Skipped; and how long it took."""

    name: str
    state: str
    seconds: float
    note: str = ""


@dataclass
class RunReport:
    """What the final artifact tells: the outcome, who is prod, how each step went."""

    application: str
    target: str
    repo: str
    ref: str
    version: str | None = None
    commit: str | None = None
    outcome: str = "running"
    ok: bool = False
    stopped: bool = False  # ended by its worker's signal (cancelled, or the worker shut down), not by a fault
    prod: str | None = None  # "node-2 at 127.0.0.1:8080: version v2, ..."
    preprod: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    verifications: list[str] = field(default_factory=list)
    probe: ProbeSummary | None = None
    analysis: list[AnalysisRow] = field(default_factory=list)
    total_seconds: float = 0.0
    workdir: str | None = None  # the checkout, removed when the run ends


def _verdict(row: AnalysisRow) -> str:
    """The row's verdict with its brackets closed ("passed (inconclusive" reads "passed (inconclusive)")."""
    verdict = row.verdict.strip()
    return verdict + ")" if verdict.count("(") > verdict.count(")") else verdict


def render_analysis(rows: list[AnalysisRow]) -> list[str]:
    """The traffic analysis: each judged window (canary steps, after the swap), its verdict, a chart."""
    if not rows:
        return []
    lines = [
        "",
        "## Traffic analysis",
        "",
        "The target's own counters, so every client's requests count.",
        "",
        svg_image("traffic analysis per step", analysis_svg(rows)),
        "",
        "| step | share | verdict | requests | 5xx | no answer | latency new | latency old |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = (
            row.step,
            f"{row.share} %",
            cell(_verdict(row)),
            row.requests,
            row.server_errors,
            row.connection_errors,
            ms(row.new_latency_ms),
            ms(row.old_latency_ms),
        )
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return lines


def analysis_svg(rows: list[AnalysisRow]) -> str:
    """A bar per judged window: its requests (green answered, red 5xx or unanswered), under it the
    latency of the new version, and beside it the failed share, the latencies and the verdict."""
    bars = []
    for row in rows:
        failed = row.server_errors + row.connection_errors
        share = 100.0 * failed / row.requests if row.requests else 0.0
        latency = f"{ms(row.new_latency_ms)} (old {ms(row.old_latency_ms)})"
        bars.append(
            BarRow(
                f"{row.step} ({row.share} %)",
                [Segment(row.requests - failed, PASSED), Segment(failed, FAILED)],
                f"{row.requests} req, {share:.1f} % failed, {latency}, {_verdict(row)}",
                PASSED if row.verdict.startswith("passed") else FAILED,
                extra=[Segment(row.new_latency_ms or 0.0, "#2563eb")],
            )
        )
    legend = [("answered", PASSED), ("5xx or no answer", FAILED), ("latency of the new version", "#2563eb")]
    return bar_rows("Traffic analysis per step", bars, legend=legend)


def title(report: RunReport) -> str:
    """`app v2: released`, `app v2: FAILED`, `app v2: STOPPED` (cancelled); before the checkout names a
    version, the ref stands in."""
    verdict = "released" if report.ok else "STOPPED" if report.stopped else "FAILED"
    if report.version:
        return f"{report.application} {report.version}: {verdict}"
    return f"{report.application} {report.ref} (before its checkout): {verdict}"


def render_run(report: RunReport) -> str:
    """The final artifact: version, commit, who is prod now, per-step durations, verifications.

    Only short figures go into tables (the UI cuts a table cell at its column's edge); the
    outcome, prod's description and the steps' notes are paragraphs and lists, which wrap.
    """
    lines = [
        f"# {title(report)}",
        "",
        f"**Outcome:** {report.outcome}",
        "",
        f"- **version** `{report.version or '-'}`, commit `{report.commit or '-'}`",
        f"- **repository** `{report.repo}` at `{report.ref}`",
        f"- **target** {report.target}, {report.total_seconds:.1f} s in all",
        f"- **prod now** {report.prod or '-'}",
        f"- **preprod now** {report.preprod or '-'}",
        "",
        "## Steps",
        "",
        "| step | state | seconds |",
        "|---|---|---:|",
    ]
    lines += [f"| {step.name} | {step.state} | {step.seconds:.2f} |" for step in report.steps]
    notes = [step for step in report.steps if step.note]
    if notes:
        lines += ["", *[f"- **{step.name}** ({step.state}): {step.note}" for step in notes]]
    if report.verifications:
        lines += ["", "## Verifications", ""]
        lines += [f"- {line}" for line in report.verifications]
    lines += render_analysis(report.analysis)
    if report.probe is not None:
        lines += render_paths(report.probe)
        lines += ["", "## Zero downtime", "", probe_verdict(report.probe), ""]
        for phase in report.probe.phases:
            lines.append(
                f"- {phase.phase} the swap: {phase.requests} requests, {phase.failures} failed, "
                f"p50 {ms(phase.p50_ms)}, p99 {ms(phase.p99_ms)}"
            )
    return "\n".join(lines) + "\n"


def publish_run(report: RunReport) -> None:
    """The run report as the `release-report` artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        render_run(report),
        key="release-report",
        description=shorten(f"{title(report)}: {report.outcome}", DESCRIPTION_CHARS),
    )

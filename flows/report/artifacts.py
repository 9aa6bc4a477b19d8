"""The run report: how each step ended, who is prod now, the verifications and the traffic analysis.

`render_*` functions are pure (data in, markdown out) and tested; `publish_run` puts the report on
the current Prefect run as the `release-report` artifact, so the UI's Artifacts page shows its
history across runs. The stages publish their own artifacts (`flows.source.artifact`,
`flows.release.probe_artifact`); the report reuses the probe's verdict and per-path table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.markdown import cell, ms
from flows.release.analysis import AnalysisRow
from flows.release.probe_artifact import probe_verdict, render_paths
from flows.release.probe_stats import ProbeSummary


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
    prod: str | None = None  # "node-2 at 127.0.0.1:8080: version v2, ..."
    preprod: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    verifications: list[str] = field(default_factory=list)
    probe: ProbeSummary | None = None
    analysis: list[AnalysisRow] = field(default_factory=list)
    total_seconds: float = 0.0
    workdir: str | None = None  # the checkout, removed when the run ends


def render_analysis(rows: list[AnalysisRow]) -> list[str]:
    """The traffic analysis: each judged window (canary steps, after the swap), its verdict, a chart."""
    if not rows:
        return []
    lines = [
        "",
        "## Traffic analysis (the target's own counters: every client's requests)",
        "",
        "| step | share | verdict | requests | 5xx | no answer | latency new | latency old |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = (
            row.step,
            f"{row.share} %",
            cell(row.verdict),
            row.requests,
            row.server_errors,
            row.connection_errors,
            ms(row.new_latency_ms),
            ms(row.old_latency_ms),
        )
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return [*lines, "", *render_analysis_chart(rows)]


def render_analysis_chart(rows: list[AnalysisRow], width: int = 40) -> list[str]:
    """A bar per judged window: its requests (`#` answered, `x` 5xx or no answer), share and verdict."""
    most = max((row.requests for row in rows), default=0) or 1
    label = max(len(row.step) for row in rows)
    chart = ["```"]
    for row in rows:
        failed = row.server_errors + row.connection_errors
        length = max(1, round(width * row.requests / most)) if row.requests else 0
        bad = min(length, round(length * failed / row.requests)) if row.requests else 0
        if failed and not bad:
            bad = 1
        bar = "#" * (length - bad) + "x" * bad
        share = 100.0 * failed / row.requests if row.requests else 0.0
        verdict = row.verdict.split(":", 1)[0].split(" ", 1)[0]
        chart.append(
            f"{row.step.ljust(label)}  {row.share:>3} %  {bar.ljust(width)}  {row.requests:>6} req  "
            f"{share:5.1f} % failed  {verdict}"
        )
    chart.append("```")
    return chart


def render_run(report: RunReport) -> str:
    """The final artifact: version, commit, who is prod now, per-step durations, verifications."""
    verdict = "released" if report.ok else "FAILED"
    lines = [
        f"# {report.application} {report.version or '?'}: {verdict}",
        "",
        f"**Outcome:** {cell(report.outcome)}",
        "",
        "| | |",
        "|---|---|",
        f"| version | `{report.version or '-'}` |",
        f"| commit | `{report.commit or '-'}` |",
        f"| repository | `{cell(report.repo)}` at `{cell(report.ref)}` |",
        f"| target | {report.target} |",
        f"| prod now | {cell(report.prod or '-')} |",
        f"| preprod now | {cell(report.preprod or '-')} |",
        f"| total | {report.total_seconds:.1f} s |",
        "",
        "## Steps",
        "",
        "| step | state | seconds | note |",
        "|---|---|---:|---|",
    ]
    for step in report.steps:
        lines.append(f"| {step.name} | {step.state} | {step.seconds:.2f} | {cell(step.note)} |")
    if report.verifications:
        lines += ["", "## Verifications", ""]
        lines += [f"- {cell(line)}" for line in report.verifications]
    lines += render_analysis(report.analysis)
    if report.probe is not None:
        lines += render_paths(report.probe)
        lines += ["", "## Zero downtime", "", probe_verdict(report.probe)]
        for phase in report.probe.phases:
            lines.append(
                f"- {phase.phase} the swap: {phase.requests} requests, {phase.failures} failed, "
                f"p50 {ms(phase.p50_ms)}, p99 {ms(phase.p99_ms)}"
            )
    return "\n".join(lines) + "\n"


def publish_run(report: RunReport) -> None:
    """The run report as the `release-report` artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(render_run(report), key="release-report", description=report.outcome[:200])

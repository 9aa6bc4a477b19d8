"""The run's artifacts: the unit-test summary, the zero-downtime probe, the final run report.

`render_*` functions are pure (data in, markdown out) and tested; `publish_*` functions put
the markdown on the current Prefect run as an artifact with a stable key, so the UI's
Artifacts page shows each one's history across runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.release.probe_stats import Bucket, ProbeSummary, sparkline, swap_marker
from flows.source.junit import TestSummary

FAILURES_SHOWN = 20


@dataclass(frozen=True)
class StepRecord:
    """How one step ended: Completed, Cached, Failed, Skipped; and how long it took."""

    name: str
    state: str
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class AnalysisRow:
    """One judged window of real traffic: a canary step or the analysis after the swap."""

    step: str  # "canary 10 %", "after the swap"
    share: int  # percent of prod traffic on the new version
    verdict: str  # "passed", "passed (inconclusive)", "FAILED: ..."
    requests: int
    server_errors: int
    connection_errors: int
    new_latency_ms: float | None
    old_latency_ms: float | None


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


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def render_unit_tests(summary: TestSummary, version: str) -> str:
    """The unit-test step's artifact: counts and the failing tests with their messages."""
    verdict = "passed" if summary.ok else "FAILED"
    lines = [
        f"# Unit tests {verdict}: {version}",
        "",
        "| tests | passed | failed | errors | skipped | seconds |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {summary.tests} | {summary.passed} | {summary.failed} | {summary.errors} | "
        f"{summary.skipped} | {summary.seconds:.1f} |",
    ]
    if summary.failures:
        lines += ["", "## Failures", "", "| test | kind | message |", "|---|---|---|"]
        for failure in summary.failures[:FAILURES_SHOWN]:
            lines.append(f"| `{_cell(failure.test)}` | {failure.kind} | {_cell(failure.message)} |")
        if len(summary.failures) > FAILURES_SHOWN:
            lines.append(f"| … | | {len(summary.failures) - FAILURES_SHOWN} more in the task log |")
    return "\n".join(lines) + "\n"


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
            _cell(path.path),
            path.requests,
            path.failures,
            _ms(old.p50_ms),
            _ms(new.p50_ms),
            _ms(old.p99_ms),
            _ms(new.p99_ms),
        )
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return lines


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
            _cell(row.verdict),
            row.requests,
            row.server_errors,
            row.connection_errors,
            _ms(row.new_latency_ms),
            _ms(row.old_latency_ms),
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
        cells = (phase.phase, phase.requests, phase.failures, _ms(phase.p50_ms), _ms(phase.p99_ms))
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    lines.append(f"| **all** | **{summary.requests}** | **{summary.failures}** | | |")
    lines += render_paths(summary)
    lines += ["", "## Latency over time", "", *render_chart(slices)]
    if summary.failed:
        lines += ["", "## Failed requests", "", "| at | after | detail |", "|---:|---:|---|"]
        for sample in summary.failed[:FAILURES_SHOWN]:
            lines.append(
                f"| {sample.start:.3f} s | {sample.latency * 1000:.1f} ms | {_cell(sample.detail)} |"
            )
    return "\n".join(lines) + "\n"


def render_run(report: RunReport) -> str:
    """The final artifact: version, commit, who is prod now, per-step durations, verifications."""
    verdict = "released" if report.ok else "FAILED"
    lines = [
        f"# {report.application} {report.version or '?'}: {verdict}",
        "",
        f"**Outcome:** {_cell(report.outcome)}",
        "",
        "| | |",
        "|---|---|",
        f"| version | `{report.version or '-'}` |",
        f"| commit | `{report.commit or '-'}` |",
        f"| repository | `{_cell(report.repo)}` at `{_cell(report.ref)}` |",
        f"| target | {report.target} |",
        f"| prod now | {_cell(report.prod or '-')} |",
        f"| preprod now | {_cell(report.preprod or '-')} |",
        f"| total | {report.total_seconds:.1f} s |",
        "",
        "## Steps",
        "",
        "| step | state | seconds | note |",
        "|---|---|---:|---|",
    ]
    for step in report.steps:
        lines.append(f"| {step.name} | {step.state} | {step.seconds:.2f} | {_cell(step.note)} |")
    if report.verifications:
        lines += ["", "## Verifications", ""]
        lines += [f"- {_cell(line)}" for line in report.verifications]
    lines += render_analysis(report.analysis)
    if report.probe is not None:
        lines += render_paths(report.probe)
        lines += ["", "## Zero downtime", "", probe_verdict(report.probe)]
        for phase in report.probe.phases:
            lines.append(
                f"- {phase.phase} the swap: {phase.requests} requests, {phase.failures} failed, "
                f"p50 {_ms(phase.p50_ms)}, p99 {_ms(phase.p99_ms)}"
            )
    return "\n".join(lines) + "\n"


def publish_unit_tests(summary: TestSummary, version: str) -> None:
    """The unit-test summary as the `unit-tests` artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        render_unit_tests(summary, version), key="unit-tests", description=f"unit tests of {version}"
    )


def publish_probe(summary: ProbeSummary, slices: list[Bucket]) -> None:
    """The probe's result as the `zero-downtime` artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        render_probe(summary, slices), key="zero-downtime", description=probe_verdict(summary)
    )


def publish_run(report: RunReport) -> None:
    """The run report as the `release-report` artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(render_run(report), key="release-report", description=report.outcome[:200])

"""The unit-test step's artifact: the counts and the failing tests with their messages.

`render_unit_tests` is pure (a summary in, markdown out); `publish_unit_tests` puts it on the run
as the `unit-tests` artifact, so the UI's Artifacts page shows its history across runs.
"""

from __future__ import annotations

from flows.markdown import cell
from flows.source.junit import TestSummary

FAILURES_SHOWN = 20


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
            lines.append(f"| `{cell(failure.test)}` | {failure.kind} | {cell(failure.message)} |")
        if len(summary.failures) > FAILURES_SHOWN:
            lines.append(f"| … | | {len(summary.failures) - FAILURES_SHOWN} more in the task log |")
    return "\n".join(lines) + "\n"


def publish_unit_tests(summary: TestSummary, version: str) -> None:
    """The unit-test summary as the `unit-tests` artifact."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        render_unit_tests(summary, version), key="unit-tests", description=f"unit tests of {version}"
    )

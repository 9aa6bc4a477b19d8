"""The `delivery-performance` artifact: the four keys of the released application and target,
published at the end of every release, so the UI shows how delivery is doing beside the run.

`render` is pure (keys to markdown); `publish` reads the history from the run's own control
plane and never fails the release: whatever goes wrong is logged as a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from flows.markdown import cell, svg_image
from flows.metrics.dora import ELITE, LABELS, WINDOWS, Figure, Keys, RunRef, verdict
from flows.report.svg import AXIS, FAILED, PASSED, BarRow, Segment, bar_rows

ARTIFACT_KEY = "delivery-performance"
LINKED_RUNS = 5  # runs linked per figure


def _links(refs: Sequence[RunRef], run_url: Callable[[str], str | None]) -> str:
    shown = []
    for ref in refs[-LINKED_RUNS:]:
        address = run_url(ref.run_id)
        shown.append(f"[{ref.name}]({address})" if address else ref.name)
    return ", ".join(shown)


def _colour(figure: Figure) -> str:
    return {True: PASSED, False: FAILED, None: AXIS}[figure.elite]


def scorecard_svg(window: Keys) -> str:
    """The window's four keys as a small chart: one bar each, green at DORA's elite level, red below
    it, grey without data, its figure beside it."""
    rows = [
        BarRow(LABELS[f.key], [Segment(1.0, _colour(f))], f"{f.shown} ({verdict(f)})", _colour(f))
        for f in window.figures
    ]
    legend = [("elite", PASSED), ("below elite", FAILED), ("no data", AXIS)]
    return bar_rows(f"Last {window.days} days against DORA's elite levels", rows, legend=legend)


def render(application: str, target: str, keys: Sequence[Keys], run_url: Callable[[str], str | None]) -> str:
    """The markdown of the artifact: one table per window, then the latest runs behind each figure."""
    lines = [f"# Delivery performance: {application} on {target}", ""]
    for window in keys:
        lines += [
            f"## Last {window.days} days",
            "",
            svg_image(f"the four keys of the last {window.days} days", scorecard_svg(window)),
            "",
            "| Key | Figure | DORA elite | |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {LABELS[f.key]} | {cell(f.shown)} | {cell(ELITE[f.key])} | {verdict(f)} |"
            for f in window.figures
        ]
        lines.append("")
        for figure in window.figures:
            if figure.runs:
                lines.append(f"- {LABELS[figure.key]}: {_links(figure.runs, run_url)}")
            if figure.unknown:
                lines.append(f"- {LABELS[figure.key]}, left out: {_links(figure.unknown, run_url)}")
        lines.append("")
    lines.append("All windows and targets: `deliverypipeline metrics` (`--json` for the run addresses).")
    return "\n".join(lines)


def publish(application: str, target: str) -> None:
    """Publish the artifact for `application` on `target` from inside a release run; never raises
    (a failure is a warning in the run's log)."""
    try:
        from prefect.artifacts import create_markdown_artifact

        from flows.controlplane.api import for_current_run
        from flows.metrics.dora import four_keys
        from flows.metrics.history import read
        from flows.report.notify import run_ui_url

        now = datetime.now(UTC)
        with for_current_run() as api:
            found, recovered = read(api, now, max(WINDOWS))
        ours = [r for r in found if (r.application, r.target) == (application, target)]
        keys = [k for days in WINDOWS for k in four_keys(ours, recovered, now, days)]
        create_markdown_artifact(
            render(application, target, keys, run_ui_url),
            key=ARTIFACT_KEY,
            description=f"DORA's four keys of {application} on {target}",
        )
    except Exception as exc:  # the figures must never fail a release
        from prefect import get_run_logger

        get_run_logger().warning("could not publish the delivery-performance artifact: %s", exc)

"""The `delivery-performance` artifact: its markdown, and its publication from a run."""

from __future__ import annotations

import pytest

from flows.metrics.artifact import ARTIFACT_KEY, publish, render, scorecard_svg
from flows.metrics.dora import four_keys
from flows.report.svg import FAILED, PASSED
from tests.flows.metrics.test_dora import HISTORY, NOW, RECOVERY


def url(run_id: str) -> str | None:
    return None if run_id == "a3" else f"http://ui/runs/flow-run/{run_id}"


def test_the_markdown_has_a_table_per_window_and_links_the_runs_behind_each_figure() -> None:
    keys = [k for days in (7, 30) for k in four_keys(HISTORY, [RECOVERY], NOW, days)]
    text = render("deliverypipeline", "local", keys, url)
    lines = text.splitlines()
    assert lines[0] == "# Delivery performance: deliverypipeline on local"
    assert [line for line in lines if line.startswith("## ")] == ["## Last 7 days", "## Last 30 days"]
    assert "| Change failure rate | 40 % (2 of 5) | 0-15 % (about 5 %) | below elite |" in lines
    assert "| Failed-deployment recovery time | 24 min (median of 2) | less than one hour | elite |" in lines
    assert (
        "- Change failure rate: [deliverypipeline-b1](http://ui/runs/flow-run/b1), "
        "[deliverypipeline-c1](http://ui/runs/flow-run/c1), "
        "[recover deliverypipeline-c1](http://ui/runs/flow-run/r1)"
    ) in lines
    assert "- Lead time for changes, left out: deliverypipeline-a3" in lines  # no UI address known
    charts = [line for line in lines if line.startswith("![the four keys of the last ")]
    assert len(charts) == 2 and all("(data:image/svg+xml;base64," in chart for chart in charts)


def test_the_scorecard_colours_each_key_by_its_dora_level() -> None:
    (window,) = four_keys(HISTORY, [RECOVERY], NOW, 7)
    svg = scorecard_svg(window)
    assert svg.startswith("<svg") and "Last 7 days against DORA" in svg
    assert f'fill="{FAILED}"' in svg and "40 % (2 of 5) (below elite)" in svg
    assert f'fill="{PASSED}"' in svg and "24 min (median of 2) (elite)" in svg


@pytest.mark.slow  # starts a Prefect server (the session's test harness)
def test_a_run_publishes_the_artifact_and_a_failure_never_raises(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.metrics import history

    @flow(name="publishes")
    def publishes() -> None:
        """A run that publishes the artifact."""
        publish("metrics-artifact-test", "local")

    publishes()
    with get_client(sync_client=True) as client:
        made = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY]))
        )
    assert any("# Delivery performance: metrics-artifact-test on local" in str(a.data) for a in made)

    def broken(*_: object) -> None:
        raise RuntimeError("the API is gone")

    monkeypatch.setattr(history, "read", broken)
    assert publishes(return_state=True).is_completed()  # the warning is logged, the run completes

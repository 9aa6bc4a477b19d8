"""The recovery's pure decisions: which run, its name, the release's settings, the report."""

from __future__ import annotations

from uuid import uuid4

import pytest

from flows.config import PipelineConfig
from flows.errors import ConfigError
from flows.recovery.decisions import (
    Outcome,
    crashed_note_markdown,
    crashed_run_id,
    died_in,
    recovery_name,
    release_settings,
    report_markdown,
)


def test_the_crashed_run_is_given_by_its_events_resource_id_or_its_id() -> None:
    run = uuid4()
    assert crashed_run_id(f"prefect.flow-run.{run}") == run
    assert crashed_run_id(f" {run} ") == run
    with pytest.raises(
        ConfigError, match=r"crashed_run='prefect.flow-run.nope' is not a flow run: give its id"
    ):
        crashed_run_id("prefect.flow-run.nope")


def test_the_recovery_is_named_after_the_run_it_recovers() -> None:
    assert recovery_name("deliverypipeline-1a2b3c4") == "recover deliverypipeline-1a2b3c4"


def test_the_release_settings_are_read_back_from_the_crashed_runs_parameters() -> None:
    given = PipelineConfig(prod_address="127.0.0.1:9080", preprod_address="127.0.0.1:9081")
    target, config = release_settings({"target": "local", "config": given.model_dump(mode="json")})
    assert target == "local" and config.prod_address == "127.0.0.1:9080"
    assert config.deadlines.poll_interval is not None  # the target's defaults filled in, as a release has
    assert release_settings({})[0] == "local"  # the deployment's default target
    with pytest.raises(ConfigError, match=r"released to target 'mars': a recovery knows local, aws"):
        release_settings({"target": "mars"})
    with pytest.raises(ConfigError, match=r"the crashed run's config cannot be read again"):
        release_settings({"target": "local", "config": {"deadlines": {"ready": "soon"}}})


def outcome(ok: bool) -> Outcome:
    return Outcome(
        "app-v2",
        "http://ui/runs/flow-run/1",
        "Crashed: exited with -9",
        "local",
        "swapped back the unverified swap of release v2",
        "node-2 at 127.0.0.1:8080: version v1",
        "ok, expected v1" if ok else "failed: HTTP 503 | from /health",
        ok,
    )


def test_the_report_says_which_run_what_was_done_and_whether_prod_is_verified() -> None:
    good = report_markdown(outcome(True))
    assert good.startswith("# Recovery of app-v2: prod serves a verified version\n")
    assert "- **recovered run**: [app-v2](http://ui/runs/flow-run/1)" in good
    assert "- **done**: swapped back the unverified swap of release v2" in good
    assert "deliverypipeline local swap" not in good
    bad = report_markdown(outcome(False))
    assert died_in(["analyse traffic", "analyse traffic"]) == "analyse traffic"
    assert died_in([]).startswith("no step was running")
    assert "**prod is NOT verified: act now**" in bad and "HTTP 503 | from /health" in bad
    assert "`deliverypipeline local swap` gives prod back to the other environment" in bad


def test_the_crashed_run_gets_a_note_linking_to_its_recovery() -> None:
    note = crashed_note_markdown(
        "recover app-v2", "http://ui/runs/flow-run/2", "swapped back;\nprod verified"
    )
    assert note == "Recovered by [recover app-v2](http://ui/runs/flow-run/2): swapped back; prod verified\n"

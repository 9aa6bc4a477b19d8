"""The recovery's pure decisions: which run, its name, the release's settings, the report."""

from __future__ import annotations

from uuid import uuid4

import pytest

from flows.config import PipelineConfig
from flows.errors import ConfigError
from flows.recovery.decisions import (
    EndedRun,
    Outcome,
    closing_message,
    crashed_run_id,
    died_in,
    ended_log_line,
    ended_report_markdown,
    ended_tags,
    is_ended_tag,
    left_open,
    reason,
    recovery_name,
    release_settings,
    report_markdown,
    stopped_in,
    why_it_ended,
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


CRASHED = EndedRun("app-v2", "CRASHED", "Crashed", "Flow run process exited with status code: -9", {})
CANCELLED = EndedRun("app-v3", "CANCELLED", "Cancelled", "cancelled with Ctrl-C by the command.", {})


def test_a_cancelled_runs_open_steps_end_cancelled_a_crashed_ones_crashed_with_the_reason() -> None:
    assert CRASHED.closing_state == "CRASHED" and not CRASHED.cancelled
    assert CANCELLED.closing_state == "CANCELLED" and CANCELLED.cancelled
    assert EndedRun("r", "CANCELLING", "Cancelling", "", {}).closing_state == "CANCELLED"
    assert closing_message(CANCELLED.state) == (
        "the run ended while this step ran (Cancelled: cancelled with Ctrl-C by the command.); "
        "closed by its recovery"
    )
    assert EndedRun("r", "CRASHED", "Crashed", "", {}).state == "Crashed"


def test_the_reason_names_why_and_the_step_it_ended_in() -> None:
    assert reason(CRASHED, ["analyse traffic", "analyse traffic"]) == (
        "Flow run process exited with status code: -9 in step `analyse traffic`"
    )
    assert reason(CANCELLED, ["build image", "unit tests"]) == (
        "cancelled with Ctrl-C by the command in steps `build image`, `unit tests`"
    )
    assert reason(CRASHED, []) == "Flow run process exited with status code: -9, between two steps"
    silent = EndedRun("r", "CRASHED", "Crashed", "", {})
    assert reason(silent, []) == "the run ended Crashed, between two steps"


def test_the_ended_runs_report_starts_with_the_reason_then_prod_now_and_what_was_done() -> None:
    why = reason(CRASHED, ["analyse traffic"])
    good = ended_report_markdown(CRASHED, why, outcome(True), "recover app-v2", "http://ui/runs/flow-run/2")
    assert good.startswith(
        "# Crashed: Flow run process exited with status code: -9 in step `analyse traffic`\n\n"
        "**Prod now:** node-2 at 127.0.0.1:8080: version v1 (verified)\n"
    )
    assert "- **done**: swapped back the unverified swap of release v2" in good
    assert "- **recovered by**: [recover app-v2](http://ui/runs/flow-run/2)" in good
    bad = ended_report_markdown(CRASHED, why, outcome(False), "recover app-v2", "http://ui/runs/flow-run/2")
    assert "**Prod now:** **NOT verified, act now**: node-2" in bad
    assert "- **verification**: failed: HTTP 503 | from /health" in bad
    line = ended_log_line(why, outcome(True), "recover app-v2")
    assert line == (
        "Flow run process exited with status code: -9 in step `analyse traffic`. recover app-v2: swapped "
        "back the unverified swap of release v2; prod verified: node-2 at 127.0.0.1:8080: version v1"
    )
    assert "prod NOT verified: failed: HTTP 503" in ended_log_line(why, outcome(False), "recover app-v2")


def test_the_ended_run_is_tagged_with_where_it_ended_and_what_prod_is_now() -> None:
    assert ended_tags(["analyse traffic"], outcome(True)) == [
        "ended in analyse traffic",
        "prod verified by recovery",
    ]
    assert ended_tags(["unit tests", "build image", "unit tests"], outcome(False)) == [
        "ended in unit tests, build image",
        "prod NOT verified",
    ]
    assert ended_tags([], outcome(True))[0] == "ended between steps"
    every = ended_tags(["swap"], outcome(True)) + ended_tags([], outcome(False))
    assert all(is_ended_tag(tag) for tag in every)
    assert not any(is_ended_tag(tag) for tag in ("deliverypipeline", "local", "recovery"))


def test_a_cancelled_run_says_who_cancelled_it_not_the_workers_final_words() -> None:
    final = "Flow run was cancelled successfully."
    assert why_it_ended(final, ["", "cancelled with Ctrl-C by the command that started it"]) == (
        "cancelled with Ctrl-C by the command that started it"
    )
    assert why_it_ended(final, [" "]) == "cancelled while it ran (no reason given)"  # the UI's Cancel
    assert why_it_ended("Flow run process exited with status code: -9", []) == (
        "Flow run process exited with status code: -9"
    )


def test_the_steps_left_open_are_those_still_going_or_cancelled_by_the_server_without_a_reason() -> None:
    for closing in ("CRASHED", "CANCELLED"):
        assert left_open("RUNNING", None, closing) and left_open("PENDING", "", closing)
        assert left_open("CANCELLING", "x", closing)
        assert left_open("CANCELLED", "The parent flow run was cancelled.", closing)  # the server's
        assert not left_open("CANCELLED", "the run ended while this step ran (Cancelled: x)", closing)
        assert not left_open("COMPLETED", None, closing) and not left_open("FAILED", "x", closing)
    # The step a cancel's SIGTERM crashed: Cancelled like the rest of a cancelled run.
    aborted = "Execution was aborted by a termination signal."
    assert left_open("CRASHED", aborted, "CANCELLED") and not left_open("CRASHED", aborted, "CRASHED")
    assert stopped_in("RUNNING") and stopped_in("CRASHED") and stopped_in("CANCELLED")
    assert not stopped_in("COMPLETED") and not stopped_in("FAILED")

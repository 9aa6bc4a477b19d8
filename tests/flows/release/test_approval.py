"""Approval pauses a real flow run until it is resumed with an answer, or gives up at the deadline."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.context import get_run_context
from prefect.flow_runs import resume_flow_run

from flows.release.approval import Decision, await_approval, describe

pytestmark = pytest.mark.slow  # starts a Prefect server (the test harness): marked `server`


@pytest.fixture(autouse=True)
def prefect_server(prefect_harness: None) -> None:
    """Every test here talks to the session's Prefect test server."""


class Release:
    """A stand-in release flow: swaps only when approved, as the pipeline does."""

    def __init__(self) -> None:
        self.run_id: UUID | None = None
        self.swapped = False

    def run(self, timeout_s: float) -> tuple[str, Decision]:
        @flow(name="approval-under-test")
        def release() -> Decision:
            self.run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
            decision = await_approval(
                "1.4.0-abc1234", "127.0.0.1:8080", "127.0.0.1:8081", timeout_s, poll_s=1
            )
            if decision.approved:
                self.swapped = True
            return decision

        state = release(return_state=True)
        return state.type.value, state.result()


def answer_when_paused(release: Release, run_input: dict[str, Any]) -> threading.Thread:
    """From another thread, wait for the run to pause, then resume it with `run_input`."""

    def answer() -> None:
        deadline = time.monotonic() + 30
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                if release.run_id is not None:
                    state = client.read_flow_run(release.run_id).state
                    if state is not None and state.is_paused():
                        resume_flow_run(release.run_id, run_input=run_input)
                        return
                time.sleep(0.2)
        raise AssertionError("the flow run never paused")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_approved_release_swaps() -> None:
    release = Release()
    answering = answer_when_paused(release, {"approve": True, "reason": "looks good on preprod"})
    final, decision = release.run(timeout_s=60)
    answering.join(timeout=5)
    assert decision == Decision(approved=True, reason="looks good on preprod")
    assert release.swapped
    assert final == "COMPLETED"


def test_rejected_release_leaves_prod_alone() -> None:
    release = Release()
    answering = answer_when_paused(release, {"approve": False})
    final, decision = release.run(timeout_s=60)
    answering.join(timeout=5)
    assert decision == Decision(approved=False, reason="rejected; prod left unchanged")
    assert not release.swapped
    assert final == "COMPLETED"


def test_unanswered_approval_times_out_as_a_rejection_and_the_run_ends_normally() -> None:
    release = Release()
    final, decision = release.run(timeout_s=2)
    assert not decision.approved
    assert decision.timed_out
    assert "no answer within 2 s" in decision.reason
    assert not release.swapped
    assert final == "COMPLETED"  # not "Failed: never resumed"


def test_the_form_says_what_approving_does() -> None:
    text = describe("1.4.0", "prod.example", "preprod.example")
    assert "1.4.0" in text
    assert "swap it into prod (prod.example)" in text
    assert "preprod.example" in text

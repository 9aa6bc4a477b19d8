"""The server's automation for silent runs: its definition, and created or replaced only when changed."""

from __future__ import annotations

from typing import Any

from flows.controlplane import automations


class FakeApi:
    """The automations endpoints of the control plane's API, in memory."""

    def __init__(self, existing: list[dict[str, Any]]) -> None:
        self.automations = existing
        self.calls: list[tuple[str, str]] = []

    def call(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path))
        if path == "/automations/filter":
            return list(self.automations)
        if method == "DELETE":
            self.automations = [a for a in self.automations if a["id"] != path.rsplit("/", 1)[-1]]
            return None
        self.automations.append({**body, "id": f"id-{len(self.automations)}"})
        return None


def test_a_silent_release_or_recovery_run_is_marked_crashed_after_three_missed_heartbeats() -> None:
    spec = automations.silent_run_automation()
    trigger = spec["trigger"]
    assert trigger["posture"] == "Proactive" and trigger["within"] == 90 == 3 * 30
    assert trigger["after"] == ["prefect.flow-run.heartbeat"] and trigger["expect"] == ["prefect.flow-run.*"]
    assert trigger["for_each"] == ["prefect.resource.id"]  # one count per run
    assert trigger["match_related"]["prefect.resource.name"] == ["deliverypipeline", "recover"]
    [action] = spec["actions"]
    assert action["type"] == "change-flow-run-state" and action["state"] == "CRASHED"
    assert action["force"] is False  # proposed: the server's rules keep an ended run as it ended


def test_its_action_marks_a_run_still_going_crashed_and_leaves_an_ended_one_as_it_ended(
    prefect_harness: None,
) -> None:
    """The state change the action proposes, as the server's orchestration rules judge it."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import State
    from prefect.states import Cancelled, Completed, Failed, Paused, Running

    from flows.controlplane.api import RunState, for_current_run

    @flow(name="a-release")
    def a_release() -> None: ...

    [action] = automations.silent_run_automation()["actions"]
    proposed = RunState(action["state"], action["name"], action["message"])
    states: dict[str, State[None]] = {
        "running": Running(),
        "paused": Paused(),
        "completed": Completed(),
        "failed": Failed(),
        "cancelled": Cancelled(),
    }
    with get_client(sync_client=True) as client, for_current_run() as api:
        runs = {name: client.create_flow_run(a_release, state=state) for name, state in states.items()}
        verdicts = {
            name: api.set_flow_run_state(run.id, proposed, force=action["force"])
            for name, run in runs.items()
        }
        after = {name: api.read_flow_run(run.id).state_type for name, run in runs.items()}
    assert verdicts == {
        "running": "ACCEPT",
        "paused": "ACCEPT",
        "completed": "ABORT",
        "failed": "ABORT",
        "cancelled": "ABORT",
    }
    assert after == {
        "running": "CRASHED",
        "paused": "CRASHED",
        "completed": "COMPLETED",
        "failed": "FAILED",
        "cancelled": "CANCELLED",
    }


def test_created_when_missing_left_when_current_replaced_when_changed() -> None:
    api = FakeApi([{"id": "other", "name": "someone else's", "tags": []}])
    assert automations.ensure_automations(api, lambda _: None)  # type: ignore[arg-type]
    assert [a["name"] for a in api.automations] == ["someone else's", automations.NAME]
    api.calls.clear()
    assert not automations.ensure_automations(api, lambda _: None)  # type: ignore[arg-type]
    assert api.calls == [("POST", "/automations/filter")]  # one read on a warm start
    api.automations[-1]["tags"] = ["deliverypipeline", "spec:older"]
    assert automations.ensure_automations(api, lambda _: None)  # type: ignore[arg-type]
    assert [a["name"] for a in api.automations] == ["someone else's", automations.NAME]
    assert automations.is_current(
        api.automations, automations.with_digest(automations.silent_run_automation())
    )

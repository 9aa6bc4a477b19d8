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

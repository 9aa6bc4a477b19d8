"""The wait-until-ready progress artifact: the bar while waiting, the final state when done."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from flows.release.errors import NotReadyInTime
from flows.release.ready_progress import KEY, ReadyProgress


class Artifacts:
    """Prefect's create/update calls, recorded."""

    def __init__(self) -> None:
        self.id = uuid4()
        self.calls: list[tuple[str, float, str]] = []

    def create(self, percent: float, *, key: str, description: str) -> UUID:
        assert key == KEY
        self.calls.append(("create", percent, description))
        return self.id

    def update(self, artifact: UUID, percent: float, *, description: str) -> Any:
        assert artifact == self.id
        self.calls.append(("update", percent, description))


def test_a_finished_wait_says_ready_not_waiting() -> None:
    seen = Artifacts()
    shown = ReadyProgress("node-1", "v2", seen.create, seen.update)
    shown.update(0.0)
    shown.update(0.0004)  # the same percent: not sent again
    shown.update(0.25)
    shown.ready(12.4)
    assert seen.calls == [
        ("create", 0.0, "waiting for node-1 to be ready with v2"),
        ("update", 25.0, "waiting for node-1 to be ready with v2"),
        ("update", 100.0, "done: node-1 is ready with v2 (after 12 s)"),
    ]


def test_a_wait_that_gave_up_says_why_and_keeps_its_bar() -> None:
    seen = Artifacts()
    shown = ReadyProgress("node-2", "v3", seen.create, seen.update)
    shown.update(0.6)
    shown.stopped(NotReadyInTime("node-2 did not become ready; last seen: status Launching"))
    assert seen.calls[-1] == (
        "update",
        60.0,
        "stopped: node-2 not ready with v3: NotReadyInTime: node-2 did not become ready; last seen: "
        "status Launching",
    )


def test_a_wait_stopped_before_its_first_look_still_leaves_its_final_state() -> None:
    seen = Artifacts()
    ReadyProgress("node-1", "v2", seen.create, seen.update).stopped(KeyboardInterrupt())
    assert seen.calls == [("create", 0.0, "stopped: node-1 not ready with v2: KeyboardInterrupt")]

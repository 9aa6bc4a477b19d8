"""`Follower`: following a run to its end, and Ctrl-C, on a fake client and the fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from flows.controlplane import decisions
from flows.controlplane.api import ApiError, FlowRun, LogLine, NotFound, RunState, Worker
from flows.controlplane.follow import (
    CANCEL_WAIT_S,
    DRAIN_POLL_S,
    NAME_WAIT_S,
    POLL_S,
    QUIET_LOOKS,
    START_DEADLINE_S,
    UNCLAIMED_NOTICE_S,
    Follower,
    RunNotStarted,
)
from tests.flows.fakes import FakeClock

AT = datetime(2026, 12, 4, tzinfo=UTC)


def _run(kind: str) -> FlowRun:
    """A run in state `kind`: a type (`RUNNING`), or a type and a name (`SCHEDULED:Late`)."""
    state_type, _, name = kind.partition(":")
    return FlowRun(uuid4(), "brave-run", RunState(state_type, name or state_type.title()))


@dataclass
class FakeClient:
    """A run that goes through `states` (one per look; the last one stays); `logs` (flow-level
    messages) are shipped once the run is in its last state, as Prefect ships the last batch."""

    states: list[str]
    set_states: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def read_flow_run(self, run_id: object) -> FlowRun:
        return _run(self.states.pop(0) if len(self.states) > 1 else self.states[0])

    def read_logs(self, run_id: object, limit: int, offset: int) -> list[LogLine]:
        if len(self.states) > 1:
            return []
        shipped, self.logs = self.logs, []
        return [LogLine(AT, 20, message, None) for message in shipped]

    def set_flow_run_state(self, run_id: object, state: RunState, force: bool = False) -> str:
        self.set_states.append(state.type)
        return "ACCEPT"

    def read_workers_for_work_pool(self, pool: str) -> list[Worker]:
        return [Worker("old-checkout-worker", "ONLINE")]

    def bounded(self, seconds: float) -> FakeClient:
        return self

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class InterruptedClock(FakeClock):
    """The fake clock, with Ctrl-C pressed during the sleeps numbered in `interrupt_at`."""

    def __init__(self, *interrupt_at: int) -> None:
        super().__init__()
        self.interrupt_at, self.sleeps = set(interrupt_at), 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps in self.interrupt_at:
            raise KeyboardInterrupt
        super().sleep(seconds)


WHERE: Any = SimpleNamespace(run_url=lambda run_id: f"http://ui/runs/{run_id}", logs=Path("/logs"))


def _follow(client: FakeClient, clock: FakeClock) -> tuple[int, list[str]]:
    said: list[str] = []
    code = Follower(client, WHERE, uuid4(), said.append, clock=clock).run()  # type: ignore[arg-type]
    return code, said


def test_a_run_is_followed_to_its_end_and_its_exit_code() -> None:
    clock = FakeClock()
    code, said = _follow(FakeClient(["SCHEDULED", "RUNNING", "COMPLETED"]), clock)
    assert code == decisions.EXIT_COMPLETED
    assert [line for line in said if line.startswith("state ")] == [
        "state Scheduled",
        "state Running",
        "state Completed",
    ]
    assert "run brave-run ended Completed" in said
    assert clock.time == 2 * POLL_S + (QUIET_LOOKS - 1) * DRAIN_POLL_S  # two polls, the quiet looks


def test_the_engines_last_line_ends_the_drain_at_once() -> None:
    clock = FakeClock()
    client = FakeClient(["RUNNING", "COMPLETED"], logs=["live on prod", "Finished in state Completed()"])
    code, said = _follow(client, clock)
    assert code == decisions.EXIT_COMPLETED
    assert [line.split(" flow: ")[-1] for line in said if " flow: " in line] == [
        "live on prod",
        "Finished in state Completed()",
    ]
    assert clock.time == POLL_S  # one poll; no quiet looks after the last line


def test_a_run_nobody_takes_is_said_every_30s_then_cancelled_and_failed_naming_the_worker() -> None:
    clock = FakeClock()
    said: list[str] = []
    client = FakeClient(["SCHEDULED"] * int(20 / POLL_S) + ["SCHEDULED:Late"])
    follower = Follower(client, WHERE, uuid4(), said.append, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(RunNotStarted) as failed:
        follower.run()
    assert clock.time == START_DEADLINE_S
    assert sum("no worker of pool" in line for line in said) == 2  # at 30 and 60 s
    assert client.set_states == ["CANCELLED"]
    assert "stayed Late for 90s" in str(failed.value)
    assert "old-checkout-worker (online)" in str(failed.value)
    assert "`deliverypipeline server stop`, then run again" in str(failed.value)


def test_a_run_whose_process_never_starts_fails_at_the_deadline_counted_from_pending() -> None:
    clock = FakeClock()
    client = FakeClient(["SCHEDULED"] * int(10 / POLL_S) + ["RUNNING"] * 4 + ["PENDING"])
    follower = Follower(client, WHERE, uuid4(), lambda line: None, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(RunNotStarted, match="stayed Pending"):
        follower.run()
    assert clock.time == pytest.approx(10 + 4 * POLL_S + START_DEADLINE_S)


def test_a_run_waiting_for_the_release_in_progress_says_so_once_and_never_blames_the_worker() -> None:
    clock = FakeClock()
    slot_waits = int(2 * UNCLAIMED_NOTICE_S / POLL_S)
    code, said = _follow(
        FakeClient(["SCHEDULED:AwaitingConcurrencySlot"] * slot_waits + ["COMPLETED"]), clock
    )
    assert code == decisions.EXIT_COMPLETED
    assert sum("waits for the release in progress on its target" in line for line in said) == 1
    assert not any("no worker of pool" in line for line in said)


@pytest.mark.parametrize("waiting", ["SCHEDULED:AwaitingConcurrencySlot", "PAUSED"])
def test_a_run_waiting_for_the_slot_or_an_approval_waits_without_deadline(waiting: str) -> None:
    clock = FakeClock()
    code, _ = _follow(FakeClient([waiting] * int(3 * START_DEADLINE_S / POLL_S) + ["COMPLETED"]), clock)
    assert code == decisions.EXIT_COMPLETED
    assert clock.time > 3 * START_DEADLINE_S


def test_ctrl_c_cancels_and_waits_a_few_seconds_for_the_end() -> None:
    client = FakeClient(["RUNNING"])
    clock = InterruptedClock(1)
    code, said = _follow(client, clock)
    assert code == decisions.EXIT_INTERRUPTED and client.set_states == ["CANCELLING"]
    assert said[-1].startswith("left while the run is being cancelled (its worker stops its process)")
    assert clock.time == CANCEL_WAIT_S


@pytest.mark.parametrize("waiting", ["SCHEDULED:Late", "PENDING"])
def test_ctrl_c_before_the_run_started_cancels_it_at_once(waiting: str) -> None:
    client = FakeClient([waiting, waiting, "CANCELLED"])
    clock = InterruptedClock(1)
    code, said = _follow(client, clock)
    assert code == decisions.EXIT_INTERRUPTED and client.set_states == ["CANCELLED"]
    assert "run brave-run ended Cancelled" in said
    assert clock.time <= POLL_S


def test_ctrl_c_while_the_api_does_not_answer_leaves_within_a_few_seconds() -> None:
    class SilentAfterCtrlC(FakeClient):
        def bounded(self, seconds: float) -> FakeClient:
            assert seconds <= 5
            silent = FakeClient(["RUNNING"])
            silent.read_flow_run = self.gone  # type: ignore[method-assign]
            return silent

        def gone(self, run_id: object) -> FlowRun:
            raise ApiError("the control plane's API at http://x/api did not answer GET /flow_runs/1 for 3s")

    code, said = _follow(SilentAfterCtrlC(["RUNNING"]), InterruptedClock(1))
    assert code == decisions.EXIT_INTERRUPTED
    assert said[-1].startswith("left without seeing the run end")
    assert said[-1].endswith("cancel it in the UI if it goes on: http://ui/runs/" + said[-1].split("/")[-1])


def test_ctrl_c_after_the_run_ended_leaves_at_once_with_its_exit_code() -> None:
    client = FakeClient(["RUNNING", "COMPLETED"], logs=["live on prod"])
    clock = InterruptedClock(2)  # during the drain of the last logs
    code, said = _follow(client, clock)
    assert code == decisions.EXIT_COMPLETED and client.set_states == []
    assert "run brave-run ended Completed" in said


def test_a_cancelled_run_ends_interrupted_and_a_second_ctrl_c_leaves_at_once() -> None:
    client = FakeClient(["RUNNING", "RUNNING", "CANCELLED"])
    code, _ = _follow(client, InterruptedClock(1))
    assert code == decisions.EXIT_INTERRUPTED  # cancelled on the user's request
    code, said = _follow(FakeClient(["RUNNING"]), InterruptedClock(1, 3))
    assert code == decisions.EXIT_INTERRUPTED and said[-1].startswith("left while the run is being cancelled")


@dataclass
class LateTaskRunClient:
    """A finished run whose log holds a task's lines before the server has that task run: Prefect
    records task runs from events, so `read_task_run` answers 404 for the first `misses` asks."""

    misses: int
    asked: int = 0

    def __post_init__(self) -> None:
        self.task_run_id = uuid4()
        lines = [
            (None, "Beginning flow run"),
            (self.task_run_id, "checked out abc"),
            (None, "Finished in state "),
        ]
        self.logs = [LogLine(AT, 20, message, task) for task, message in lines]

    def read_flow_run(self, run_id: object) -> FlowRun:
        return _run("COMPLETED")

    def read_logs(self, run_id: object, limit: int, offset: int) -> list[LogLine]:
        return self.logs[offset : offset + limit]

    def read_task_run_name(self, task_run_id: object) -> str:
        self.asked += 1
        if self.asked <= self.misses:
            raise NotFound(f"GET /task_runs/{task_run_id}: not found")
        return "checkout-1a2"


def test_a_line_of_a_task_run_the_server_has_not_recorded_yet_waits_for_its_name() -> None:
    client = LateTaskRunClient(misses=2)
    code, said = _follow(client, FakeClock())  # type: ignore[arg-type]
    assert code == decisions.EXIT_COMPLETED
    shown = [line.split(" INFO    ")[-1] for line in said if " INFO    " in line]
    assert shown == ["flow: Beginning flow run", "checkout-1a2: checked out abc", "flow: Finished in state "]
    assert client.asked == 3


def test_a_task_run_that_never_appears_is_shown_as_task_after_a_bounded_wait() -> None:
    client = LateTaskRunClient(misses=1000)
    clock = FakeClock()
    code, said = _follow(client, clock)  # type: ignore[arg-type]
    assert code == decisions.EXIT_COMPLETED
    shown = [line.split(" INFO    ")[-1] for line in said if " INFO    " in line]
    assert shown == ["flow: Beginning flow run", "task: checked out abc", "flow: Finished in state "]
    assert clock.time <= NAME_WAIT_S + 1


def test_an_api_that_stops_answering_ends_following_with_the_runs_address() -> None:
    class GoneClient(FakeClient):
        def read_flow_run(self, run_id: object) -> FlowRun:
            raise ApiError("the control plane's API at http://x/api did not answer GET /flow_runs/1 for 20s")

    said: list[str] = []
    follower = Follower(GoneClient(["RUNNING"]), WHERE, uuid4(), said.append, clock=FakeClock())  # type: ignore[arg-type]
    with pytest.raises(
        ApiError, match=r"did not answer .*which goes on without this command: http://ui/runs/"
    ):
        follower.run()
    assert said == [f"run {follower.run_id}: http://ui/runs/{follower.run_id}"]

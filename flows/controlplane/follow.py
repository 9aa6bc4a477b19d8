"""Submit a run of a deployment and follow it to the end: its logs and states, then an exit code.

The run's UI address is printed at the start and at the end. Ctrl-C cancels the run itself
(Cancelling: the worker stops its process), then waits a bounded time for it to end; a second
Ctrl-C leaves at once. A run that nobody picks up is reported, never waited for silently.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any
from uuid import UUID

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, GaveUp, poll_until
from flows.controlplane import ControlPlaneError, decisions
from flows.controlplane.api import ApiError, ControlPlaneApi, FlowRun, LogLine, NotFound, RunState
from flows.controlplane.deployments import deployment_name
from flows.controlplane.layout import POOL, Layout

Out = Callable[[str], None]
POLL_S = 0.25  # reads of the run and its new logs: cheap, and the end is seen sooner
DRAIN_S = 4.0  # logs shipped after the final state (the run's last batch)
QUIET_LOOKS = 3  # looks DRAIN_POLL_S apart without a new line: longer than a run's log batch interval
DRAIN_POLL_S = 0.5
NAME_WAIT_S = 3.0  # a log line waits this long for its task run to be on the server
# Prefect's engine ends every flow run's log with this line: once it is shown, nothing follows.
LAST_LINE = "Finished in state "
CANCEL_WAIT_S = 60.0
UNCLAIMED_NOTICE_S = 30.0
LOG_PAGE = 200


def _print(line: str) -> None:
    print(line, flush=True)


def _endless(_: Deadline) -> BaseException:
    return RuntimeError("a wait without a deadline cannot time out")


def submit(client: ControlPlaneApi, target: str, parameters: dict[str, Any]) -> FlowRun:
    """A new run of `deliverypipeline/<target>` with `parameters` (the deployment's fill the rest)."""
    try:
        deployment = client.read_deployment_by_name(deployment_name(target))
    except NotFound as exc:
        raise ControlPlaneError(
            f"the deployment {deployment_name(target)} does not exist on the server: run "
            "`deliverypipeline server start` from the checkout (it deploys prefect.yaml)"
        ) from exc
    return client.create_flow_run_from_deployment(deployment.id, parameters=parameters)


def format_log(log: LogLine, task_names: dict[UUID, str]) -> str:
    """One log line as the terminal shows it: time, level, step (task) or `flow`, message."""
    where = task_names.get(log.task_run_id, "task") if log.task_run_id else "flow"
    level = logging.getLevelName(log.level)
    return f"{log.timestamp:%H:%M:%S} {level:<7} {where}: {log.message}"


class Follower:
    """Streams one run's logs and state changes; `run()` returns the exit code."""

    def __init__(
        self,
        client: ControlPlaneApi,
        where: Layout,
        run_id: UUID,
        out: Out = _print,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Follow `run_id` on `client`, printing through `out`; `clock` times the waits."""
        self.client, self.where, self.run_id, self.out = client, where, run_id, out
        self.clock = clock
        self.offset = 0
        self.task_names: dict[UUID, str] = {}
        self.unnamed: dict[UUID, float] = {}  # task runs not on the server yet: since when
        self.waiting_for_name = False  # the last look stopped at a line of such a task run
        self.last_state: str | None = None
        self.interrupted = False
        self.last_line_seen = False

    def run(self) -> int:
        """Follow until the run ends; Ctrl-C cancels it (see the module docstring).

        When the API stops answering (past its retries) following ends with an `ApiError` that
        names the run's address: the run itself goes on without this command.
        """
        url = self.where.run_url(self.run_id)
        self.out(f"run {self.run_id}: {url}")
        try:
            return self._follow(url)
        except ApiError as exc:
            raise ApiError(
                f"{exc}; stopped following the run, which goes on without this command: {url}"
            ) from exc

    def _follow(self, url: str) -> int:
        started = self.clock.now()
        unclaimed_said = 0

        def look(_: Deadline) -> int | None:
            """One look at the run: its new logs and state; its exit code once it ended."""
            nonlocal unclaimed_said
            run = self.client.read_flow_run(self.run_id)
            self._logs()
            state_type = run.state_type
            self._state(run)
            if state_type in decisions.FINAL_STATES:
                self._drain()
                return self._end(run)
            waiting = self.clock.now() - started
            if state_type == "SCHEDULED" and waiting >= UNCLAIMED_NOTICE_S * (unclaimed_said + 1):
                unclaimed_said += 1
                shown = run.state_name
                self.out(
                    f"the run is still {shown} after {waiting:.0f}s: "
                    f"no worker of pool {POOL} took it; `deliverypipeline server status` shows the "
                    f"worker, its log is {self.where.logs / 'worker.log'}"
                )
            return None

        try:
            # The run's own deadline is its end: the flow has no timeout, and a paused run waits
            # for its approval as long as it takes (a run nobody picks up is said, above).
            return poll_until(look, math.inf, POLL_S, _endless, clock=self.clock)
        except KeyboardInterrupt:
            self.interrupted = True
            self._cancel()
        try:
            ended = poll_until(look, CANCEL_WAIT_S, POLL_S, clock=self.clock)
            if not isinstance(ended, GaveUp):
                return ended
            self.out(f"the run did not end within {CANCEL_WAIT_S:.0f}s of the cancel; see {url}")
        except KeyboardInterrupt:
            self.out(f"left while the run is being cancelled; see {url}")
        return decisions.EXIT_INTERRUPTED

    def _logs(self) -> int:
        """Print the run's new log lines; how many. Stops early at a line whose step is not known
        yet (see `_where`): it is printed by a later look, named."""
        shown = 0
        self.waiting_for_name = False
        while True:
            page = self.client.read_logs(self.run_id, limit=LOG_PAGE, offset=self.offset)
            for log in page:
                if self._where(log) is None:
                    self.waiting_for_name = True
                    return shown
                if log.task_run_id is None and log.message.startswith(LAST_LINE):
                    self.last_line_seen = True
                self.out(format_log(log, self.task_names))
                self.offset += 1
                shown += 1
            if len(page) < LOG_PAGE:
                return shown

    def _where(self, log: LogLine) -> str | None:
        """The step a log line belongs to (`flow` for the run's own); None while its task run is
        not on the server yet: Prefect records task runs from events, so a task's first lines
        can arrive before it. After NAME_WAIT_S the line is shown as `task`."""
        task_run_id = log.task_run_id
        if task_run_id is None:
            return "flow"
        if task_run_id not in self.task_names:
            try:
                self.task_names[task_run_id] = self.client.read_task_run_name(task_run_id)
            except NotFound:
                first_miss = self.unnamed.setdefault(task_run_id, self.clock.now())
                if self.clock.now() - first_miss < NAME_WAIT_S:
                    return None
                self.task_names[task_run_id] = "task"
        return self.task_names[task_run_id]

    def _state(self, run: FlowRun) -> None:
        name = run.state_name
        if name == self.last_state:
            return
        self.last_state = name
        message = f": {run.state.message}" if run.state and run.state.message else ""
        self.out(f"state {name}{message}")
        if run.state and run.state.type == "PAUSED":
            self.out(
                f"the run waits for approval: answer in its Resume form at {self.where.run_url(self.run_id)}"
            )

    def _drain(self) -> None:
        """Show the logs shipped after the final state: up to the engine's last line, else until
        QUIET_LOOKS looks in a row find none (a killed run has no last line), or DRAIN_S."""
        quiet = 0

        def settled(_: Deadline) -> bool | None:
            nonlocal quiet
            quiet = quiet + 1 if self._logs() == 0 and not self.waiting_for_name else 0
            return True if self.last_line_seen or quiet >= QUIET_LOOKS else None

        poll_until(settled, DRAIN_S, DRAIN_POLL_S, clock=self.clock)  # the last logs, or on at DRAIN_S

    def _cancel(self) -> None:
        run = self.client.read_flow_run(self.run_id)
        state_type = run.state_type
        if state_type in decisions.FINAL_STATES:
            return
        self.out("Ctrl-C: cancelling the run (Ctrl-C again to leave without waiting)")
        message = "cancelled with Ctrl-C by the command that started it"
        if state_type == "SCHEDULED":  # nothing runs yet: it ends at once
            self.client.set_flow_run_state(
                self.run_id, RunState("CANCELLED", "Cancelled", message), force=True
            )
        else:  # the worker stops its process
            self.client.set_flow_run_state(self.run_id, RunState("CANCELLING", "Cancelling", message))

    def _end(self, run: FlowRun) -> int:
        name = run.state_name
        message = f": {run.state.message}" if run.state and run.state.message else ""
        self.out(f"run {run.name} ended {name}{message}")
        self.out(f"run {self.run_id}: {self.where.run_url(self.run_id)}")
        return decisions.exit_code(run.state_type, self.interrupted)

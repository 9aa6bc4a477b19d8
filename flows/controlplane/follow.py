"""Submit a run of a deployment and follow it to the end: its logs and states, then an exit code.

The run's UI address is printed at the start and at the end. Ctrl-C, in any phase, cancels
the run itself (a run no process runs yet ends Cancelled at once; a running one is Cancelling:
the worker stops its process) and leaves within a few seconds, waiting that long for the end; a
second Ctrl-C leaves at once. A run that nobody picks up is reported every 30 s, and one that
stays Late or Pending past `START_DEADLINE_S` is cancelled and fails the command naming the
worker the server lists and what to do. A run waiting for the deployment's slot (another
release runs) or for a person's approval waits as long as it takes.
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
CANCEL_WAIT_S = 5.0  # after Ctrl-C: how long the run's end is waited for before leaving
CANCEL_CALL_S = 3.0  # after Ctrl-C: how long the API may take to accept the cancel
UNCLAIMED_NOTICE_S = 30.0
START_DEADLINE_S = 90.0  # Late (nobody took it) or Pending (its process does not start) this long: fail
LOG_PAGE = 200


class RunNotStarted(ControlPlaneError):
    """No worker started the run within START_DEADLINE_S; the message names the worker and what to do."""


AWAITING_SLOT = "AwaitingConcurrencySlot"  # Prefect's state name: the deployment's one slot is taken


def not_starting(run: FlowRun) -> bool:
    """Whether `run` waits for a worker to start it: Scheduled or Late (nobody took it yet) or Pending
    (taken, its process not running yet); not while it waits for the deployment's slot."""
    return run.state_type == "PENDING" or (
        run.state_type == "SCHEDULED" and run.state_name in ("Scheduled", "Late")
    )


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
        slot_said = False
        not_started_since: float | None = None

        def look(_: Deadline) -> int | None:
            """One look at the run: its new logs and state; its exit code once it ended."""
            nonlocal unclaimed_said, slot_said, not_started_since
            run = self.client.read_flow_run(self.run_id)
            self._logs()
            state_type = run.state_type
            self._state(run)
            if state_type in decisions.FINAL_STATES:
                self._drain()
                return self._end(run)
            now = self.clock.now()
            if not not_starting(run):
                not_started_since = None
            elif not_started_since is None:
                not_started_since = now
            elif now - not_started_since >= START_DEADLINE_S:
                self._give_up(run, now - not_started_since)
            waiting = now - started
            if run.state_name == AWAITING_SLOT:
                if not slot_said:
                    slot_said = True
                    self.out(
                        "the run waits for the release in progress on its target to end (one release "
                        "at a time per target); it starts then, by itself"
                    )
            elif state_type == "SCHEDULED" and waiting >= UNCLAIMED_NOTICE_S * (unclaimed_said + 1):
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
            # for its approval as long as it takes (a run nobody starts fails, above).
            return poll_until(look, math.inf, POLL_S, _endless, clock=self.clock)
        except KeyboardInterrupt:
            self.interrupted = True
        with self.client.bounded(CANCEL_CALL_S) as quick:  # from here on, every call is short
            return self._cancel_and_leave(quick, url)

    def _cancel_and_leave(self, quick: ControlPlaneApi, url: str) -> int:
        """After Ctrl-C: cancel the run, wait CANCEL_WAIT_S at most for its end; the exit code."""
        try:
            ended = self._cancel(quick)
            if ended is not None:
                return self._end(ended)

            def final(_: Deadline) -> FlowRun | None:
                run = quick.read_flow_run(self.run_id)
                self._state(run)
                return run if run.state_type in decisions.FINAL_STATES else None

            run = poll_until(final, CANCEL_WAIT_S, POLL_S, clock=self.clock)
            if not isinstance(run, GaveUp):
                return self._end(run)
            self.out(f"left while the run is being cancelled (its worker stops its process); see {url}")
        except KeyboardInterrupt:
            self.out(f"left while the run is being cancelled; see {url}")
        except ApiError as exc:
            self.out(f"left without seeing the run end ({exc}); cancel it in the UI if it goes on: {url}")
        return decisions.EXIT_INTERRUPTED

    def _give_up(self, run: FlowRun, waited: float) -> None:
        """Cancel a run no worker starts and fail, naming the workers the server lists."""
        try:
            workers = self.client.read_workers_for_work_pool(POOL)
        except ApiError:
            workers = []
        listed = ", ".join(f"{w.name} ({w.status.lower() or 'unknown'})" for w in workers) or "none"
        message = f"no worker of pool {POOL} started it within {START_DEADLINE_S:.0f}s"
        self.client.set_flow_run_state(self.run_id, RunState("CANCELLED", "Cancelled", message), force=True)
        raise RunNotStarted(
            f"the run stayed {run.state_name} for {waited:.0f}s: no worker of pool {POOL} started it "
            f"(workers the server lists: {listed}); it is cancelled. `deliverypipeline server status` "
            f"shows the worker (its log: {self.where.logs / 'worker.log'}); `deliverypipeline server "
            "stop`, then run again, starts a fresh one"
        )

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

    def _cancel(self, quick: ControlPlaneApi) -> FlowRun | None:
        """Cancel the run after Ctrl-C; the run when it had already ended, else None."""
        run = quick.read_flow_run(self.run_id)
        if run.state_type in decisions.FINAL_STATES:
            return run
        self.out("Ctrl-C: cancelling the run (Ctrl-C again to leave without waiting)")
        message = "cancelled with Ctrl-C by the command that started it"
        if run.state_type in ("SCHEDULED", "PENDING"):  # no process runs it yet: it ends at once
            quick.set_flow_run_state(self.run_id, RunState("CANCELLED", "Cancelled", message), force=True)
        else:  # the worker stops its process
            quick.set_flow_run_state(self.run_id, RunState("CANCELLING", "Cancelling", message))
        return None

    def _end(self, run: FlowRun) -> int:
        name = run.state_name
        message = f": {run.state.message}" if run.state and run.state.message else ""
        self.out(f"run {run.name} ended {name}{message}")
        self.out(f"run {self.run_id}: {self.where.run_url(self.run_id)}")
        return decisions.exit_code(run.state_type, self.interrupted)

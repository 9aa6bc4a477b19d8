"""Optional manual approval before the swap: the flow run pauses until someone approves or rejects.

The run waits in state Paused with a form (`ApprovalInput`) in the Prefect UI's Resume dialog; it can
also be answered from Python with `resume_flow_run(id, run_input={"approve": True})` or
`POST /api/flow_runs/{id}/resume`. A rejection, or no answer before the deadline, yields a
`Decision` that is not approved: the pipeline then stops before swapping, so prod stays as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prefect.input import RunInput

DEFAULT_POLL_S = 5


class ApprovalInput(RunInput):
    """The answer to "swap the new version into prod?"."""

    approve: bool
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    """What the approver decided; `approved` is False for a rejection and for a timeout."""

    approved: bool
    reason: str
    timed_out: bool = False


def describe(version: str, prod: str, preprod: str) -> str:
    """The Markdown shown above the Resume form: what approving will do."""
    return (
        f"**Release {version} is running on preprod** ({preprod}) and passed its checks.\n\n"
        f"Approve to swap it into prod ({prod}); reject to stop here and leave prod as it is."
    )


def await_approval(
    version: str, prod: str, preprod: str, timeout_s: float, *, poll_s: int = DEFAULT_POLL_S
) -> Decision:
    """Pause the current flow run until approved, rejected or `timeout_s` seconds pass.

    Must be called inside a flow run. The run is Paused meanwhile, and is Running again afterwards,
    whatever the outcome, so the flow can clean up and finish.
    """
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    form = ApprovalInput.with_initial_data(description=describe(version, prod, preprod), approve=False)
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=math.ceil(timeout_s), poll_interval=poll_s)
    except FlowPauseTimeout:
        _resume_after_timeout()
        return Decision(
            approved=False,
            reason=f"no answer within {timeout_s:g} s; prod left unchanged",
            timed_out=True,
        )
    if answer.approve:
        return Decision(approved=True, reason=answer.reason or "approved")
    return Decision(approved=False, reason=answer.reason or "rejected; prod left unchanged")


def _resume_after_timeout() -> None:
    """Put the run back to Running after an unanswered pause, so it can end normally.

    Without this the server would fail the run at its end with "never resumed", hiding the
    flow's own outcome (e.g. "not approved, prod unchanged").
    """
    from prefect.context import FlowRunContext

    from flows.controlplane.api import RunState, for_current_run

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    with for_current_run() as api:
        # Forced: the server refuses to resume a pause that has timed out.
        api.set_flow_run_state(context.flow_run.id, RunState("RUNNING", "Running"), force=True)

"""Pure decisions of a recovery: which run it recovers, its name, the release's settings, its reports.

A recovery follows a release run that crashed or was cancelled while it ran. Kept apart from the
flow so that each is tested without Prefect or a target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from flows.config import PipelineConfig, for_target
from flows.errors import ConfigError
from flows.targets.factory import TARGETS

RUN_RESOURCE = "prefect.flow-run."
NAME_PREFIX = "recover "


def crashed_run_id(value: str) -> UUID:
    """The recovered run's id, from an event's resource id (`prefect.flow-run.<id>`) or the id alone."""
    text = value.strip().removeprefix(RUN_RESOURCE)
    try:
        return UUID(text)
    except ValueError:
        raise ConfigError(
            f"crashed_run={value!r} is not a flow run: give its id, or the resource id of its Crashed "
            f"event ({RUN_RESOURCE}<id>)"
        ) from None


def recovery_name(crashed_name: str) -> str:
    """The recovery run's name: what it recovers, as the UI lists it beside the release."""
    return f"{NAME_PREFIX}{crashed_name}"


def release_settings(parameters: Mapping[str, Any]) -> tuple[str, PipelineConfig]:
    """The target and the configuration the crashed release ran with (its run's parameters)."""
    target = str(parameters.get("target") or "local")
    if target not in TARGETS:
        known = ", ".join(TARGETS)
        raise ConfigError(f"the crashed run released to target {target!r}: a recovery knows {known}")
    raw = parameters.get("config") or {}
    try:
        config = raw if isinstance(raw, PipelineConfig) else PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"the crashed run's config cannot be read again: {exc}") from exc
    return target, for_target(config, target)


@dataclass(frozen=True)
class EndedRun:
    """The release run a recovery follows: its name, how it ended (state type, name, message) and
    the parameters it ran with."""

    name: str
    state_type: str  # CRASHED, CANCELLED (CANCELLING while its worker still stops it)
    state_name: str
    message: str
    parameters: Mapping[str, Any]

    @property
    def state(self) -> str:
        """Its state as the UI shows it, with the message: `Crashed: Flow run process exited ...`."""
        return f"{self.state_name}: {self.message}" if self.message else self.state_name

    @property
    def cancelled(self) -> bool:
        """Whether a person or a command cancelled it (rather than its process dying)."""
        return self.state_type in ("CANCELLED", "CANCELLING")

    @property
    def closing_state(self) -> str:
        """The state type its open steps end in: Cancelled for a cancelled run, else Crashed."""
        return "CANCELLED" if self.cancelled else "CRASHED"


NO_REASON = "cancelled while it ran (no reason given)"


def why_it_ended(final_message: str, cancelling_messages: list[str]) -> str:
    """Why the run ended, from its states: for a run cancelled while it ran, the message of its
    last Cancelling state, which says who cancelled it and why (the final Cancelled one is the
    worker's "Flow run was cancelled successfully."; the UI's Cancel gives none); else, as for a
    crash, `final_message`."""
    if not cancelling_messages:
        return final_message
    said = [message for message in cancelling_messages if message.strip()]
    return said[-1] if said else NO_REASON


@dataclass(frozen=True)
class Outcome:
    """What a recovery found and did, for its report."""

    crashed: str  # the crashed (or cancelled) run's name
    crashed_url: str
    crashed_state: str  # e.g. "Crashed: flow run infrastructure exited with status -9"
    target: str
    recovered: str  # what the recover step did (one line)
    prod: str  # prod after the recovery (environment, version)
    verification: str  # the verification of prod (one line), or why it failed
    ok: bool
    died_in: str = "-"  # the step(s) the crashed run left open: where it died


OPEN_STATES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")
# What Prefect's own cancellation clean-up (a server service, every 20 s) says when it cancels
# the task runs a cancelled flow run left open: no word of who cancelled, or why.
SERVER_CANCEL_MESSAGE = "The parent flow run was cancelled."


def left_open(state_type: str, message: str | None, closing_state: str) -> bool:
    """Whether a step of the ended run is to be ended by its recovery as `closing_state`, with the
    reason: still open; cancelled by the server's clean-up without the reason (it may run before
    the recovery); or, in a cancelled run, ended Crashed by the signal that stopped its process."""
    if state_type in OPEN_STATES:
        return True
    if state_type == "CANCELLED":
        return message == SERVER_CANCEL_MESSAGE
    return state_type == "CRASHED" and closing_state == "CANCELLED"


def stopped_in(state_type: str) -> bool:
    """Whether the run stopped in a step that ended in this state: one it left open (ended since),
    or one its own engine ended Crashed or Cancelled as the process went down."""
    return state_type in (*OPEN_STATES, "CRASHED", "CANCELLED")


def died_in(open_steps: list[str]) -> str:
    """Where a crashed run died, from the steps it left open (named once each, in order)."""
    return ", ".join(dict.fromkeys(open_steps)) or "no step was running (it died between steps)"


def closing_message(crashed_state: str) -> str:
    """The message of a step the ended run left open, once the recovery closes it."""
    return f"the run ended while this step ran ({crashed_state}); closed by its recovery"


def reason(run: EndedRun, open_steps: list[str]) -> str:
    """Why the run ended and where, in one line: `Flow run process exited with status code: -9 in
    step `analyse traffic``; the state's name stands in for a missing message."""
    why = _line(run.message).rstrip(".") or f"the run ended {run.state_name}"
    steps = list(dict.fromkeys(open_steps))
    if not steps:
        return f"{why}, between two steps"
    named = ", ".join(f"`{step}`" for step in steps)
    return f"{why} in step{'s' if len(steps) > 1 else ''} {named}"


def report_markdown(outcome: Outcome) -> str:
    """The recovery's markdown artifact: which run, what was found, what was done, prod now."""
    verdict = "prod serves a verified version" if outcome.ok else "**prod is NOT verified: act now**"
    # A list, not a table: the UI cuts a table cell at its edge, and these lines are long.
    lines = [
        f"# Recovery of {outcome.crashed}: {verdict}",
        "",
        f"- **recovered run**: [{outcome.crashed}]({outcome.crashed_url})",
        f"- **its state**: {_line(outcome.crashed_state)}",
        f"- **died in**: {_line(outcome.died_in)}",
        f"- **target**: {outcome.target}",
        f"- **done**: {_line(outcome.recovered)}",
        f"- **prod now**: {_line(outcome.prod)}",
        f"- **verification**: {_line(outcome.verification)}",
    ]
    if not outcome.ok:
        lines += [
            "",
            f"Look at prod (`deliverypipeline {outcome.target} status`); "
            f"`deliverypipeline {outcome.target} swap` gives prod back to the other environment.",
        ]
    return "\n".join(lines) + "\n"


def ended_report_markdown(run: EndedRun, why: str, outcome: Outcome, recovery: str, recovery_url: str) -> str:
    """The report left on the crashed or cancelled run (its own was never written, or written before
    the end): it starts with why and where the run ended, then what prod serves now and what was done."""
    prod = f"{outcome.prod} (verified)" if outcome.ok else f"**NOT verified, act now**: {outcome.prod}"
    lines = [
        f"# {run.state_name}: {_line(why)}",
        "",
        f"**Prod now:** {_line(prod)}",
        "",
        f"- **run**: {run.name}",
        f"- **done**: {_line(outcome.recovered)}",
        f"- **verification**: {_line(outcome.verification)}",
        f"- **recovered by**: [{recovery}]({recovery_url})",
    ]
    return "\n".join(lines) + "\n"


ENDED_TAG_PREFIXES = ("ended in ", "ended between steps", "prod verified by recovery", "prod NOT verified")


def is_ended_tag(tag: str) -> bool:
    """Whether `tag` is one `ended_tags` gives (a later recovery of the same run replaces them)."""
    return tag.startswith(ENDED_TAG_PREFIXES)


def ended_tags(open_steps: list[str], outcome: Outcome) -> list[str]:
    """Tags the recovery adds to the ended run, shown beside its name at the top of its page (and
    searchable in the runs list): where it ended and whether prod was verified after it."""
    steps = list(dict.fromkeys(open_steps))
    where = f"ended in {', '.join(steps)}" if steps else "ended between steps"
    return [where, "prod verified by recovery" if outcome.ok else "prod NOT verified"]


def ended_log_line(why: str, outcome: Outcome, recovery: str) -> str:
    """The line the recovery adds to the ended run's log (the tab its page opens on)."""
    prod = f"prod verified: {outcome.prod}" if outcome.ok else f"prod NOT verified: {outcome.verification}"
    return _line(f"{why}. {recovery}: {outcome.recovered}; {prod}")


def _line(text: str) -> str:
    """Text on one markdown line."""
    return " ".join(text.split())

"""Pure decisions of a recovery: which run it recovers, its name, the release's settings, its report.

Kept apart from the flow so that each is tested without Prefect or a target.
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
class Outcome:
    """What a recovery found and did, for its report."""

    crashed: str  # the crashed run's name
    crashed_url: str
    crashed_state: str  # e.g. "Crashed: flow run infrastructure exited with status -9"
    target: str
    recovered: str  # what the recover step did (one line)
    prod: str  # prod after the recovery (environment, version)
    verification: str  # the verification of prod (one line), or why it failed
    ok: bool
    died_in: str = "-"  # the step(s) the crashed run left open: where it died


OPEN_STATES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


def died_in(open_steps: list[str]) -> str:
    """Where a crashed run died, from the steps it left open (named once each, in order)."""
    return ", ".join(dict.fromkeys(open_steps)) or "no step was running (it died between steps)"


def closing_message(crashed_state: str) -> str:
    """The message of a step the crashed run left open, once the recovery marks it Crashed."""
    return f"the run ended while this step ran ({crashed_state}); closed by its recovery"


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


def crashed_note_markdown(recovery_name: str, recovery_url: str, outcome_line: str) -> str:
    """The note left on the crashed run: which run recovered it and how it ended."""
    return f"Recovered by [{recovery_name}]({recovery_url}): {_line(outcome_line)}\n"


def _line(text: str) -> str:
    """Text on one markdown line."""
    return " ".join(text.split())

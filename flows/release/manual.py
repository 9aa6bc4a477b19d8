"""The manual operations of the command line: a swap by hand (the instant rollback), under the lock."""

from __future__ import annotations

from flows.clock import SYSTEM_CLOCK, Clock
from flows.config import PipelineConfig
from flows.release.decisions import Roles, describe
from flows.release.errors import NothingToRollBack
from flows.release.facts import Log, find_roles, quiet
from flows.release.lock import holder, locked
from flows.release.swap import swap
from flows.targets.base import Target


def manual_swap(
    target: Target, config: PipelineConfig, run: str = "cli", log: Log = quiet, clock: Clock = SYSTEM_CLOCK
) -> tuple[Roles, Roles]:
    """The CLI's swap (a manual rollback): under the target's lock, the same swap as the release's.

    Refused when preprod runs nothing (after the first release): prod would answer 503.
    """
    with locked(target, holder("manual swap", run), config, log):
        before = find_roles(target, config)
        if before.preprod.version is None:
            raise NothingToRollBack(
                f"not swapping: preprod ({describe(before.preprod)}) runs nothing, so there is no previous "
                "version to roll back to; swapping would put an empty environment on prod"
            )
        return before, swap(target, config, log, clock)

"""Recovery: what crashes left on a target, undone under its lock before a release changes anything."""

from __future__ import annotations

from flows.clock import SYSTEM_CLOCK, Clock
from flows.config import PipelineConfig
from flows.release.decisions import describe, unfinished_swap
from flows.release.facts import Log, find_roles, quiet
from flows.release.lock import locked
from flows.release.swap import swap
from flows.targets.base import LockHolder, Target


def recover(
    target: Target, interrupted: LockHolder | None, config: PipelineConfig,
    log: Log = quiet, clock: Clock = SYSTEM_CLOCK,
) -> str:  # fmt: skip
    """Undo what crashes left: stopped environments, leftovers, and a swap never verified.

    Needs no person: the target is brought back to its own record (`Target.reconcile`: locally,
    containers a host restart stopped start again, the proxy runs, orphans are removed); when
    the holder died after its swap, the previous version still runs on preprod, so swapping back
    restores the last verified prod; the new release then goes through every check. Returns what
    was done.
    """
    repairs = target.reconcile()
    for line in repairs:
        log(line)
    left = f"; {len(repairs)} repair(s) of the target, see the log" if repairs else ""
    if interrupted is None:
        return f"the previous holder let go of the lock cleanly: nothing to recover{left}"
    roles = find_roles(target, config)
    if not unfinished_swap(roles, interrupted.operation):
        prod = describe(roles.prod)
        if repairs:  # a repair may have put back a part of prod the holder moved (a fleet's wave)
            return (
                f"{interrupted.describe()} died before its swap: prod is {prod}; "
                f"{len(repairs)} repair(s) of the target: {'; '.join(repairs)}"
            )
        return f"{interrupted.describe()} died before its swap: prod ({prod}) was not touched"
    log(f"{interrupted.describe()} died after its swap: prod runs its unverified version, swapping back")
    restored = swap(target, config, log, clock, seen=roles)
    prod = describe(restored.prod)
    return f"swapped back the unverified swap of {interrupted.operation}: prod is {prod}{left}"


RECOVERY = "recover"  # the lock holder's operation while a release recovers the target


def recover_target(
    target: Target, who: LockHolder, config: PipelineConfig, log: Log = quiet, clock: Clock = SYSTEM_CLOCK
) -> str:
    """`recover` under the target's lock, taken for it alone (`who` holds it): a release's first act
    on the target, before anything is built, so prod is safe however long the build takes."""
    with locked(target, who, config, log) as interrupted:
        return recover(target, interrupted, config, log, clock)

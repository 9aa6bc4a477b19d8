"""The swap and the swap back: the one call site of `Target.swap`.

The release's swap, the swap back of a rejected prod, the recovery and the CLI's manual swap all
go through `swap`: it waits (bounded by `deadlines.swap`) until both environments can be swapped,
swaps, and waits until both settle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
from flows.config import PipelineConfig
from flows.release.decisions import Roles, describe, settled, swap_happened, swap_pair, swappable
from flows.release.errors import StoppedBeforeSwap, SwapBackFailed, SwappedBack, SwapStuck
from flows.release.facts import Log, find_roles, quiet
from flows.targets.base import Target


def swap(
    target: Target, config: PipelineConfig, log: Log = quiet, clock: Clock = SYSTEM_CLOCK,
    seen: Roles | None = None,
) -> Roles:  # fmt: skip
    """Exchange the prod and preprod addresses: the one call site of `Target.swap`, for the release's
    swap, the swap back, the recovery and the CLI's swap.

    Waits (bounded by `deadlines.swap`) until both environments can be swapped (EB: both Ready),
    swaps, then waits until both settle with the other environment on the prod address. The
    target is asked afresh; `seen`: roles just read (they count as the first look).
    """
    ready = _wait_roles(
        target,
        config,
        clock,
        log,
        lambda now: swappable(now.prod) and swappable(now.preprod),
        "both environments to be swappable (Ready)",
        "before the swap",
        first=seen,
    )
    first, second = swap_pair(ready)
    log(f"swapping the addresses of {first} (to prod) and {second} (to preprod)")
    target.swap(first, second)
    after = _wait_roles(
        target, config, clock, log,
        lambda now: settled(now.prod) and settled(now.preprod) and now.prod.name == first,
        f"{first} to hold prod and both to settle", "after the swap",
    )  # fmt: skip
    if config.traffic_steps and target.supports_canary:
        target.set_traffic_share(after.prod.name, 0)  # the canary's share is all of prod now
    return after


def _wait_roles(
    target: Target, config: PipelineConfig, clock: Clock, log: Log,
    done: Callable[[Roles], bool], waiting_for: str, when: str, first: Roles | None = None,
) -> Roles:  # fmt: skip
    seen: list[Roles] = []

    def look(_: Deadline) -> Roles | None:
        roles = find_roles(target, config)
        seen[:] = [roles]
        if done(roles):
            return roles
        log(f"waiting for {waiting_for}: prod {describe(roles.prod)}; preprod {describe(roles.preprod)}")
        return None

    def stuck(deadline: Deadline) -> SwapStuck:
        roles = seen[0]
        return SwapStuck(
            f"waited {deadline.seconds:.0f}s {when} for {waiting_for}: prod is {describe(roles.prod)}, "
            f"preprod is {describe(roles.preprod)}; check the target's events and, if needed, swap by "
            "hand with `deliverypipeline <target> swap`"
        )

    if first is not None and done(first):
        return first
    return poll_until(look, config.deadlines.swap, config.deadlines.poll_s, stuck, clock=clock)


def swap_back(
    target: Target, before: Roles, failure: BaseException, config: PipelineConfig,
    log: Log = quiet, clock: Clock = SYSTEM_CLOCK,
) -> NoReturn:  # fmt: skip
    """End a release rejected (or interrupted) at or after the swap: raises the error that ends it.

    `before` are the roles before the swap. Any canary share ends; if the addresses were already
    exchanged, the previous prod (still on the previous version) takes prod again (`SwappedBack`);
    if not, prod was never touched (`StoppedBeforeSwap`). `SwapBackFailed` when the swap back
    fails: a person must act then.
    """
    failure_said = str(failure) or f"the run was stopped ({type(failure).__name__}: cancelled or killed)"
    try:
        if config.traffic_steps and target.supports_canary:
            target.set_traffic_share(before.preprod.name, 0)
        now = find_roles(target, config)
        if not swap_happened(before, now):
            log(f"the swap had not happened: prod is {describe(now.prod)}, unchanged")
            unchanged = f"{failure_said}; the swap had not happened: prod is {describe(now.prod)}, unchanged"
            raise StoppedBeforeSwap(unchanged) from failure
        restored = swap(target, config, log, clock, seen=now)
    except StoppedBeforeSwap:
        raise
    except Exception as exc:
        raise SwapBackFailed(
            f"the new prod {before.preprod.name} was rejected ({failure_said}) and swapping back failed too: "
            f"{exc}. Prod may still be {before.preprod.name}: look with `deliverypipeline <target> status`, "
            "swap by hand with `deliverypipeline <target> swap` or release the previous commit"
        ) from exc
    log(f"swapped back: prod is {describe(restored.prod)} again")
    raise SwappedBack(
        f"{failure_said}; swapped back: prod is {describe(restored.prod)} again. Look at "
        f"{before.preprod.name}'s logs (`deliverypipeline <target> status`) before re-running"
    ) from failure

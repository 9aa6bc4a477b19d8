"""The target contract (`flows/targets/base.py`) as checks that run against any target.

Each check takes a `Stage`: the target under test and what only its test world can give (a
bundle of a deployable version, the clock its waits run on). `test_contract.py` runs every
check against every target's stage; a new target proves itself with one more stage fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from flows.clock import Clock, poll_until
from flows.errors import TargetError
from flows.targets.base import (
    GREEN,
    GREY,
    LAUNCHING,
    MISSING,
    READY,
    RED,
    TERMINATED,
    UPDATING,
    YELLOW,
    Environment,
    LockHolder,
    Target,
)

STATUSES = {READY, UPDATING, LAUNCHING, TERMINATED, MISSING}
HEALTHS = {GREEN, YELLOW, RED, GREY}
HOLDER = LockHolder("contract check", "contract", 4242, "tests", "2026-12-01T10:00:00+00:00")


@dataclass
class Stage:
    """A target under the contract, and its world."""

    target: Target
    prod_address: str
    preprod_address: str
    bundle: Callable[[str], dict[str, Any]]  # the rendered Dockerrun.aws.json of a deployable version
    versions: tuple[str, str]  # two versions its world can deploy
    clock: Clock  # what the target's waits run on (a fake clock, or the real one)
    ready_within: float = 120.0  # seconds of `clock` a deploy may take to be Ready
    emits_events: bool = True  # whether a deploy leaves events (the fake target's are scripted)


def by_address(stage: Stage) -> dict[str, Environment]:
    """The environments by the address they hold."""
    return {env.address: env for env in stage.target.environments()}


def preprod(stage: Stage) -> Environment:
    """The environment holding the preprod address."""
    return by_address(stage)[stage.preprod_address]


def deployed(stage: Stage, version: str) -> Environment:
    """Register `version`, deploy it to preprod and wait on the stage's clock until it is Ready there."""
    target = stage.target
    target.register_version(version, stage.bundle(version))
    name = preprod(stage).name
    target.deploy(name, version)

    def ready(_: object) -> Environment | None:
        env = next(e for e in target.environments() if e.name == name)
        return env if (env.status, env.version, env.health) == (READY, version, GREEN) else None

    return poll_until(
        ready,
        stage.ready_within,
        1.0,
        lambda _: AssertionError(f"{name} never became Ready with {version}: {target.environments()}"),
        clock=stage.clock,
    )


# --- the checks ---------------------------------------------------------------------------


def check_it_is_a_target(stage: Stage) -> None:
    """It implements the protocol, names itself and turns an address into an HTTP URL."""
    assert isinstance(stage.target, Target)
    assert stage.target.name
    assert stage.target.url(stage.prod_address).startswith("http://")


def check_environments_hold_prod_and_preprod(stage: Stage) -> None:
    """Exactly two distinct environments, one per address, in the platform's vocabulary."""
    envs = stage.target.environments()
    assert len(envs) == 2 and envs[0].name != envs[1].name
    assert {env.address for env in envs} == {stage.prod_address, stage.preprod_address}
    assert all(env.status in STATUSES and env.health in HEALTHS for env in envs), envs
    assert [env.name for env in envs] == [env.name for env in stage.target.environments()]  # a read


def check_register_version_is_idempotent(stage: Stage) -> None:
    """The same version and bundle twice is one registration, and deployable."""
    version = stage.versions[0]
    stage.target.register_version(version, stage.bundle(version))
    stage.target.register_version(version, stage.bundle(version))
    assert deployed(stage, version).version == version


def check_a_deploy_reaches_ready_with_its_version(stage: Stage) -> None:
    """A deploy ends Ready, Green, with the version, on the environment that held preprod."""
    before = preprod(stage)
    env = deployed(stage, stage.versions[1])
    assert (env.name, env.address) == (before.name, stage.preprod_address)


def check_a_swap_exchanges_the_addresses_and_a_second_undoes_it(stage: Stage) -> None:
    """Both addresses switch in one call; swapping again restores them."""
    deployed(stage, stage.versions[0])
    before = {env.name: env.address for env in stage.target.environments()}
    first, second = before
    stage.target.swap(first, second)
    after = {env.name: env.address for env in stage.target.environments()}
    assert after == {first: before[second], second: before[first]}
    stage.target.swap(second, first)
    assert {env.name: env.address for env in stage.target.environments()} == before


def check_events_are_of_one_environment_after_since_oldest_first(stage: Stage) -> None:
    """Events of a deploy: only its environment's, strictly after `since`, in time order."""
    since = datetime.now(UTC)
    env = deployed(stage, stage.versions[0])
    events = stage.target.events(env.name, since)
    assert all(event.environment == env.name and event.time > since for event in events), events
    assert [event.time for event in events] == sorted(event.time for event in events)
    if stage.emits_events:
        assert events, "a deploy left no event"


def check_preflight_and_reconcile_report_lines_and_reconcile_is_idempotent(stage: Stage) -> None:
    """Both answer lines of text; a second reconcile right after the first repairs nothing."""
    problems = stage.target.preflight()
    assert isinstance(problems, list) and all(isinstance(line, str) and line for line in problems)
    repairs = stage.target.reconcile()
    assert all(isinstance(line, str) and line for line in repairs)
    assert stage.target.reconcile() == []


def check_the_lock_is_held_for_the_block_and_free_after(stage: Stage) -> None:
    """A fresh lock was not left by a dead holder; once the block ends it is taken again at once."""
    logs: list[str] = []
    with stage.target.lock(HOLDER, 5, logs.append) as interrupted:
        assert interrupted is None
    with stage.target.lock(HOLDER, 5, logs.append) as interrupted:
        assert interrupted is None
    assert not [line for line in logs if "waiting" in line], logs


def check_a_held_lock_refuses_a_second_taker_in_time_naming_the_holder(stage: Stage) -> None:
    """While held, another taker waits at most its wait, then gets a `TargetError` naming the holder."""
    other = LockHolder("second taker", "contract-2", 4343, "tests", "2026-12-01T10:01:00+00:00")
    with stage.target.lock(HOLDER, 5, print):
        started = stage.clock.now()
        with pytest.raises(TargetError) as refused, stage.target.lock(other, 1, print):
            pytest.fail("took a lock another holder has")
        assert stage.clock.now() - started < 30, "the wait overran its deadline"
    assert HOLDER.operation in str(refused.value), refused.value
    with stage.target.lock(other, 5, print) as interrupted:  # free again once the holder let go
        assert interrupted is None


def check_traffic_counters_never_go_back(stage: Stage) -> None:
    """Counters are non-negative, and a later reading is never below an earlier one."""
    env = deployed(stage, stage.versions[0])
    first = stage.target.traffic(env.name)
    stage.target.swap(*[e.name for e in stage.target.environments()])
    second = stage.target.traffic(env.name)
    for field in ("requests", "server_errors", "connection_errors"):
        assert 0 <= getattr(first, field) <= getattr(second, field), (first, second)


def check_traffic_shares_zero_always_and_refuses_what_it_cannot(stage: Stage) -> None:
    """Share 0 is always accepted; above 0 without canary, or outside 0..100, is a TargetError."""
    env = deployed(stage, stage.versions[0])
    stage.target.set_traffic_share(env.name, 0)
    stage.target.set_traffic_share(env.name, 0)
    if not stage.target.supports_canary:
        with pytest.raises(TargetError):
            stage.target.set_traffic_share(env.name, 10)
    with pytest.raises(TargetError):
        stage.target.set_traffic_share(env.name, 101)


def check_failures_are_target_errors(stage: Stage) -> None:
    """An unregistered version, an unknown environment: `TargetError`, and nothing changes."""
    before = stage.target.environments()
    with pytest.raises(TargetError):
        stage.target.deploy(preprod(stage).name, "never-registered")
    with pytest.raises(TargetError):
        stage.target.deploy("no-such-environment", stage.versions[0])
    with pytest.raises(TargetError):
        stage.target.swap(before[0].name, "no-such-environment")
    assert [(e.name, e.address, e.version) for e in stage.target.environments()] == [
        (e.name, e.address, e.version) for e in before
    ]


CHECKS: list[Callable[[Stage], None]] = [
    check_it_is_a_target,
    check_environments_hold_prod_and_preprod,
    check_register_version_is_idempotent,
    check_a_deploy_reaches_ready_with_its_version,
    check_a_swap_exchanges_the_addresses_and_a_second_undoes_it,
    check_events_are_of_one_environment_after_since_oldest_first,
    check_preflight_and_reconcile_report_lines_and_reconcile_is_idempotent,
    check_the_lock_is_held_for_the_block_and_free_after,
    check_a_held_lock_refuses_a_second_taker_in_time_naming_the_holder,
    check_traffic_counters_never_go_back,
    check_traffic_shares_zero_always_and_refuses_what_it_cannot,
    check_failures_are_target_errors,
]

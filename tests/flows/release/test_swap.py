"""The swap, and the swap back of a rejected prod: what each leaves on prod."""

from __future__ import annotations

from dataclasses import replace

import pytest

from flows.config import Deadlines, PipelineConfig
from flows.errors import ReleaseError
from flows.release.errors import ProdRejected, StoppedBeforeSwap, SwapBackFailed, SwappedBack
from flows.release.facts import find_roles
from flows.release.swap import swap, swap_back
from flows.release.verify import require
from flows.targets.base import READY, UPDATING
from tests.flows.fakes import FakeClock, FakeTarget, http_check_of
from tests.flows.release.support import PREPROD, PROD, deploy_and_wait, swaps, verify_address


def test_swap_waits_until_both_environments_are_swappable(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-1"] = replace(target.envs["node-1"], status=UPDATING)  # prod busy
    target.pending["node-1"] = ("v1", 2)  # Ready again at the third look
    lines: list[str] = []

    after = swap(target, config, lines.append, clock)

    assert swaps(target) == [("swap", "node-2", "node-1")]
    assert after.prod.name == "node-2" and after.prod.address == PROD
    assert clock.time == pytest.approx(2 * config.deadlines.poll_s)
    assert sum("waiting for both environments to be swappable" in line for line in lines) == 2


def test_swap_never_swappable_fails_naming_the_state_and_never_swaps() -> None:
    config = PipelineConfig(deadlines=Deadlines(swap=30))
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-2"] = replace(target.envs["node-2"], status=UPDATING)

    with pytest.raises(ReleaseError, match="waited 30s before the swap") as failure:
        swap(target, config, clock=clock)

    assert "preprod is node-2 at 127.0.0.1:8081: version v0, status Updating" in str(failure.value)
    assert swaps(target) == []
    assert target.serving(PROD).name == "node-1"
    assert clock.time == pytest.approx(30)


def test_swap_waits_until_the_swap_settled(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    original = target.swap

    def swap_then_update(first: str, second: str) -> None:
        original(first, second)  # like EB: both environments are briefly Updating after a swap
        for name in (first, second):
            target.envs[name] = replace(target.envs[name], status=UPDATING)
            target.pending[name] = (target.envs[name].version or "", 1)

    target.swap = swap_then_update  # type: ignore[method-assign]
    after = swap(target, config, clock=clock)
    assert after.prod.name == "node-2" and after.prod.status == READY and after.preprod.status == READY
    assert clock.time == pytest.approx(config.deadlines.poll_s)


def test_swap_ends_the_canary_share_on_a_canary_target() -> None:
    config = PipelineConfig(traffic_steps=[10])
    target, clock = FakeTarget.pair(), FakeClock()
    after = swap(target, config, clock=clock)
    assert target.shares == [(after.prod.name, 0)]


def test_failed_prod_verification_swaps_back(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    roles, _ = deploy_and_wait(target, "v2", config, clock)
    require(verify_address(target, PREPROD, "v2", config, clock), "preprod")
    swap(target, config, clock=clock)
    prod_check = http_check_of(target, broken_versions=frozenset({"v2"}))
    verification = verify_address(target, PROD, "v2", config, clock, prod_check)

    with pytest.raises(ProdRejected) as rejected:
        require(verification, "prod", ProdRejected)
    with pytest.raises(SwappedBack, match="swapped back: prod is node-1") as ended:
        swap_back(target, roles, rejected.value, config, clock=clock)

    assert "prod does not serve v2 to users" in str(ended.value)  # the reason is kept
    assert target.serving(PROD).name == "node-1"
    assert target.serving(PROD).version == "v1"
    assert swaps(target) == [("swap", "node-2", "node-1"), ("swap", "node-1", "node-2")]


def test_a_failing_swap_back_says_a_person_must_act(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(prod_version="v1", preprod_version="v2"), FakeClock()
    before = find_roles(target, config)
    swap(target, config, clock=clock)
    target.fail_swap_after = 1
    with pytest.raises(SwapBackFailed, match="swapping back failed too") as failure:
        swap_back(target, before, ProdRejected("prod answered 503"), config, clock=clock)
    assert "prod answered 503" in str(failure.value) and "swap by hand" in str(failure.value)
    assert target.serving(PROD).name == "node-2"  # still the rejected one: a person must act


def test_a_run_stopped_after_the_swap_swaps_back_and_says_it_was_stopped(config: PipelineConfig) -> None:
    class Stopped(BaseException):
        """What a cancel or a kill raises in the flow: a signal, with no message."""

    target, clock = FakeTarget.pair(prod_version="v1", preprod_version="v2"), FakeClock()
    before = find_roles(target, config)
    swap(target, config, clock=clock)
    with pytest.raises(SwappedBack) as ended:
        swap_back(target, before, Stopped(), config, clock=clock)
    assert str(ended.value).startswith(
        "the run was stopped (Stopped: cancelled or killed); swapped back: prod is node-1"
    )
    assert isinstance(ended.value.__cause__, Stopped)
    assert target.serving(PROD).version == "v1"


def test_a_rejection_before_the_swap_happened_leaves_prod_and_ends_the_canary() -> None:
    config = PipelineConfig(traffic_steps=[10])
    target, clock = FakeTarget.pair(prod_version="v1", preprod_version="v2"), FakeClock()
    before = find_roles(target, config)
    with pytest.raises(StoppedBeforeSwap, match="the swap had not happened: prod is node-1"):
        swap_back(target, before, ReleaseError("the swap timed out"), config, clock=clock)
    assert swaps(target) == []  # prod was never touched: nothing to swap back
    assert target.shares == [("node-2", 0)]  # the canary share ends

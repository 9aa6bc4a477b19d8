"""The manual swap of the command line: under the lock, refused onto an empty preprod."""

from __future__ import annotations

import pytest

from flows.config import PipelineConfig
from flows.errors import ReleaseError, TargetError
from flows.release.manual import manual_swap
from flows.targets.base import GREEN, LockHolder
from tests.flows.fakes import FakeClock, FakeTarget
from tests.flows.release.support import PROD, swaps


def test_manual_swap_takes_the_lock_around_the_swap(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(prod_version="v2", preprod_version="v1"), FakeClock()
    before, after = manual_swap(target, config, run="cli", clock=clock)

    assert target.calls == [("lock", "manual swap"), ("swap", "node-2", "node-1"), ("unlock", "manual swap")]
    assert [(who.operation, who.run) for who in target.held_by] == [("manual swap", "cli")]
    assert before.prod.name == "node-1" and after.prod.name == "node-2"
    assert target.serving(PROD).version == "v1"  # the rollback: the previous version serves prod


def test_manual_swap_on_a_locked_target_does_not_swap(config: PipelineConfig) -> None:
    target = FakeTarget.pair()
    target.lock_holder = LockHolder("release v9", "run-9", 99, "host", "2026-12-01T00:00:00+00:00")
    with pytest.raises(TargetError, match="locked by release v9"):
        manual_swap(target, config, clock=FakeClock())
    assert target.calls == [] and target.serving(PROD).name == "node-1"


def test_manual_swap_releases_the_lock_when_the_swap_fails(config: PipelineConfig) -> None:
    target = FakeTarget.pair()
    target.fail_swap_after = 0
    with pytest.raises(TargetError, match="refused the swap"):
        manual_swap(target, config, clock=FakeClock())
    assert target.calls == [("lock", "manual swap"), ("unlock", "manual swap")]
    assert target.envs["node-1"].health == GREEN and target.serving(PROD).name == "node-1"


def test_a_manual_swap_onto_an_empty_preprod_is_refused(config: PipelineConfig) -> None:
    target = FakeTarget.pair(prod_version="v1", preprod_version=None)
    with pytest.raises(ReleaseError, match=r"preprod .* runs nothing"):
        manual_swap(target, config, clock=FakeClock())
    assert swaps(target) == [] and target.serving(PROD).version == "v1"

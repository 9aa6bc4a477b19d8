"""Recovery under the target's lock: what a dead holder left, undone before a release changes anything."""

from __future__ import annotations

from dataclasses import replace

from flows.config import PipelineConfig
from flows.release.lock import holder
from flows.release.recovery import RECOVERY, recover_target
from flows.targets.base import LockHolder
from tests.flows.fakes import FakeClock, FakeTarget
from tests.flows.release.support import PROD, swaps

RECOVERING = holder(RECOVERY, "run-now")


def died(operation: str) -> LockHolder:
    return LockHolder(operation, "run-killed", 999, "host", "2026-12-01T00:00:00+00:00")


def test_a_clean_target_is_locked_for_the_recovery_alone_and_let_go(config: PipelineConfig) -> None:
    target = FakeTarget.pair()
    done = recover_target(target, RECOVERING, config, clock=FakeClock())

    assert "let go of the lock cleanly: nothing to recover" in done
    assert target.calls == [("lock", "recover"), ("unlock", "recover")]
    assert [who.operation for who in target.held_by] == ["recover"]


def test_a_release_killed_after_its_swap_is_swapped_back_under_the_recovery_lock(
    config: PipelineConfig,
) -> None:
    target = FakeTarget.pair(prod_version="v1", preprod_version="v2")
    target.swap("node-1", "node-2")  # the killed release had put v2 on prod, unverified
    target.calls.clear()
    target.interrupted = died("release v2")

    done = recover_target(target, RECOVERING, config, clock=FakeClock())

    assert "swapped back the unverified swap of release v2" in done
    assert target.serving(PROD).version == "v1"
    assert target.calls == [("lock", "recover"), ("swap", "node-1", "node-2"), ("unlock", "recover")]


def test_a_release_killed_before_its_swap_leaves_prod_and_orphans_go(config: PipelineConfig) -> None:
    target = FakeTarget.pair(prod_version="v1", preprod_version="v0")
    target.envs["node-2"] = replace(target.envs["node-2"], version="v2")
    target.orphans = ["app-node-2-v0"]
    target.interrupted = died("release v2")

    done = recover_target(target, RECOVERING, config, clock=FakeClock())

    assert done.startswith("release v2 (run")
    assert "died before its swap: prod is node-1" in done and "; 1 repair(s) of the target: " in done
    assert "not touched" not in done
    assert swaps(target) == [] and target.serving(PROD).version == "v1"
    assert target.orphans == []


def test_a_dead_recovery_or_manual_swap_is_not_swapped_back(config: PipelineConfig) -> None:
    target = FakeTarget.pair(prod_version="v2", preprod_version="v1")
    target.interrupted = died("manual swap")

    recover_target(target, RECOVERING, config, clock=FakeClock())

    assert swaps(target) == [] and target.serving(PROD).version == "v2"

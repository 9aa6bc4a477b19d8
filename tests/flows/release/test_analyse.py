"""Real traffic judged: the canary steps and the analysis after the swap."""

from __future__ import annotations

import pytest

from flows.config import PipelineConfig
from flows.errors import ReleaseError, TargetError
from flows.release.analyse import analyse, shift_traffic
from flows.release.errors import AnalysisFailed
from flows.release.facts import find_roles
from flows.release.settings import AnalysisSettings
from flows.targets.base import TrafficCounters
from tests.flows.fakes import FakeClock, FakeTarget
from tests.flows.release.support import PROD, swaps


def canary_config(steps: list[int]) -> PipelineConfig:
    return PipelineConfig(traffic_steps=steps, analysis=AnalysisSettings(window=1.0, min_requests=20))


def canary_traffic(target: FakeTarget, failing: bool) -> None:
    """The canary (node-2) gets 100 requests per look: all 5xx when `failing`."""
    served = [0]

    def traffic(environment: str) -> TrafficCounters:
        if environment != "node-2":
            return TrafficCounters(0, 0, 0, 5.0)
        served[0] += 100
        return TrafficCounters(served[0], served[0] if failing else 0, 0, 5.0)

    target.traffic = traffic  # type: ignore[method-assign]


def test_shift_traffic_analyses_each_step_and_leaves_the_swap_to_follow() -> None:
    config = canary_config([10, 50, 100])
    target, clock = FakeTarget.pair(), FakeClock()
    canary_traffic(target, failing=False)
    verdicts = shift_traffic(target, find_roles(target, config), None, config, clock=clock)
    assert [share for share, _ in verdicts] == [10, 50]  # 100 % is the swap itself
    assert all(verdict.passed and verdict.conclusive for _, verdict in verdicts)
    assert target.shares == [("node-2", 10), ("node-2", 50)]
    assert swaps(target) == [] and target.serving(PROD).name == "node-1"


def test_a_failing_canary_step_aborts_back_to_zero_percent() -> None:
    config = canary_config([10, 50])
    target, clock = FakeTarget.pair(), FakeClock()
    canary_traffic(target, failing=True)
    lines: list[str] = []
    with pytest.raises(AnalysisFailed, match="canary at 10 % failed the traffic analysis") as failure:
        shift_traffic(target, find_roles(target, config), None, config, log=lines.append, clock=clock)
    assert failure.value.share == 10 and "5xx share 100.0 %" in str(failure.value)
    assert target.shares == [("node-2", 10), ("node-2", 0)]  # the 50 % step never came
    assert any("canary aborted: all prod traffic back on node-1" in line for line in lines)
    assert clock.time < config.analysis.window_s  # decided at the first bad reading
    assert swaps(target) == [] and target.serving(PROD).version == "v1"


def test_any_failure_during_the_canary_returns_to_zero_percent() -> None:
    config = canary_config([10])
    target, clock = FakeTarget.pair(), FakeClock()

    def broken(environment: str) -> TrafficCounters:
        raise TargetError("the proxy's admin socket does not answer")

    target.traffic = broken  # type: ignore[method-assign]
    with pytest.raises(TargetError, match="admin socket"):
        shift_traffic(target, find_roles(target, config), None, config, clock=clock)
    assert target.shares == [("node-2", 10), ("node-2", 0)]


def test_no_steps_is_no_canary_and_a_target_without_canary_refuses_steps() -> None:
    target = FakeTarget.pair()
    roles = find_roles(target, PipelineConfig())
    assert shift_traffic(target, roles, None, PipelineConfig()) == []
    assert shift_traffic(target, roles, None, PipelineConfig(traffic_steps=[100])) == []
    target.canary = False
    with pytest.raises(ReleaseError, match="cannot: leave traffic_steps empty"):
        shift_traffic(target, roles, None, canary_config([10]))
    assert target.shares == []


def test_analyse_fails_broken_prod_early_and_passes_a_good_one() -> None:
    config = PipelineConfig(analysis=AnalysisSettings(window=10.0, min_requests=20))
    target, clock = FakeTarget.pair(prod_version="v2"), FakeClock()
    target.broken_versions = frozenset({"v2"})
    with pytest.raises(AnalysisFailed, match="the new prod failed the traffic analysis") as failure:
        analyse(target, "node-1", None, config, "the new prod", clock=clock)
    assert failure.value.verdict.figures.server_errors == 50
    assert clock.time < 10

    target.broken_versions = frozenset()
    clock = FakeClock()
    verdict = analyse(target, "node-1", None, config, "the new prod", clock=clock)
    assert verdict.passed and verdict.conclusive and clock.time >= 10


def test_analyse_from_a_reading_at_the_swap_counts_since_then_and_ends_that_much_sooner() -> None:
    config = PipelineConfig(analysis=AnalysisSettings(window=10.0, min_requests=20))
    target, clock = FakeTarget.pair(prod_version="v2"), FakeClock()
    at_swap = (target.traffic("node-1"), clock.now())
    clock.sleep(3.0)  # the swap and the prod verification
    verdict = analyse(target, "node-1", None, config, "the new prod", since=at_swap, clock=clock)
    assert verdict.passed and verdict.conclusive
    assert 10 <= clock.time < 10 + 1  # 10 s from the swap, not from the analysis' start
    assert verdict.figures.seconds >= 10
    looks = verdict.figures.requests // target.requests_per_look
    assert verdict.figures.requests == looks * target.requests_per_look and looks >= 2

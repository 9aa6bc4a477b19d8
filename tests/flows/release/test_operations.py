"""The release operations over a fake target, in the flow's order: each asserts what happened to prod."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flows.config import Deadlines, PipelineConfig
from flows.errors import ReleaseError, TargetError
from flows.release import operations as release
from flows.release.decisions import Roles
from flows.release.health import HealthCheck, HealthReport, PathAnswer
from flows.release.settings import AnalysisSettings, UserPath, VerificationSettings
from flows.targets.base import GREEN, READY, RED, UPDATING, YELLOW, Environment, LockHolder, TrafficCounters
from tests.flows.fakes import FakeClock, FakeTarget, event, http_check_of, paths_check_of

PROD = "127.0.0.1:8080"
PREPROD = "127.0.0.1:8081"


@pytest.fixture
def config() -> PipelineConfig:
    return PipelineConfig()


def deploy_and_wait(
    target: FakeTarget,
    version: str,
    config: PipelineConfig,
    clock: FakeClock,
    check: HealthCheck | None = None,
    log: list[str] | None = None,
) -> tuple[Roles, Environment]:
    """Pick preprod, deploy `version` to it and wait until it is ready: the flow's first steps."""
    lines = log if log is not None else []
    roles = release.wait_for_preprod(target, config, log=lines.append, clock=clock)
    since = release.deploy(target, roles, version, config, lines.append)
    ready = release.wait_until_ready(
        target,
        roles.preprod.name,
        version,
        config,
        since=since,
        log=lines.append,
        clock=clock,
        check=check or http_check_of(target),
    )
    return roles, ready


def verify_address(
    target: FakeTarget,
    address: str,
    version: str,
    config: PipelineConfig,
    clock: FakeClock,
    check: HealthCheck | None = None,
) -> release.Verification:
    return release.verify(
        target.url(address), version, config, clock, check or http_check_of(target), paths_check_of(target)
    )


def swaps(target: FakeTarget) -> list[tuple[object, ...]]:
    return [call for call in target.calls if call[0] == "swap"]


# --- the whole release ---------------------------------------------------------------------


def test_full_release_moves_new_version_to_prod(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    roles, ready = deploy_and_wait(target, "v2", config, clock)
    assert roles.preprod.name == "node-2" and ready.version == "v2"

    release.require(verify_address(target, PREPROD, "v2", config, clock), "preprod")
    after = release.swap(target, config, clock=clock)
    verified = release.require(
        verify_address(target, PROD, "v2", config, clock), "prod", release.ProdRejected
    )

    assert after.prod.name == "node-2" and after.preprod.name == "node-1"
    assert verified.ok and verified.seen == "v2"
    assert target.serving(PROD).version == "v2"
    assert target.serving(PREPROD).version == "v1"
    assert target.calls == [("deploy", "node-2", "v2"), ("swap", "node-2", "node-1")]


def test_preprod_picked_by_address_not_by_name(config: PipelineConfig) -> None:
    target = FakeTarget.pair()
    target.swap("node-1", "node-2")
    assert release.find_roles(target, config).preprod.name == "node-1"


def test_preprod_already_on_the_version_is_not_deployed_again(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(prod_version="v1", preprod_version="v2"), FakeClock()
    lines: list[str] = []
    _, ready = deploy_and_wait(target, "v2", config, clock, log=lines)

    assert ready.name == "node-2" and ready.version == "v2"
    assert target.calls == []  # a re-run after a failed prod check: nothing deployed
    assert any("already runs v2" in line for line in lines)
    assert target.serving(PROD).version == "v1"


# --- preprod busy ------------------------------------------------------------------------


def test_busy_preprod_is_waited_for(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-2"] = replace(target.envs["node-2"], status=UPDATING)
    target.pending["node-2"] = ("v0", 3)
    roles = release.wait_for_preprod(target, config, clock=clock)
    assert roles.preprod.status == "Ready"
    assert clock.time == pytest.approx(3 * config.deadlines.poll_s)


def test_preprod_busy_past_deadline_fails(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-2"] = replace(target.envs["node-2"], status=UPDATING)
    with pytest.raises(release.PreprodBusy, match=r"still busy after 600s: node-2 .*status Updating"):
        release.wait_for_preprod(target, config, clock=clock)
    assert clock.time >= config.deadlines.preprod_free
    assert target.calls == []


# --- deploy and wait until ready -----------------------------------------------------------


def test_error_event_fails_the_deploy_and_leaves_prod(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.events_after_deploy = [event("node-2", "ERROR", "Failed to pull the image")]
    with pytest.raises(release.DeploymentFailed, match="Failed to pull the image") as failure:
        deploy_and_wait(target, "v2", config, clock)
    assert "prod was not touched" in str(failure.value)
    assert target.serving(PROD).version == "v1"
    assert swaps(target) == []


def test_events_before_the_deploy_are_ignored(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    old = replace(event("node-2", "ERROR", "an old failure"), time=datetime.now(UTC) - timedelta(hours=1))
    target.events_after_deploy = [old, event("node-2", "INFO", "deploying the new version")]
    lines: list[str] = []
    _, ready = deploy_and_wait(target, "v2", config, clock, log=lines)
    assert ready.version == "v2"
    assert not any("an old failure" in line for line in lines)
    assert sum("deploying the new version" in line for line in lines) == 1  # streamed once


@pytest.mark.parametrize("health", [RED, YELLOW])
def test_bad_health_fails_the_deploy(config: PipelineConfig, health: str) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = health
    with pytest.raises(release.DeploymentFailed, match=f"health {health}"):
        deploy_and_wait(target, "v2", config, clock)
    assert target.serving(PROD).version == "v1"
    assert swaps(target) == []


def test_yellow_accepted_when_configured() -> None:
    config = PipelineConfig(accepted_health=["Green", "Yellow"])
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = YELLOW
    _, ready = deploy_and_wait(target, "v2", config, clock)
    assert ready.health == YELLOW


def test_never_ready_hits_the_deadline_with_what_was_seen(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.deploy_polls = 10**9
    fractions: list[float] = []
    roles = release.find_roles(target, config)
    since = release.deploy(target, roles, "v2", config)
    with pytest.raises(release.NotReadyInTime, match=r"last seen: node-2 .*status Updating"):
        release.wait_until_ready(
            target,
            "node-2",
            "v2",
            config,
            since=since,
            clock=clock,
            check=http_check_of(target),
            progress=fractions.append,
        )
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert clock.time == pytest.approx(config.deadlines.ready)
    assert target.serving(PROD).version == "v1"


def test_ready_but_serving_another_version_keeps_waiting(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    config.deadlines.ready = 5
    with pytest.raises(release.NotReadyInTime, match="HTTP 503"):
        deploy_and_wait(target, "v2", config, clock, check=http_check_of(target, frozenset({"v2"})))
    assert target.serving(PROD).version == "v1"


def test_bad_health_within_the_grace_period_is_waited_out() -> None:
    config = PipelineConfig()
    config.deadlines.health_grace = 3
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = YELLOW
    since = release.deploy(target, release.find_roles(target, config), "v2", config)
    target.environments()
    target.environments()
    target.environments()  # the deploy has landed, health Yellow
    checks = 0

    def check(url: str) -> HealthReport:
        nonlocal checks
        checks += 1
        return HealthReport(url, 200, "v2")

    looks = 0
    original = target.environments

    def recovering() -> list[Environment]:
        nonlocal looks
        looks += 1
        if looks == 3:
            target.health_after_deploy = "Green"
            target.envs["node-2"] = replace(target.envs["node-2"], health="Green")
        return original()

    target.environments = recovering  # type: ignore[method-assign]
    env = release.wait_until_ready(target, "node-2", "v2", config, since=since, clock=clock, check=check)
    assert env.health == "Green" and checks == 1
    assert clock.time == pytest.approx(2 * config.deadlines.poll_s)


def test_bad_health_past_the_grace_period_fails() -> None:
    config = PipelineConfig(deadlines=Deadlines(health_grace=3))
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = RED
    with pytest.raises(release.DeploymentFailed, match="settled with health Red"):
        deploy_and_wait(target, "v2", config, clock)
    landed = config.deadlines.poll_s * target.deploy_polls  # when the bad health was first seen
    assert clock.time == pytest.approx(landed + 3)
    assert target.serving(PROD).version == "v1"


# --- verification ------------------------------------------------------------------------


def answering(*versions: str | None, then: str | None = None) -> tuple[HealthCheck, list[str]]:
    """A check answering `versions` in turn, then `then` forever; also returns the URLs asked."""
    asked: list[str] = []
    queue: Iterator[str | None] = iter(versions)

    def check(url: str) -> HealthReport:
        asked.append(url)
        version = next(queue, then)
        if version is None:
            return HealthReport(url, 503, None, error="HTTP 503")
        return HealthReport(url, 200, version)

    return check, asked


def all_paths_ok(url: str, paths: Sequence[UserPath]) -> list[PathAnswer]:
    return [PathAnswer(path, 200, 0.002) for path in paths]


def consistent(answers: int, verify_s: float = 60) -> PipelineConfig:
    return PipelineConfig(
        verification=VerificationSettings(consistent_answers=answers), deadlines=Deadlines(verify=verify_s)
    )


def test_verify_retries_until_the_version_appears_then_asks_for_consistent_answers() -> None:
    clock = FakeClock()
    check, asked = answering("v1", "v1", then="v2")
    result = release.verify("http://prod", "v2", consistent(3), clock, check, all_paths_ok)
    assert result.ok and result.seen == "v2"
    assert result.attempts == 2 + 1 + 3  # two old answers, the first new one, three agreeing
    assert len(asked) == result.attempts
    assert "4 consistent answers; every user path answered" in result.detail
    assert [answer.path.label() for answer in result.paths] == [
        "/ (text/html)",
        "/ (application/json)",
        "/health (application/json)",
    ]
    # before the new version answered: the poll interval (capped at 2 s); after: 0.2 s
    assert clock.time == pytest.approx(2 * 1.0 + 3 * release.AGREEING_INTERVAL_S)


def test_an_old_version_after_the_new_one_fails_the_verification_at_once() -> None:
    clock = FakeClock()
    check, asked = answering("v2", "v2", "v1", then="v2")
    result = release.verify("http://prod", "v2", consistent(5), clock, check, all_paths_ok)
    assert not result.ok and result.attempts == 3 and len(asked) == 3
    assert "after v2 answered, an answer showed v1" in result.detail
    assert "two versions, or a failing one, behind one address" in result.detail
    assert result.paths == ()  # the user paths are not asked once the answers disagree
    with pytest.raises(release.ProdRejected, match="prod does not serve v2 to users: after v2 answered"):
        release.require(result, "prod", release.ProdRejected)


def test_a_failing_answer_after_the_new_one_fails_the_verification() -> None:
    check, _ = answering("v2", None, then="v2")
    result = release.verify("http://prod", "v2", consistent(5), FakeClock(), check, all_paths_ok)
    assert not result.ok and "showed no version" in result.detail and "HTTP 503" in result.detail


def test_the_new_version_never_answering_fails_at_the_deadline_with_the_last_answer() -> None:
    clock = FakeClock()
    check, _ = answering(then="v1")
    result = release.verify("http://prod", "v2", consistent(2, verify_s=10), clock, check, all_paths_ok)
    assert not result.ok and result.seen == "v1"
    assert result.detail == "last answer: http://prod/health: HTTP 200, version v1"
    assert result.seconds >= 10 and clock.time >= 10


def test_too_few_agreeing_answers_in_time_fail_naming_how_many_agreed() -> None:
    clock = FakeClock()
    check, _ = answering("v1", then="v2")
    # the new version answers at 1 s; 0.2 s apart, only a few of the 50 more fit before 2 s
    result = release.verify("http://prod", "v2", consistent(50, verify_s=2), clock, check, all_paths_ok)
    assert not result.ok
    assert "of 50 answers agreed in time" in result.detail


def test_a_failing_user_path_fails_the_verification_and_is_named() -> None:
    check, _ = answering(then="v2")

    def html_page_broken(url: str, paths: Sequence[UserPath]) -> list[PathAnswer]:
        return [PathAnswer(path, 500 if path.accept == "text/html" else 200, 0.003) for path in paths]

    result = release.verify("http://preprod", "v2", consistent(2), FakeClock(), check, html_page_broken)
    assert not result.ok and result.seen == "v2"
    assert [answer.summary() for answer in result.failing_paths()] == ["/ (text/html): HTTP 500 in 3 ms"]
    assert "1 user path(s) failed" in result.detail
    assert "user paths: / (text/html): HTTP 500 in 3 ms" in result.summary()
    with pytest.raises(
        release.VerificationFailed, match=r"preprod does not serve v2 to users: user path / \(text/html\)"
    ):
        release.require(result, "preprod")


def test_a_path_without_an_answer_fails_the_verification() -> None:
    check, _ = answering(then="v2")

    def timing_out(url: str, paths: Sequence[UserPath]) -> list[PathAnswer]:
        return [PathAnswer(path, None, 5.0, error="timed out after 5s") for path in paths]

    result = release.verify("http://preprod", "v2", consistent(1), FakeClock(), check, timing_out)
    assert not result.ok and len(result.failing_paths()) == 3


def test_require_fails_unverified() -> None:
    bad = release.Verification("http://x", "v2", "v1", False, 3, 60.0, "saw v1")
    with pytest.raises(release.VerificationFailed, match="does not serve v2 to users: saw v1"):
        release.require(bad, "preprod")
    good = replace(bad, ok=True, seen="v2")
    assert release.require(good, "preprod") is good


# --- swap ----------------------------------------------------------------------------------


def test_swap_waits_until_both_environments_are_swappable(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-1"] = replace(target.envs["node-1"], status=UPDATING)  # prod busy
    target.pending["node-1"] = ("v1", 2)  # Ready again at the third look
    lines: list[str] = []

    after = release.swap(target, config, lines.append, clock)

    assert swaps(target) == [("swap", "node-2", "node-1")]
    assert after.prod.name == "node-2" and after.prod.address == PROD
    assert clock.time == pytest.approx(2 * config.deadlines.poll_s)
    assert sum("waiting for both environments to be swappable" in line for line in lines) == 2


def test_swap_never_swappable_fails_naming_the_state_and_never_swaps() -> None:
    config = PipelineConfig(deadlines=Deadlines(swap=30))
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-2"] = replace(target.envs["node-2"], status=UPDATING)

    with pytest.raises(ReleaseError, match="waited 30s before the swap") as failure:
        release.swap(target, config, clock=clock)

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
    after = release.swap(target, config, clock=clock)
    assert after.prod.name == "node-2" and after.prod.status == READY and after.preprod.status == READY
    assert clock.time == pytest.approx(config.deadlines.poll_s)


def test_swap_ends_the_canary_share_on_a_canary_target() -> None:
    config = PipelineConfig(traffic_steps=[10])
    target, clock = FakeTarget.pair(), FakeClock()
    after = release.swap(target, config, clock=clock)
    assert target.shares == [(after.prod.name, 0)]


# --- prod rejected: swap back --------------------------------------------------------------


def test_failed_prod_verification_swaps_back(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    roles, _ = deploy_and_wait(target, "v2", config, clock)
    release.require(verify_address(target, PREPROD, "v2", config, clock), "preprod")
    release.swap(target, config, clock=clock)
    prod_check = http_check_of(target, broken_versions=frozenset({"v2"}))
    verification = verify_address(target, PROD, "v2", config, clock, prod_check)

    with pytest.raises(release.ProdRejected) as rejected:
        release.require(verification, "prod", release.ProdRejected)
    with pytest.raises(release.SwappedBack, match="swapped back: prod is node-1") as ended:
        raise release.swap_back(target, roles, rejected.value, config, clock=clock)

    assert "prod does not serve v2 to users" in str(ended.value)  # the reason is kept
    assert target.serving(PROD).name == "node-1"
    assert target.serving(PROD).version == "v1"
    assert swaps(target) == [("swap", "node-2", "node-1"), ("swap", "node-1", "node-2")]


def test_a_failing_swap_back_says_a_person_must_act(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(prod_version="v1", preprod_version="v2"), FakeClock()
    before = release.find_roles(target, config)
    release.swap(target, config, clock=clock)
    target.fail_swap_after = 1
    with pytest.raises(release.SwapBackFailed, match="swapping back failed too") as failure:
        release.swap_back(target, before, release.ProdRejected("prod answered 503"), config, clock=clock)
    assert "prod answered 503" in str(failure.value) and "swap by hand" in str(failure.value)
    assert target.serving(PROD).name == "node-2"  # still the rejected one: a person must act


def test_a_run_stopped_after_the_swap_swaps_back_and_says_it_was_stopped(config: PipelineConfig) -> None:
    class Stopped(BaseException):
        """What a cancel or a kill raises in the flow: a signal, with no message."""

    target, clock = FakeTarget.pair(prod_version="v1", preprod_version="v2"), FakeClock()
    before = release.find_roles(target, config)
    release.swap(target, config, clock=clock)
    ended = release.swap_back(target, before, Stopped(), config, clock=clock)
    assert str(ended).startswith(
        "the run was stopped (Stopped: cancelled or killed); swapped back: prod is node-1"
    )
    assert target.serving(PROD).version == "v1"


def test_a_rejection_before_the_swap_happened_leaves_prod_and_ends_the_canary() -> None:
    config = PipelineConfig(traffic_steps=[10])
    target, clock = FakeTarget.pair(prod_version="v1", preprod_version="v2"), FakeClock()
    before = release.find_roles(target, config)
    ended = release.swap_back(target, before, ReleaseError("the swap timed out"), config, clock=clock)
    assert "the swap had not happened: prod is node-1" in str(ended)
    assert not isinstance(ended, release.SwappedBack)
    assert swaps(target) == []  # prod was never touched: nothing to swap back
    assert target.shares == [("node-2", 0)]  # the canary share ends


# --- canary: shift traffic -----------------------------------------------------------------


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
    verdicts = release.shift_traffic(target, release.find_roles(target, config), None, config, clock=clock)
    assert [share for share, _ in verdicts] == [10, 50]  # 100 % is the swap itself
    assert all(verdict.passed and verdict.conclusive for _, verdict in verdicts)
    assert target.shares == [("node-2", 10), ("node-2", 50)]
    assert swaps(target) == [] and target.serving(PROD).name == "node-1"


def test_a_failing_canary_step_aborts_back_to_zero_percent() -> None:
    config = canary_config([10, 50])
    target, clock = FakeTarget.pair(), FakeClock()
    canary_traffic(target, failing=True)
    lines: list[str] = []
    with pytest.raises(release.AnalysisFailed, match="canary at 10 % failed the traffic analysis") as failure:
        release.shift_traffic(
            target, release.find_roles(target, config), None, config, log=lines.append, clock=clock
        )
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
        release.shift_traffic(target, release.find_roles(target, config), None, config, clock=clock)
    assert target.shares == [("node-2", 10), ("node-2", 0)]


def test_no_steps_is_no_canary_and_a_target_without_canary_refuses_steps() -> None:
    target = FakeTarget.pair()
    roles = release.find_roles(target, PipelineConfig())
    assert release.shift_traffic(target, roles, None, PipelineConfig()) == []
    assert release.shift_traffic(target, roles, None, PipelineConfig(traffic_steps=[100])) == []
    target.canary = False
    with pytest.raises(ReleaseError, match="cannot: leave traffic_steps empty"):
        release.shift_traffic(target, roles, None, canary_config([10]))
    assert target.shares == []


# --- analysis of real traffic ----------------------------------------------------------------


def test_analyse_fails_broken_prod_early_and_passes_a_good_one() -> None:
    config = PipelineConfig(analysis=AnalysisSettings(window=10.0, min_requests=20))
    target, clock = FakeTarget.pair(prod_version="v2"), FakeClock()
    target.broken_versions = frozenset({"v2"})
    with pytest.raises(release.AnalysisFailed, match="the new prod failed the traffic analysis") as failure:
        release.analyse(target, "node-1", None, config, "the new prod", clock=clock)
    assert failure.value.verdict.figures.server_errors == 50
    assert clock.time < 10

    target.broken_versions = frozenset()
    clock = FakeClock()
    verdict = release.analyse(target, "node-1", None, config, "the new prod", clock=clock)
    assert verdict.passed and verdict.conclusive and clock.time >= 10


def test_analyse_from_a_reading_at_the_swap_counts_since_then_and_ends_that_much_sooner() -> None:
    config = PipelineConfig(analysis=AnalysisSettings(window=10.0, min_requests=20))
    target, clock = FakeTarget.pair(prod_version="v2"), FakeClock()
    at_swap = (target.traffic("node-1"), clock.now())
    clock.sleep(3.0)  # the swap and the prod verification
    verdict = release.analyse(target, "node-1", None, config, "the new prod", since=at_swap, clock=clock)
    assert verdict.passed and verdict.conclusive
    assert 10 <= clock.time < 10 + 1  # 10 s from the swap, not from the analysis' start
    assert verdict.figures.seconds >= 10
    looks = verdict.figures.requests // target.requests_per_look
    assert verdict.figures.requests == looks * target.requests_per_look and looks >= 2


# --- the manual swap ---------------------------------------------------------------------


def test_manual_swap_takes_the_lock_around_the_swap(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(prod_version="v2", preprod_version="v1"), FakeClock()
    before, after = release.manual_swap(target, config, run="cli", clock=clock)

    assert target.calls == [("lock", "manual swap"), ("swap", "node-2", "node-1"), ("unlock", "manual swap")]
    assert [(who.operation, who.run) for who in target.held_by] == [("manual swap", "cli")]
    assert before.prod.name == "node-1" and after.prod.name == "node-2"
    assert target.serving(PROD).version == "v1"  # the rollback: the previous version serves prod


def test_manual_swap_on_a_locked_target_does_not_swap(config: PipelineConfig) -> None:
    target = FakeTarget.pair()
    target.lock_holder = LockHolder("release v9", "run-9", 99, "host", "2026-12-01T00:00:00+00:00")
    with pytest.raises(TargetError, match="locked by release v9"):
        release.manual_swap(target, config, clock=FakeClock())
    assert target.calls == [] and target.serving(PROD).name == "node-1"


def test_manual_swap_releases_the_lock_when_the_swap_fails(config: PipelineConfig) -> None:
    target = FakeTarget.pair()
    target.fail_swap_after = 0
    with pytest.raises(TargetError, match="refused the swap"):
        release.manual_swap(target, config, clock=FakeClock())
    assert target.calls == [("lock", "manual swap"), ("unlock", "manual swap")]
    assert target.envs["node-1"].health == GREEN and target.serving(PROD).name == "node-1"


def test_a_manual_swap_onto_an_empty_preprod_is_refused(config: PipelineConfig) -> None:
    target = FakeTarget.pair(prod_version="v1", preprod_version=None)
    with pytest.raises(ReleaseError, match=r"preprod .* runs nothing"):
        release.manual_swap(target, config, clock=FakeClock())
    assert swaps(target) == [] and target.serving(PROD).version == "v1"

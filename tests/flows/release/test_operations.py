"""The release steps over a fake target: each scenario asserts what happened to prod."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flows.config import PipelineConfig
from flows.release import operations as release
from flows.release.health import HealthReport
from flows.targets.base import RED, UPDATING, YELLOW, Environment
from tests.flows.fakes import FakeClock, FakeTarget, event, http_check_of


@pytest.fixture
def config() -> PipelineConfig:
    return PipelineConfig()


def test_full_release_moves_new_version_to_prod(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    check = http_check_of(target)
    roles = release.wait_for_preprod(target, config, clock=clock)
    assert roles.preprod.name == "node-2"
    release.deploy_and_wait(target, roles.preprod.name, "v2", config, clock=clock, check=check)
    after = release.swap_and_verify(target, roles, "v2", config, clock=clock, check=check)
    assert after.prod.name == "node-2"
    assert target.serving("127.0.0.1:8080").version == "v2"
    assert target.serving("127.0.0.1:8081").version == "v1"
    assert target.calls == [("deploy", "node-2", "v2"), ("swap", "node-2", "node-1")]


def test_preprod_picked_by_address_not_by_name(config: PipelineConfig) -> None:
    target = FakeTarget.pair()
    target.swap("node-1", "node-2")
    assert release.find_roles(target, config).preprod.name == "node-1"


def test_busy_preprod_is_waited_for(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-2"] = replace(target.envs["node-2"], status=UPDATING)
    target.pending["node-2"] = ("v0", 3)
    roles = release.wait_for_preprod(target, config, clock=clock)
    assert roles.preprod.status == "Ready"
    assert clock.time == pytest.approx(3 * config.deadlines.poll_interval)


def test_preprod_busy_past_deadline_fails(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-2"] = replace(target.envs["node-2"], status=UPDATING)
    with pytest.raises(release.PreprodBusy, match="still busy"):
        release.wait_for_preprod(target, config, clock=clock)
    assert clock.time >= config.deadlines.preprod_free


def test_error_event_fails_the_deploy_and_leaves_prod(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.events_after_deploy = [event("node-2", "ERROR", "Failed to pull the image")]
    with pytest.raises(release.DeploymentFailed, match="Failed to pull the image"):
        release.deploy_and_wait(target, "node-2", "v2", config, clock=clock, check=http_check_of(target))
    assert target.serving("127.0.0.1:8080").version == "v1"
    assert not any(call[0] == "swap" for call in target.calls)


def test_events_before_the_deploy_are_ignored(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    old = replace(event("node-2", "ERROR", "an old failure"), time=datetime.now(UTC) - timedelta(hours=1))
    target.events_after_deploy = [old]
    lines: list[str] = []
    release.deploy_and_wait(
        target, "node-2", "v2", config, log=lines.append, clock=clock, check=http_check_of(target)
    )
    assert not any("an old failure" in line for line in lines)


@pytest.mark.parametrize("health", [RED, YELLOW])
def test_bad_health_fails_the_deploy(config: PipelineConfig, health: str) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = health
    with pytest.raises(release.DeploymentFailed, match=f"health {health}"):
        release.deploy_and_wait(target, "node-2", "v2", config, clock=clock, check=http_check_of(target))
    assert target.serving("127.0.0.1:8080").version == "v1"


def test_yellow_accepted_when_configured() -> None:
    config = PipelineConfig(accepted_health=["Green", "Yellow"])
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = YELLOW
    env = release.deploy_and_wait(target, "node-2", "v2", config, clock=clock, check=http_check_of(target))
    assert env.health == YELLOW


def test_never_ready_hits_the_deadline_with_what_was_seen(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.deploy_polls = 10**9
    fractions: list[float] = []
    since = release.deploy(target, "node-2", "v2")
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
    assert target.serving("127.0.0.1:8080").version == "v1"


def test_ready_but_serving_another_version_keeps_waiting(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    config.deadlines.ready = 5
    with pytest.raises(release.NotReadyInTime, match="HTTP 503"):
        release.deploy_and_wait(
            target,
            "node-2",
            "v2",
            config,
            clock=clock,
            check=http_check_of(target, broken_versions=frozenset({"v2"})),
        )


def test_failed_prod_verification_swaps_back(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    roles = release.find_roles(target, config)
    release.deploy_and_wait(target, "node-2", "v2", config, clock=clock, check=http_check_of(target))
    prod_check = http_check_of(target, broken_versions=frozenset({"v2"}))
    with pytest.raises(release.SwappedBack, match="swapped back: prod is node-1"):
        release.swap_and_verify(target, roles, "v2", config, clock=clock, check=prod_check)
    assert target.serving("127.0.0.1:8080").name == "node-1"
    assert target.serving("127.0.0.1:8080").version == "v1"
    assert [c for c in target.calls if c[0] == "swap"] == [
        ("swap", "node-2", "node-1"),
        ("swap", "node-1", "node-2"),
    ]


def test_verify_retries_until_the_version_appears() -> None:
    clock = FakeClock()
    answers = iter(["v1", "v1", "v2"])

    def check(url: str) -> HealthReport:
        return HealthReport(url, 200, next(answers))

    result = release.verify("http://prod", "v2", 30, clock, check)
    assert result.ok and result.attempts == 3


def test_require_fails_unverified() -> None:
    bad = release.Verification("http://x", "v2", "v1", False, 3, 60.0, "saw v1")
    with pytest.raises(release.VerificationFailed, match="does not serve v2"):
        release.require(bad, "preprod")


def test_bad_health_within_the_grace_period_is_waited_out() -> None:
    config = PipelineConfig()
    config.deadlines.health_grace = 3
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = YELLOW
    since = release.deploy(target, "node-2", "v2")
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

"""Preprod's waits over a fake target: free of other operations, deployed, ready with the version."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flows.config import Deadlines, PipelineConfig
from flows.release.errors import DeploymentFailed, NotReadyInTime, PreprodBusy, ProdRejected
from flows.release.facts import find_roles
from flows.release.health import HealthReport
from flows.release.swap import swap
from flows.release.verify import require
from flows.release.waits import deploy, wait_for_preprod, wait_until_ready
from flows.targets.base import RED, UPDATING, YELLOW, Environment
from tests.flows.fakes import FakeClock, FakeTarget, event, http_check_of
from tests.flows.release.support import PREPROD, PROD, deploy_and_wait, swaps, verify_address


def test_full_release_moves_new_version_to_prod(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    roles, ready = deploy_and_wait(target, "v2", config, clock)
    assert roles.preprod.name == "node-2" and ready.version == "v2"

    require(verify_address(target, PREPROD, "v2", config, clock), "preprod")
    after = swap(target, config, clock=clock)
    verified = require(verify_address(target, PROD, "v2", config, clock), "prod", ProdRejected)

    assert after.prod.name == "node-2" and after.preprod.name == "node-1"
    assert verified.ok and verified.seen == "v2"
    assert target.serving(PROD).version == "v2"
    assert target.serving(PREPROD).version == "v1"
    assert target.calls == [("deploy", "node-2", "v2"), ("swap", "node-2", "node-1")]


def test_preprod_picked_by_address_not_by_name(config: PipelineConfig) -> None:
    target = FakeTarget.pair()
    target.swap("node-1", "node-2")
    assert find_roles(target, config).preprod.name == "node-1"


def test_preprod_already_on_the_version_is_not_deployed_again(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(prod_version="v1", preprod_version="v2"), FakeClock()
    lines: list[str] = []
    _, ready = deploy_and_wait(target, "v2", config, clock, log=lines)

    assert ready.name == "node-2" and ready.version == "v2"
    assert target.calls == []  # a re-run after a failed prod check: nothing deployed
    assert any("already runs v2" in line for line in lines)
    assert target.serving(PROD).version == "v1"


def test_busy_preprod_is_waited_for(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-2"] = replace(target.envs["node-2"], status=UPDATING)
    target.pending["node-2"] = ("v0", 3)
    roles = wait_for_preprod(target, config, clock=clock)
    assert roles.preprod.status == "Ready"
    assert clock.time == pytest.approx(3 * config.deadlines.poll_s)


def test_preprod_busy_past_deadline_fails(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.envs["node-2"] = replace(target.envs["node-2"], status=UPDATING)
    with pytest.raises(PreprodBusy, match=r"still busy after 600s: node-2 .*status Updating"):
        wait_for_preprod(target, config, clock=clock)
    assert clock.time >= config.deadlines.preprod_free
    assert target.calls == []


def test_error_event_fails_the_deploy_and_leaves_prod(config: PipelineConfig) -> None:
    target, clock = FakeTarget.pair(), FakeClock()
    target.events_after_deploy = [event("node-2", "ERROR", "Failed to pull the image")]
    with pytest.raises(DeploymentFailed, match="Failed to pull the image") as failure:
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
    with pytest.raises(DeploymentFailed, match=f"health {health}"):
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
    roles = find_roles(target, config)
    since = deploy(target, roles, "v2", config)
    with pytest.raises(NotReadyInTime, match=r"last seen: node-2 .*status Updating"):
        wait_until_ready(
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
    with pytest.raises(NotReadyInTime, match="HTTP 503"):
        deploy_and_wait(target, "v2", config, clock, check=http_check_of(target, frozenset({"v2"})))
    assert target.serving(PROD).version == "v1"


def test_bad_health_within_the_grace_period_is_waited_out() -> None:
    config = PipelineConfig()
    config.deadlines.health_grace = 3
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = YELLOW
    since = deploy(target, find_roles(target, config), "v2", config)
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
    env = wait_until_ready(target, "node-2", "v2", config, since=since, clock=clock, check=check)
    assert env.health == "Green" and checks == 1
    assert clock.time == pytest.approx(2 * config.deadlines.poll_s)


def test_bad_health_past_the_grace_period_fails() -> None:
    config = PipelineConfig(deadlines=Deadlines(health_grace=3))
    target, clock = FakeTarget.pair(), FakeClock()
    target.health_after_deploy = RED
    with pytest.raises(DeploymentFailed, match="settled with health Red"):
        deploy_and_wait(target, "v2", config, clock)
    landed = config.deadlines.poll_s * target.deploy_polls  # when the bad health was first seen
    assert clock.time == pytest.approx(landed + 3)
    assert target.serving(PROD).version == "v1"

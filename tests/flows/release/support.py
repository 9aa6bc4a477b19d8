"""What the release stage's tests share: the addresses, the first steps of a release, verifying an address."""

from __future__ import annotations

from flows.config import PipelineConfig
from flows.release.decisions import Roles
from flows.release.health import HealthCheck
from flows.release.verify import Verification, verify
from flows.release.waits import deploy, wait_for_preprod, wait_until_ready
from flows.targets.base import Environment
from tests.flows.fakes import FakeClock, FakeTarget, http_check_of, paths_check_of

PROD = "127.0.0.1:8080"
PREPROD = "127.0.0.1:8081"


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
    roles = wait_for_preprod(target, config, log=lines.append, clock=clock)
    since = deploy(target, roles, version, config, lines.append)
    ready = wait_until_ready(
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
) -> Verification:
    return verify(
        target.url(address), version, config, clock, check or http_check_of(target), paths_check_of(target)
    )


def swaps(target: FakeTarget) -> list[tuple[object, ...]]:
    return [call for call in target.calls if call[0] == "swap"]

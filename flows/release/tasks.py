"""Steps 6-12 as Prefect tasks: release bundle, pick preprod, deploy, wait, verify, swap, verify prod.

Thin wrappers over `flows.release.operations` (target-agnostic, tested with fakes): each task adds its
name in the UI, its logs and, for the wait, a progress artifact. None is cached (they act on
live environments); only the waits retry internally, up to their deadlines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from flows.config import PipelineConfig
from flows.image.bundle import load_dockerrun_template, render_dockerrun
from flows.release import operations as release
from flows.release.decisions import Readiness, Roles, describe, readiness
from flows.release.health import HealthCheck, fetch_health
from flows.release.operations import Verification
from flows.targets.base import READY, Target

# The HTTP check used to verify prod after the swap. A module attribute so that fault
# tests can make prod verification fail for real and watch the pipeline swap back.
prod_health_check: HealthCheck = fetch_health


def _log() -> release.Log:
    return get_run_logger().info


@task(name="release bundle", cache_policy=NO_CACHE, retries=0)
def release_bundle(target: Target, source_dir: str, image_ref: str, version: str) -> dict[str, Any]:
    """Step 6: `Dockerrun.aws.json` rendered with the pushed image, registered as a version."""
    logger = get_run_logger()
    bundle = render_dockerrun(load_dockerrun_template(Path(source_dir)), image_ref)
    target.register_version(version, bundle)
    logger.info("registered %s on %s with image %s", version, target.name, bundle["Image"]["Name"])
    return bundle


@task(name="pick preprod", cache_policy=NO_CACHE, retries=0)
def pick_preprod(target: Target, config: PipelineConfig) -> Roles:
    """Step 7: prod and preprod by address; waits (up to its deadline) while preprod is busy."""
    roles = release.wait_for_preprod(target, config, _log())
    get_run_logger().info("prod: %s; preprod: %s", describe(roles.prod), describe(roles.preprod))
    return roles


def preprod_already_on(roles: Roles, version: str, config: PipelineConfig) -> bool:
    """Whether preprod already runs `version` healthily (a re-run after a failed prod check)."""
    return readiness(roles.preprod, version, config.accepted_health) is Readiness.READY


@task(name="deploy", cache_policy=NO_CACHE, retries=0)
def deploy(target: Target, roles: Roles, version: str, config: PipelineConfig) -> datetime:
    """Step 8: start deploying to preprod; returns the start time (for the target's events)."""
    logger = get_run_logger()
    if preprod_already_on(roles, version, config):
        logger.info(
            "preprod %s already runs %s and is healthy: not deploying again", roles.preprod.name, version
        )
        return datetime.now(UTC)
    logger.info("deploying %s to preprod %s", version, roles.preprod.name)
    return release.deploy(target, roles.preprod.name, version)


@task(name="wait until ready", cache_policy=NO_CACHE, retries=0)
def wait_until_ready(
    target: Target, roles: Roles, version: str, config: PipelineConfig, since: datetime
) -> None:
    """Step 9: preprod Ready, health accepted and serving exactly `version` on /health."""
    artifact: UUID | None = None
    last = -1.0

    def progress(fraction: float) -> None:
        nonlocal artifact, last
        percent = round(fraction * 100, 1)
        if percent == last:
            return
        last = percent
        description = f"waiting for {roles.preprod.name} to be ready with {version}"
        if artifact is None:
            created = create_progress_artifact(percent, key="wait-until-ready", description=description)
            artifact = created if isinstance(created, UUID) else None
        else:
            update_progress_artifact(artifact, percent)

    release.wait_until_ready(
        target, roles.preprod.name, version, config, since=since, log=_log(), progress=progress
    )


@task(name="verify preprod", cache_policy=NO_CACHE, retries=0)
def verify_preprod(target: Target, version: str, config: PipelineConfig) -> Verification:
    """Step 10: the preprod address serves `version`."""
    result = release.verify(
        target.url(config.preprod_address),
        version,
        config.deadlines.verify,
        interval=config.deadlines.poll_s,
    )
    get_run_logger().info("preprod: %s", result.summary())
    return release.require(result, "preprod")


@task(name="swap", cache_policy=NO_CACHE, retries=0)
def swap(target: Target, roles: Roles, config: PipelineConfig) -> Roles:
    """Step 11: exchange the prod and preprod addresses; waits until both settle."""
    after = release.swap(target, roles, config, _log())
    get_run_logger().info("prod is now %s", describe(after.prod))
    return after


@task(name="verify prod", cache_policy=NO_CACHE, retries=0)
def verify_prod(target: Target, version: str, config: PipelineConfig) -> Verification:
    """Step 12: the prod address serves `version` (judged by the flow, which swaps back if not)."""
    result = release.verify(
        target.url(config.prod_address),
        version,
        config.deadlines.verify,
        check=prod_health_check,
        interval=config.deadlines.poll_s,
    )
    (get_run_logger().info if result.ok else get_run_logger().error)("prod: %s", result.summary())
    return result


@task(name="swap back", cache_policy=NO_CACHE, retries=0)
def swap_back(target: Target, after: Roles, config: PipelineConfig) -> Roles:
    """Undo the swap: the previous prod (still on the old version) takes the prod address again."""
    restored = release.swap(target, after, config, _log())
    get_run_logger().warning("swapped back: prod is %s again", describe(restored.prod))
    return restored


def prod_serving(roles: Roles) -> bool:
    """Whether prod serves something a user could lose during the release (probe it then)."""
    return roles.prod.version is not None and roles.prod.status == READY

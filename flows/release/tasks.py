"""The release steps as Prefect tasks, one per step, named from `flows.steps`.

Thin: each task calls one operation of the release stage (`facts`, `recovery`, `lock`, `waits`,
`verify`, `analyse`, `swap`) with the run's logger, and adds what the UI shows (its name and
state, a progress artifact while waiting). None is cached (they act on live environments) and none
retries: the operations wait up to their deadlines themselves. `take_lock` enters the target's
lock into the flow's block, which releases it; `watching_prod` holds the probe for a stretch.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows import steps
from flows.config import PipelineConfig
from flows.image.bundle import load_dockerrun_template, render_dockerrun
from flows.release import analyse, facts, recovery, waits
from flows.release import swap as swapping
from flows.release.analysis import Verdict
from flows.release.decisions import Roles, describe, release_operation
from flows.release.errors import AnalysisFailed, ProdRejected, ReleaseRejected
from flows.release.health import HealthCheck, PathCheck, fetch_health, fetch_paths
from flows.release.lock import holder, locked
from flows.release.ready_progress import ReadyProgress
from flows.release.verify import Verification, require, verify
from flows.release.watch import ProdWatch
from flows.targets.base import Target
from flows.targets.factory import make_target

# The HTTP checks of the verifications. Module attributes, so that tests can answer for a fake
# target, and fault tests can make prod verification fail for real and watch the swap back.
health_check: HealthCheck = fetch_health
paths_check: PathCheck = fetch_paths
prod_health_check: HealthCheck | None = None  # None: `health_check`

LIVE: dict[str, Any] = {"cache_policy": NO_CACHE, "retries": 0}


def _log(line: str) -> None:
    get_run_logger().info(line)


@task(name=steps.PREFLIGHT, **LIVE)
def preflight(target: str, config: PipelineConfig) -> Target:
    """The target, checked before anything is built: its environments, addresses, credentials."""
    where = make_target(target, config)
    facts.preflight(where)
    get_run_logger().info("the %s target is ready for a release", where.name)
    return where


def _run_id() -> str:
    return str(flow_run.id or "-")


@task(name=steps.RECOVER, **LIVE)
def recover(target: Target, config: PipelineConfig) -> str:
    """Before anything is built, under the target's lock: bring the target back to its record and
    swap back a swap a dead release left unverified, so prod is safe however long the build takes."""
    done = recovery.recover_target(target, holder(recovery.RECOVERY, _run_id()), config, _log)
    get_run_logger().info(done)
    return done


@task(name=steps.LOCK_TARGET, **LIVE)
def take_lock(held: ExitStack, target: Target, version: str, config: PipelineConfig) -> str:
    """Wait for the target's lock (logging who holds it) and take it into `held`, the flow's block
    that releases it. A holder that died since the recover step is recovered from first."""
    who = holder(release_operation(version), _run_id())
    interrupted = held.enter_context(locked(target, who, config, _log))
    if interrupted is None:
        return f"holding the {target.name} target's lock"
    done = recovery.recover(target, interrupted, config, _log)
    get_run_logger().info(done)
    return done


@task(name=steps.RELEASE_BUNDLE, **LIVE)
def release_bundle(target: Target, source_dir: str, image_ref: str, version: str) -> dict[str, Any]:
    """`Dockerrun.aws.json` rendered with the pushed image, registered as a version."""
    bundle = render_dockerrun(load_dockerrun_template(Path(source_dir)), image_ref)
    target.register_version(version, bundle)
    get_run_logger().info("registered %s on %s with image %s", version, target.name, bundle["Image"]["Name"])
    return bundle


@task(name=steps.PICK_PREPROD, **LIVE)
def pick_preprod(target: Target, config: PipelineConfig) -> Roles:
    """Prod and preprod by address; waits (up to its deadline) while preprod is busy."""
    roles = waits.wait_for_preprod(target, config, _log)
    get_run_logger().info("prod: %s; preprod: %s", describe(roles.prod), describe(roles.preprod))
    return roles


@task(name=steps.DEPLOY, **LIVE)
def deploy(target: Target, roles: Roles, version: str, config: PipelineConfig) -> datetime:
    """Start deploying to preprod; returns the start time (for the target's events)."""
    return waits.deploy(target, roles, version, config, _log)


@task(name=steps.WAIT_UNTIL_READY, **LIVE)
def wait_until_ready(
    target: Target, roles: Roles, version: str, config: PipelineConfig, since: datetime
) -> None:
    """Preprod Ready, health accepted and serving exactly `version` on /health; the progress artifact
    follows the wait and says how it ended."""
    shown = ReadyProgress(roles.preprod.name, version, create_progress_artifact, update_progress_artifact)
    started = time.monotonic()
    try:
        waits.wait_until_ready(
            target,
            roles.preprod.name,
            version,
            config,
            since=since,
            log=_log,
            check=health_check,
            progress=shown.update,
        )
    except BaseException as error:
        shown.stopped(error)
        raise
    shown.ready(time.monotonic() - started)


@task(name=steps.VERIFY_PREPROD, **LIVE)
def verify_preprod(target: Target, version: str, config: PipelineConfig) -> Verification:
    """The preprod address serves `version` consistently and every user path answers."""
    result = verify(
        target.url(config.preprod_address), version, config, check=health_check, paths_check=paths_check
    )
    get_run_logger().info("preprod: %s", result.summary())
    return require(result, "preprod")


@task(name=steps.APPROVAL, **LIVE)
def approval(roles: Roles, version: str, required: bool) -> str:
    """A person's go before the swap, when the release requires it (else a pass-through)."""
    if not required:
        return "not required"
    from flows.release.approval import await_approval

    decision = await_approval(version, describe(roles.prod), describe(roles.preprod), APPROVAL_WAIT_S)
    if not decision.approved:
        raise ReleaseRejected(
            f"{version} was not approved ({decision.reason}); preprod ({roles.preprod.name}) "
            f"runs it, prod ({describe(roles.prod)}) was not touched"
        )
    return decision.reason


APPROVAL_WAIT_S = 24 * 3600.0  # an unanswered approval ends the run, prod unchanged


@task(name=steps.CANARY, **LIVE)
def canary(target: Target, roles: Roles, config: PipelineConfig, watch: ProdWatch) -> str:
    """Canary steps: each share of prod traffic on the new version, analysed; an abort returns to 0 %."""
    if not config.traffic_steps:
        return "no traffic steps configured"
    try:
        verdicts = analyse.shift_traffic(target, roles, watch.measure_previous(), config, log=_log)
    except AnalysisFailed as failed:
        watch.add_window(f"canary {failed.share} %", failed.share, failed.verdict)
        raise
    for share, verdict in verdicts:
        watch.add_window(f"canary {share} %", share, verdict)
    return ", ".join(f"{share} %: {verdict.summary()}" for share, verdict in verdicts)


@task(name=steps.SWAP, **LIVE)
def swap(target: Target, config: PipelineConfig, watch: ProdWatch) -> Roles:
    """Measure the previous prod, exchange the prod and preprod addresses, wait until both settle."""
    previous = watch.measure_previous()
    if previous is not None:
        get_run_logger().info("the previous prod before the swap: %s", previous.summary())
    watch.mark_swap_start()
    try:
        after = swapping.swap(target, config, _log)
    finally:
        watch.mark_swap_end()
    get_run_logger().info("prod is now %s", describe(after.prod))
    return after


@task(name=steps.VERIFY_PROD, **LIVE)
def verify_prod(target: Target, version: str, config: PipelineConfig) -> Verification:
    """The prod address serves `version` consistently on every user path; else the flow swaps back."""
    check = prod_health_check or health_check
    result = verify(target.url(config.prod_address), version, config, check=check, paths_check=paths_check)
    (get_run_logger().info if result.ok else get_run_logger().error)("prod: %s", result.summary())
    return require(result, "prod", ProdRejected)


@task(name=steps.ANALYSE_TRAFFIC, **LIVE)
def analyse_traffic(target: Target, after: Roles, config: PipelineConfig, watch: ProdWatch) -> Verdict:
    """The new prod's real traffic over the analysis window from the swap, against thresholds and the
    previous prod."""
    try:
        verdict = analyse.analyse(
            target,
            after.prod.name,
            watch.previous,
            config,
            "the new prod",
            since=watch.swap_reading,
            log=_log,
        )
    except AnalysisFailed as failed:
        watch.add_window("after the swap", 100, failed.verdict)
        raise
    watch.add_window("after the swap", 100, verdict)
    return verdict


@task(name=steps.SWAP_BACK, **LIVE)
def swap_back(target: Target, before: Roles, rejected: BaseException, config: PipelineConfig) -> NoReturn:
    """The new prod was rejected or the run interrupted: the previous prod takes prod again.

    Raises the error that ends the run: `SwappedBack` (the previous prod serves again),
    `StoppedBeforeSwap` (the swap had not happened: prod untouched), or `SwapBackFailed` (a
    person must act). The step's note in the report says which.
    """
    swapping.swap_back(target, before, rejected, config, _log)

"""The delivery pipeline as one Prefect flow: checkout to verified prod, one task per step.

checkout -> unit tests -> build image -> smoke test -> push -> release bundle -> pick preprod
-> deploy -> wait until ready -> verify preprod -> [approval] -> swap -> verify prod
(-> swap back and fail, if prod does not verify).

Re-runs: checkout is fresh every run; unit tests, build, smoke test and push are cached by
what they depend on, so a re-run (or a retried run) of a commit starts where the work
changes. Deploying the version prod already serves is a quick success.
One run per application at a time: a global concurrency limit named after the application;
a second run waits for the slot (up to `RUN_SLOT_WAIT_S`), it does not fail.
Zero downtime: while deploy and swap run, a probe sends traffic to prod; its artifact shows
p50/p99 before/during/after the swap. Any failed probe request is a VIOLATION: the artifact
says so and the run fails (after the release itself completed: prod keeps the new version,
which did verify), so a broken zero-downtime promise never goes unnoticed.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run

from flows.config import PipelineConfig
from flows.image import tasks as image_steps
from flows.keys import concurrency_name, initial_run_name, run_name
from flows.release import operations as release
from flows.release import tasks as release_steps
from flows.release.decisions import already_live, describe
from flows.release.probe import Probe
from flows.release.probe_stats import ProbeSummary, buckets
from flows.report.artifacts import RunReport, StepRecord, publish_probe, publish_run
from flows.source import tasks as source_steps
from flows.targets.base import Target
from flows.targets.factory import make_target

RUN_SLOT_WAIT_S = 3600.0
APPROVAL_WAIT_S = 24 * 3600.0  # an unanswered approval ends the run, prod unchanged
PROBE_THREADS = 8
PROBE_PAUSE_S = 0.02  # per thread between requests: ~8 x 50 req/s at most, light on 2 cores
PROBE_MAX_REQUESTS = 100_000
PROBE_TAIL_S = 1.5  # probing goes on this long after prod verified (past the swap margin)
PROBE_LEAD_S = 1.5  # with approval, probing starts this long before the swap

P = ParamSpec("P")
R = TypeVar("R")


class ZeroDowntimeViolation(RuntimeError):
    """Requests to prod failed while the release deployed or swapped."""


class ReleaseRejected(RuntimeError):
    """The release was not approved; preprod runs the new version, prod was not touched."""


def _initial_name() -> str:
    parameters = flow_run.parameters
    repo, ref = str(parameters.get("repo", ".")), str(parameters.get("ref", "HEAD"))
    config = parameters.get("config")
    application = config.application if isinstance(config, PipelineConfig) else "deliverypipeline"
    try:
        commit = source_steps.resolve_local(repo, ref)
    except source_steps.CheckoutError:
        commit = None
    return initial_run_name(application, ref, commit)


def _rename_run(name: str) -> None:
    run_id = flow_run.id
    if run_id is None:
        return
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(run_id, name=name)
    except Exception as exc:  # a cosmetic failure must not fail a release
        get_run_logger().warning("could not rename the run to %s: %s", name, exc)


def ensure_concurrency_limit(name: str, limit: int = 1) -> None:
    """Create the global concurrency limit `name` unless it exists (racing creators are fine)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))


class Steps:
    """Runs tasks, timing each and recording its final state for the run report."""

    def __init__(self, report: RunReport) -> None:
        self.report = report

    def run(self, name: str, task: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Call a task, record name/state/duration, return its result (raising its exception)."""
        started = time.monotonic()
        call: Callable[..., Any] = task
        state: Any = call(*args, return_state=True, **kwargs)
        seconds = time.monotonic() - started
        note = "reused from an earlier run" if state.name == "Cached" else ""
        if state.is_failed() or state.is_crashed():
            note = (state.message or "")[:160]
        self.report.steps.append(StepRecord(name, str(state.name), seconds, note))
        result: R = state.result()
        return result

    def skip(self, name: str, note: str) -> None:
        """Record a step that did not need to run."""
        self.report.steps.append(StepRecord(name, "Skipped", 0.0, note))


def _probe_for(target: Target, config: PipelineConfig) -> Probe:
    return Probe(
        target.url(config.prod_address),
        threads=PROBE_THREADS,
        pause_s=PROBE_PAUSE_S,
        max_requests=PROBE_MAX_REQUESTS,
        max_seconds=config.deadlines.ready + config.deadlines.swap + 2 * config.deadlines.verify,
    )


def _finish_probe(probe: Probe | None, report: RunReport) -> ProbeSummary | None:
    if probe is None:
        return None
    summary = probe.stop()
    report.probe = summary
    publish_probe(summary, buckets(probe.samples(), summary.swap))
    return summary


def _release(
    target: Target,
    config: PipelineConfig,
    version: str,
    source_dir: str,
    image_ref: str,
    steps: Steps,
    report: RunReport,
    require_approval: bool,
) -> ProbeSummary | None:
    """Steps 6-12; returns the probe's summary (None when prod served nothing to protect)."""
    logger = get_run_logger()
    steps.run("release bundle", release_steps.release_bundle, target, source_dir, image_ref, version)
    roles = steps.run("pick preprod", release_steps.pick_preprod, target, config)
    if already_live(roles, version, config.accepted_health):
        for name in ("deploy", "wait until ready", "verify preprod", "swap"):
            steps.skip(name, f"prod already serves {version}")
        result = steps.run("verify prod", release_steps.verify_prod, target, version, config)
        report.verifications.append(result.summary())
        if not result.ok:
            raise release.VerificationFailed(
                f"prod claims {version} but does not serve it: {result.summary()}"
            )
        report.outcome = f"{version} was already live on prod ({roles.prod.name}): nothing to do"
        return None
    probe = _probe_for(target, config) if release_steps.prod_serving(roles) else None
    if probe is None:
        logger.info("prod serves nothing yet: no zero-downtime probe for this first release")
    elif not require_approval:
        probe.start()
    else:
        # A person may take longer to approve than the probe's time cap: probe from the approval on.
        logger.info("the zero-downtime probe starts once the release is approved")
    try:
        since = steps.run("deploy", release_steps.deploy, target, roles, version, config)
        steps.run("wait until ready", release_steps.wait_until_ready, target, roles, version, config, since)
        checked = steps.run("verify preprod", release_steps.verify_preprod, target, version, config)
        report.verifications.append(checked.summary())
        if require_approval:
            from flows.release.approval import await_approval

            decision = await_approval(version, describe(roles.prod), describe(roles.preprod), APPROVAL_WAIT_S)
            if not decision.approved:
                raise ReleaseRejected(
                    f"{version} was not approved ({decision.reason}); preprod ({roles.preprod.name}) "
                    f"runs it, prod ({describe(roles.prod)}) was not touched"
                )
            report.verifications.append(f"approval: {decision.reason}")
            if probe is not None:
                probe.start()
                time.sleep(PROBE_LEAD_S)  # the "before the swap" phase needs requests too
        if probe is not None:
            probe.mark_swap_start()
        try:
            after = steps.run("swap", release_steps.swap, target, roles, config)
        finally:
            if probe is not None:
                probe.mark_swap_end()
        result = steps.run("verify prod", release_steps.verify_prod, target, version, config)
        report.verifications.append(result.summary())
        if not result.ok:
            try:
                restored = steps.run("swap back", release_steps.swap_back, target, after, config)
            except Exception as exc:
                raise release.ReleaseError(
                    f"prod did not serve {version} after the swap ({result.summary()}) and swapping "
                    f"back failed too: {exc}. Prod is now {after.prod.name}: swap by hand with "
                    "`deliverypipeline <target> swap` or release the previous commit"
                ) from exc
            raise release.swapped_back(version, result, restored, failed=after.prod.name)
        report.outcome = f"{version} is live on prod ({after.prod.name})"
        if probe is not None:
            time.sleep(PROBE_TAIL_S)  # the "after the swap" phase needs requests too
    finally:
        summary = _finish_probe(probe if probe is not None and probe.started else None, report)
    return summary


def _current_roles(target: Target, config: PipelineConfig, report: RunReport) -> None:
    try:
        roles = release.find_roles(target, config)
    except Exception as exc:  # the report must be written even when the target is unreachable
        report.prod = f"unknown ({exc})"
        return
    report.prod, report.preprod = describe(roles.prod), describe(roles.preprod)


def _notify(url: str, report: RunReport) -> None:
    from flows.report.notify import notify, run_ui_url

    run_id = flow_run.id
    notify(
        url,
        ok=report.ok,
        version=report.version or "?",
        application=report.application,
        run_url=run_ui_url(run_id) if run_id else None,
        detail=report.outcome,
    )


def run_pipeline(
    repo: str,
    ref: str,
    target_name: str,
    config: PipelineConfig,
    require_approval: bool,
    notify_url: str | None,
    pushed_ref: str | None = None,
) -> dict[str, Any]:
    """The steps, in order, inside the flow (and inside the application's run slot)."""
    logger = get_run_logger()
    started = time.monotonic()
    shown_ref = f"{ref} (pushed to {pushed_ref})" if pushed_ref else ref
    report = RunReport(application=config.application, target=target_name, repo=repo, ref=shown_ref)
    steps = Steps(report)
    target: Target | None = None
    checkout: source_steps.Checkout | None = None
    probe_summary: ProbeSummary | None = None
    try:
        target = make_target(target_name, config)
        checkout = steps.run("checkout", source_steps.checkout, repo, ref)
        report.version, report.commit = checkout.version, checkout.commit
        _rename_run(run_name(config.application, checkout.version, checkout.commit))
        summary = steps.run("unit tests", source_steps.unit_tests, checkout, config.deadlines.unit_tests)
        report.verifications.append(f"unit tests: {summary.line()}")
        built = steps.run("build image", image_steps.build_step(checkout, config), checkout, config)
        smoke = steps.run(
            "smoke test", image_steps.smoke, built, checkout.version, config.deadlines.smoke_test
        )
        report.verifications.append(
            f"smoke test: {smoke.image} served {smoke.version}, healthy after {smoke.seconds_to_healthy:.1f}s"
        )
        pushed = steps.run("push", image_steps.push_step(built, config), built, config, target_name)
        probe_summary = _release(
            target, config, checkout.version, checkout.path, pushed.ref, steps, report, require_approval
        )
        report.ok = True
    except BaseException as exc:
        report.ok = False
        report.outcome = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report.total_seconds = time.monotonic() - started
        if target is not None:
            _current_roles(target, config, report)
        if checkout is not None:
            source_steps.remove_checkout(checkout)
        if probe_summary is not None and probe_summary.violation and report.ok:
            report.ok = False
            report.outcome = f"{report.outcome}, but zero downtime was VIOLATED"
        publish_run(report)
        if notify_url:
            _notify(notify_url, report)
        logger.info("%s (%.1fs)", report.outcome, report.total_seconds)
    if probe_summary is not None and probe_summary.violation:
        raise ZeroDowntimeViolation(
            f"{report.version} is live and verified, but {probe_summary.failures} of "
            f"{probe_summary.requests} probe requests to prod failed ({probe_summary.swap_failures} "
            "during the swap); see the zero-downtime artifact and the proxy's log"
        )
    return {
        "version": report.version,
        "commit": report.commit,
        "outcome": report.outcome,
        "prod": report.prod,
        "seconds": round(report.total_seconds, 2),
        "steps": {step.name: step.state for step in report.steps},
        "durations": {step.name: round(step.seconds, 2) for step in report.steps},
        "probe": None
        if probe_summary is None
        else {"requests": probe_summary.requests, "failures": probe_summary.failures},
    }


@flow(name="deliverypipeline", flow_run_name=_initial_name, log_prints=True)
def pipeline(
    repo: str = ".",
    ref: str = "HEAD",
    target: Literal["local", "aws"] = "local",
    config: PipelineConfig = PipelineConfig(),  # noqa: B008 - a pydantic default, shown as the UI form
    require_approval: bool = False,
    notify_url: str | None = None,
    pushed_ref: str | None = None,
) -> dict[str, Any]:
    """Ship `ref` of `repo` to `target` with a blue/green swap; one run per application at a time.

    `pushed_ref` is the git ref a webhook push named (e.g. `refs/heads/main`); it is recorded in
    the run report, while `ref` (the pushed commit) is what is released.
    """
    logger = get_run_logger()
    slot = concurrency_name(config.application)
    ensure_concurrency_limit(slot)
    logger.info("waiting for the run slot %s (one pipeline run per application)", slot)
    acquired = False
    try:
        with concurrency(slot, occupy=1, timeout_seconds=RUN_SLOT_WAIT_S, strict=True):
            acquired = True
            return run_pipeline(repo, ref, target, config, require_approval, notify_url, pushed_ref)
    except TimeoutError as exc:
        if acquired:
            raise
        raise TimeoutError(
            f"another run of {config.application} held the run slot {slot} for over {RUN_SLOT_WAIT_S:.0f}s; "
            "look at the running flow runs in the Prefect UI"
        ) from exc


if __name__ == "__main__":  # pragma: no cover - `deliverypipeline run` is the entry point
    print("use `deliverypipeline run --repo PATH --ref REF`", file=sys.stderr)
    sys.exit(2)

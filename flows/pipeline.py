"""The delivery pipeline as one Prefect flow: its body is the step table, the step calls in order.

preflight -> recover -> checkout -> (build image -> smoke test, beside unit tests) -> push ->
lock target -> release bundle -> pick preprod -> deploy -> wait until ready -> verify preprod ->
[approval] -> [canary] -> swap -> verify prod -> analyse traffic (-> swap back and fail, if prod is
rejected).

The flow is assembled here from the stages' tasks: each is a `Step` (`flows.runs.record`), called
like its task, whose final state goes into the run's record. Every step runs in the flow's thread
except the build and its smoke test, which run together in the background (`in_background`) while
the unit tests run (they need no image, the build needs no test result); the push waits for all
three, so nothing untested leaves this machine, and a cancel stops the tests' process at once.

Around the steps (`flows.runs`): the run's name, the record of every step, the report artifact
and the notification. Prod is made safe first: `recover` takes the target's lock for a moment
right after the preflight, before anything is built, and undoes what a crashed release left. One
release per target at a time: the target's own lock, held from `lock target` to the end, is the
safety against overlapping releases and manual swaps (a second run waits for it, logging the
holder); the deployments' Prefect concurrency limit queues runs before they start. The
zero-downtime probe watches prod from the deploy to the end of the analysis.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import wait
from contextlib import ExitStack, contextmanager
from typing import Any, Literal

from prefect import flow
from prefect.client.schemas.objects import State
from pydantic.json_schema import SkipJsonSchema

from flows.config import FoldedConfig, PipelineConfig, check_repo, for_target, unfolded
from flows.image import tasks as image
from flows.image.build import BuiltImage
from flows.release import tasks as release
from flows.release.decisions import already_live
from flows.release.watch import watching_prod
from flows.runs.background import in_background
from flows.runs.lifecycle import release_run
from flows.runs.naming import initial_name, name_after_checkout
from flows.runs.record import Step
from flows.source import tasks as source_steps
from flows.source.tasks import Checkout
from flows.targets.base import Target

# The steps in the order of the table; the target's preflight and recovery come first.
preflight, recover = Step(release.preflight), Step(release.recover)
checkout, unit_tests = Step(source_steps.checkout), Step(source_steps.unit_tests)
build_image = Step(image.build_image, refresh=image.build_missing)
smoke_test = Step(image.smoke_test)
push = Step(image.push, refresh=image.push_missing)
take_lock, release_bundle = Step(release.take_lock), Step(release.release_bundle)
pick_preprod, deploy = Step(release.pick_preprod), Step(release.deploy)
wait_until_ready, verify_preprod = Step(release.wait_until_ready), Step(release.verify_preprod)
approval, canary, swap = Step(release.approval), Step(release.canary), Step(release.swap)
verify_prod, analyse_traffic = Step(release.verify_prod), Step(release.analyse_traffic)
swap_back = Step(release.swap_back)


def smoke_tested_image(source: Checkout, config: PipelineConfig) -> BuiltImage:
    """Build image, then smoke test it: the pair that runs in the background beside the unit tests."""
    built = build_image(source, config)
    smoke_test(built, source.version, config.deadlines.smoke_test)
    return built


@contextmanager
def lock_target(where: Target, version: str, config: PipelineConfig) -> Iterator[None]:
    """The target's exclusive lock for the block (step "lock target"): releases and manual swaps
    never overlap. Released when the block ends, however it ends."""
    with ExitStack() as held:
        take_lock(held, where, version, config)
        yield


@flow(name="deliverypipeline", flow_run_name=initial_name, log_prints=True)
def pipeline(
    repo: str = ".",
    ref: str = "HEAD",
    require_approval: bool = False,
    notify_url: str = "",
    config: FoldedConfig = None,
    # Accepted, but left out of the Run form (their JSON schema is skipped): set by the
    # deployment or a program, never chosen by the person submitting the form.
    target: SkipJsonSchema[Literal["local", "aws", "swarm"]] = "local",
    pushed_ref: SkipJsonSchema[str | None] = None,
) -> dict[str, Any] | State[Any]:
    """Ship `ref` of `repo` to `target` with a blue/green swap; one release per target at a time.

    `repo` is a git checkout on this machine (the deployments' default: the checkout they were
    deployed from) or a URL git can clone; `ref` the commit, branch or tag to release;
    `require_approval` pauses for a person's approval before the swap. `target` (`local`: Docker
    and HAProxy here, `aws`: Elastic Beanstalk, `swarm`: a Docker Swarm) is the deployment's own:
    each target has its deployment (`deliverypipeline/<target>`, with its queue of one run at a
    time), so its Run form does not offer another. `pushed_ref` is set by the webhook receiver
    (the pushed git ref, for the report and superseding).

    The Run form fits one 1080 px screen, Submit included: the choices of a release, then the
    configuration as one JSON field (`flows.config.FoldedConfig`); only the two fields whose name
    does not say it all carry a one-line description. A pushed run whose branch has a newer push
    by the time it starts (it holds the deployment's slot then) ends Cancelled "superseded by <sha>".

    Args:
        notify_url: A chat webhook told how the release ended (empty: none).
        config: Settings that differ from the defaults, as JSON.
    """
    config = for_target(unfolded(config), target)
    with release_run(config, target, repo, ref, pushed_ref, notify_url) as run:
        check_repo(repo)  # a missing checkout stops the run here, named in its report
        if superseded := run.superseded():  # a newer push of this branch waits: it releases instead
            return superseded
        where = preflight(target, config)
        recover(where, config)  # prod safe first: what a crashed release left is undone
        source = checkout(repo, ref)
        name_after_checkout(run.report, source)
        image_checked = in_background(smoke_tested_image, source, config)
        try:
            unit_tests(source, config.deadlines.unit_tests)  # here, so a cancel stops them at once
        finally:
            wait([image_checked])
        pushed = push(image_checked.result(), config)  # a failed build or smoke test stops the run here
        with lock_target(where, source.version, config):
            release_bundle(where, source.path, pushed.ref, source.version)
            roles = pick_preprod(where, config)
            live = already_live(roles, source.version, config.accepted_health)
            if not live:
                with watching_prod(where, roles, config, run.report, require_approval) as watch:
                    since = deploy(where, roles, source.version, config)
                    wait_until_ready(where, roles, source.version, config, since)
                    verify_preprod(where, source.version, config)
                    approval(roles, source.version, require_approval)
                    canary(where, roles, config, watch)
                    try:
                        after = swap(where, config, watch)
                        verify_prod(where, source.version, config)
                        analyse_traffic(where, after, config, watch)
                    except BaseException as rejected:  # rejected, or interrupted before it was verified
                        swap_back(where, roles, rejected, config)  # raises what ends the run
        if live:  # verified after the lock is let go: a run that dies here is no swap to undo
            verify_prod(where, source.version, config)
            return run.ended(f"{source.version} was already live on prod ({roles.prod.name}): nothing to do")
        return run.ended(f"{source.version} is live on prod ({after.prod.name})")


if __name__ == "__main__":  # pragma: no cover - `deliverypipeline run` is the entry point
    print("use `deliverypipeline run --repo PATH --ref REF`", file=sys.stderr)
    sys.exit(2)

"""The delivery pipeline as one Prefect flow: its body is the step table, the task calls in order.

preflight -> checkout -> (build image -> smoke test, beside unit tests) -> push -> lock target ->
recover -> release bundle -> pick preprod -> deploy -> wait until ready -> verify preprod -> [approval] ->
[canary] -> swap -> verify prod -> analyse traffic (-> swap back and fail, if prod is rejected).

The image is built and smoke-tested in the background while the unit tests run (they need no
image, the build needs no test result); the push waits for all three, so nothing untested leaves
this machine. The tests run in the flow's own thread: a cancel stops their process at once.

Around the steps (`flows.runs`): the run's name, the record of every step, the report artifact
and the notification. One release per target at a time: the target's own lock, held from
`lock target` to the end, is the safety against overlapping releases and manual swaps (a
second run waits for it, logging the holder); the deployments' Prefect concurrency limit
queues runs before they start. The zero-downtime probe watches prod from the deploy to the
end of the analysis.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

from prefect import flow
from prefect.client.schemas.objects import State

from flows.config import PipelineConfig, for_target
from flows.image.tasks import build_image, push, smoke_test
from flows.release.decisions import already_live
from flows.release.tasks import (
    analyse_traffic,
    approval,
    canary,
    deploy,
    lock_target,
    pick_preprod,
    preflight,
    recover,
    release_bundle,
    swap,
    swap_back,
    verify_preprod,
    verify_prod,
    wait_until_ready,
)
from flows.release.watch import watching_prod
from flows.runs.lifecycle import release_run
from flows.runs.naming import initial_name
from flows.source.tasks import checkout, unit_tests


@flow(name="deliverypipeline", flow_run_name=initial_name, log_prints=True)
def pipeline(
    repo: str = ".",
    ref: str = "HEAD",
    target: Literal["local", "aws"] = "local",
    config: PipelineConfig = PipelineConfig(),  # noqa: B008 - a pydantic default, shown as the UI form
    require_approval: bool = False,
    notify_url: str | None = None,
    pushed_ref: str | None = None,
) -> dict[str, Any] | State[Any]:
    """Ship `ref` of `repo` to `target` with a blue/green swap; one release per target at a time.

    `pushed_ref` is the git ref a webhook push named (e.g. `refs/heads/main`); it is recorded in
    the run report, while `ref` (the pushed commit) is what is released. A pushed run whose
    branch has a newer push by the time it starts (it holds the deployment's slot then) ends
    Cancelled "superseded by <sha>".
    """
    config = for_target(config, target)
    with release_run(config, target, repo, ref, pushed_ref, notify_url) as run:
        if superseded := run.superseded():  # a newer push of this branch waits: it releases instead
            return superseded
        where = preflight(target, config)
        source = checkout(repo, ref)
        image = build_image(source, config)  # in the background, as is its smoke test
        # Prefect passes the build's result (a future argument) to the smoke test once it is built.
        smoked = smoke_test.submit(image, source.version, config.deadlines.smoke_test)  # type: ignore[call-overload]
        try:
            unit_tests(source, config.deadlines.unit_tests)  # here, so a cancel stops them at once
        finally:
            smoked.wait()
        built = image.result()  # a failed build or smoke test stops the run here: nothing is pushed
        smoked.result()
        pushed = push(built, config)
        with lock_target(where, source.version, config) as interrupted:
            recover(where, interrupted, config)
            release_bundle(where, source.path, pushed.ref, source.version)
            roles = pick_preprod(where, config)
            if already_live(roles, source.version, config.accepted_health):
                verify_prod(where, source.version, config)
                return run.ended(
                    f"{source.version} was already live on prod ({roles.prod.name}): nothing to do"
                )
            with watching_prod(where, roles, config, require_approval) as watch:
                since = deploy(where, roles, source.version, config)
                wait_until_ready(where, roles, source.version, config, since)
                verify_preprod(where, source.version, config)
                approval(roles, source.version, require_approval, watch)
                canary(where, roles, config, watch)
                try:
                    after = swap(where, config, watch)
                    verify_prod(where, source.version, config)
                    analyse_traffic(where, after, config, watch)
                except BaseException as rejected:  # rejected, or interrupted before it was verified
                    raise swap_back(where, roles, rejected, config) from rejected
        return run.ended(f"{source.version} is live on prod ({after.prod.name})")


if __name__ == "__main__":  # pragma: no cover - `deliverypipeline run` is the entry point
    print("use `deliverypipeline run --repo PATH --ref REF`", file=sys.stderr)
    sys.exit(2)

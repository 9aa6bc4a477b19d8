"""Runs for the UI test, made on a real Prefect server (PREFECT_API_URL): the pipeline's deployment
and the recovery's (with prefect.yaml's triggers), and a completed, a failed, a crashed and a
cancelled run of a stand-in flow named like the pipeline.

The stand-in runs the step tasks (named from `flows.steps`, noted by `flows.runs.record.Step`)
and publishes the artifacts through the real renderers: the release report (`publish_run`), the
zero-downtime probe (`publish_probe`) and the wait-until-ready progress (`ReadyProgress`), with
figures like a local release's. No Docker, no target: the UI test checks what the pages show.

    python -m tests.e2e.ui_runs deploy REPO      # `deliverypipeline/local`, `recover/crashed-release`
    python -m tests.e2e.ui_runs completed|failed # a run; prints its id
    python -m tests.e2e.ui_runs crash            # a run whose process kills itself in `swap`
    python -m tests.e2e.ui_runs cancel           # a run that hangs in `swap` until it is killed
    python -m tests.e2e.ui_runs superseded       # a run that cancels itself (a newer push waits)
    python -m tests.e2e.ui_runs recover RUN_ID   # the recovery run a trigger created, run here

The recovery runs as the control plane's worker would run it, against a stand-in target whose
release of VERSION died right after its swap (prod serves it unverified): it swaps back.
`tests.e2e.test_cancel_e2e` deploys the stand-in (mode `cancel`) for a real process worker.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any
from uuid import UUID

from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Cancelled

from flows import steps
from flows.errors import DeliveryError
from flows.release.analysis import AnalysisRow
from flows.release.probe_artifact import publish_probe
from flows.release.probe_stats import Sample, SwapMark, buckets, summarize
from flows.release.ready_progress import ReadyProgress
from flows.report.artifacts import RunReport, publish_run
from flows.runs.record import Step, recording

VERSION = "v1.4.0-3-g0a1b2c3d"
PROD = "node-2 at 127.0.0.1:8080: version {version}, status Ready, health Green (serving since the swap)"
FAILURE = (
    "node-1 did not become ready with version {version} within 600s; last seen: node-1 status Ready, "
    "health Red, version {version}; /health answered 503 Service Unavailable (store not reachable); "
    "prod was not touched"
)


class NotReadyInTime(DeliveryError):
    """The stand-in's failure: preprod never became ready."""


def probe_samples() -> list[Sample]:
    """Twelve seconds of probe requests, slower for a moment around the swap at 6 s."""
    samples = []
    for index in range(480):
        start = index * 0.025
        latency = 0.004 + (0.012 if 5.8 <= start <= 6.6 else 0.0) + 0.001 * (index % 5)
        path = ("/ (text/html)", "/ (application/json)", "/health (application/json)")[index % 3]
        samples.append(Sample(start, latency, True, "", path))
    return samples


def make_step(
    name: str, seconds: float = 0.05, fail: str | None = None, crash: bool = False
) -> Step[[], str]:
    """A step task named `name` that takes `seconds`, then fails with `fail` or kills its process."""

    @task(name=name)
    def act() -> str:
        time.sleep(seconds)
        if crash:
            os.kill(os.getpid(), signal.SIGKILL)
        if fail is not None:
            raise NotReadyInTime(fail)
        return name

    return Step(act)


def wait_progress(report: RunReport, fail: str | None) -> None:
    """The wait-until-ready progress artifact, ended as the real step ends it."""
    shown = ReadyProgress("node-1", VERSION, create_progress_artifact, update_progress_artifact)
    for fraction in (0.0, 0.1, 0.25):
        shown.update(fraction)
    if fail is None:
        shown.ready(4.2)
    else:
        shown.stopped(NotReadyInTime(fail))


@flow(name="deliverypipeline", flow_run_name="deliverypipeline-{mode}")
def standin(mode: str) -> str | State[Any]:
    """A release's steps as the pipeline names them, ending as `mode` says, with its artifacts."""
    if mode == "superseded":
        return Cancelled(message="superseded by 1234567: not released")
    report = RunReport("deliverypipeline", "local", "/srv/deliverypipeline", "HEAD", VERSION, "0a1b2c3d")
    failure = FAILURE.format(version=VERSION) if mode == "failed" else None
    started = time.monotonic()
    try:
        with recording(report):
            for name in steps.STEPS[: steps.STEPS.index(steps.WAIT_UNTIL_READY)]:
                make_step(name)()
            wait_progress(report, failure)
            make_step(steps.WAIT_UNTIL_READY, 0.2, fail=failure)()
            for name in (steps.VERIFY_PREPROD, steps.CANARY):
                make_step(name)()
            make_step(steps.SWAP, 600 if mode == "cancel" else 0.5, crash=mode == "crash")()
            for name in (steps.VERIFY_PROD, steps.ANALYSE_TRAFFIC):
                make_step(name)()
        samples = probe_samples()
        summary = summarize("http://127.0.0.1:8080", samples, SwapMark(6.0, 6.3))
        publish_probe(summary, buckets(samples, summary.swap))
        report.probe = summary
        report.analysis = [
            AnalysisRow("canary 10 %", 10, "passed", 212, 0, 0, 4.1, 3.8),
            AnalysisRow("canary 50 %", 50, "passed", 1046, 1, 0, 4.4, 3.9),
            AnalysisRow("after the swap", 100, "passed", 2210, 0, 0, 4.0, 3.9),
        ]
        report.ok, report.outcome = True, f"{VERSION} is live on prod (node-2)"
        return report.outcome
    except BaseException as error:
        report.outcome = f"{type(error).__name__}: {error}"
        raise
    finally:
        report.total_seconds = time.monotonic() - started
        report.prod = PROD.format(version=VERSION if report.ok else "v1.3.9-0-gfedcba98")
        report.preprod = "node-1 at 127.0.0.1:8081: version v1.3.9-0-gfedcba98, status Ready, health Green"
        publish_run(report)


def deploy(repo: str) -> str:
    """The pipeline's `local` deployment (its Run form) and the recovery's, with prefect.yaml's
    triggers; the pipeline deployment's id."""
    import yaml  # type: ignore[import-untyped]
    from prefect.deployments.runner import RunnerDeployment
    from prefect.events import DeploymentTriggerTypes, TriggerTypes
    from pydantic import TypeAdapter

    from flows.pipeline import pipeline
    from flows.recovery.flow import recover_release
    from tests.e2e.servers import ROOT

    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    [spec] = [d for d in deployments if d["name"] == "crashed-release"]
    adapter: TypeAdapter[DeploymentTriggerTypes] = TypeAdapter(DeploymentTriggerTypes)
    triggers: list[DeploymentTriggerTypes | TriggerTypes] = [
        adapter.validate_python(t) for t in spec["triggers"]
    ]
    recovery = recover_release.to_deployment(name="crashed-release", triggers=triggers)
    release = pipeline.to_deployment(name="local", parameters={"repo": repo, "target": "local"})
    assert isinstance(recovery, RunnerDeployment) and isinstance(release, RunnerDeployment)
    recovery.apply()
    return str(release.apply())


def recover(run_id: str) -> None:
    """Run the recovery run `run_id` here, against a target whose release of VERSION died after its swap."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.recovery import flow as recovery_flow
    from flows.release import tasks as release_tasks
    from flows.release.decisions import release_operation
    from flows.release.lock import holder
    from tests.flows.fakes import FakeTarget, http_check_of, paths_check_of

    target = FakeTarget.pair(prod_version=VERSION, preprod_version="v1.3.9-0-gfedcba98")
    target.interrupted = holder(release_operation(VERSION), "the-ended-run")
    setattr(recovery_flow, "make_target", lambda name, config: target)  # noqa: B010 - a stand-in
    setattr(release_tasks, "health_check", http_check_of(target))  # noqa: B010
    setattr(release_tasks, "paths_check", paths_check_of(target))  # noqa: B010
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(run_id))
    run_flow(recovery_flow.recover_release, flow_run=run, parameters=dict(run.parameters))


def main(argv: list[str]) -> int:
    """Make what the first argument names; print the flow run's id."""
    mode = argv[0]
    if mode == "deploy":
        print(deploy(argv[1]))
        return 0
    if mode == "recover":
        recover(argv[1])
        print(argv[1])
        return 0
    state = standin(mode, return_state=True)
    run_id: UUID | None = state.state_details.flow_run_id
    print(run_id if run_id else flow_run.id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

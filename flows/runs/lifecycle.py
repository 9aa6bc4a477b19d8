"""Everything around the steps of one run: its record, its report and notification.

`release_run` wraps the flow body: it makes the step hooks record into this run's report, and
when the body ends (returned, failed or interrupted) removes the checkout, notes who serves
prod now, publishes the `release-report` artifact, tells the chat hook, and fails a run whose
zero-downtime probe saw a failed request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeGuard
from uuid import UUID

from prefect import get_run_logger
from prefect.client.schemas.objects import State
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run

from flows.config import PipelineConfig
from flows.metrics.artifact import publish as publish_delivery_performance
from flows.release.decisions import describe
from flows.release.errors import ZeroDowntimeViolation
from flows.release.facts import find_roles
from flows.report.artifacts import RunReport, publish_run
from flows.runs.record import recording
from flows.source.tasks import release_checkout
from flows.targets.factory import make_target


@dataclass
class Run:
    """The run in progress: its report, and how the body says it ended well."""

    report: RunReport
    config: PipelineConfig
    notify_url: str | None = None
    pushed_ref: str | None = None
    returned: dict[str, Any] = field(default_factory=dict)

    def ended(self, outcome: str) -> dict[str, Any]:
        """Mark the release done with `outcome`; returns the flow's result (shown in the UI).

        The dict is completed when the run ends (who is prod now, the total time).
        """
        self.report.ok = True
        self.report.outcome = outcome
        self.returned.update(self.result())
        return self.returned

    def superseded(self) -> State[Any] | None:
        """A Cancelled "superseded by <sha>" state when this run's commit must not be released.

        Only runs a webhook push started (with `pushed_ref`) can be superseded: when a newer push
        of the branch exists, or prod serves the commit or a newer one (git ancestry and the
        pushes' own fields decide, see flows/webhook/supersede.py); a run started by hand for a
        ref (a rollback) never is. The flow returns the state: the run ends Cancelled.
        """
        run_id = flow_run.id
        if not self.pushed_ref or run_id is None:
            return None
        from prefect.states import Cancelled

        from flows.controlplane.api import for_current_run
        from flows.webhook import history, supersede

        with for_current_run() as api:
            commit = supersede.superseded_run(
                api, UUID(str(run_id)), history.for_repository, self.prod_version
            )
        if commit is None:
            return None
        state: State[Any] = Cancelled(message=supersede.message(commit))
        self.report.outcome = f"{state.message}: not released"
        self.report.ok = True
        get_run_logger().info("%s; not releasing %s", state.message, self.report.ref)
        return state

    def prod_version(self) -> str | None:
        """The version prod serves now, None when the target cannot tell (superseding then goes by
        the branch's pushes alone)."""
        try:
            roles = find_roles(make_target(self.report.target, self.config), self.config)
        except Exception as exc:  # superseding must not fail a release; the release checks the target
            get_run_logger().warning("could not read prod's version to decide superseding: %s", exc)
            return None
        return roles.prod.version

    def result(self) -> dict[str, Any]:
        """The flow run's result: version, outcome, prod, per-step states and durations."""
        report = self.report
        return {
            "version": report.version,
            "commit": report.commit,
            "outcome": report.outcome,
            "prod": report.prod,
            "seconds": round(report.total_seconds, 2),
            "steps": {step.name: step.state for step in report.steps},
            "durations": {step.name: round(step.seconds, 2) for step in report.steps},
            "probe": None
            if report.probe is None
            else {"requests": report.probe.requests, "failures": report.probe.failures},
        }


class release_run:
    """Record the run for the block; when it ends, report and notify, and fail a probe violation.

    Never swallows what ended the block (`__exit__` returns None), so a type checker knows a
    flow body returning inside it always returns.
    """

    def __init__(
        self,
        config: PipelineConfig,
        target: str,
        repo: str,
        ref: str,
        pushed_ref: str | None,
        notify_url: str | None,
    ) -> None:
        """The run of `ref` of `repo` onto `target` (`pushed_ref`: the branch a push named)."""
        shown_ref = f"{ref} (pushed to {pushed_ref})" if pushed_ref else ref
        report = RunReport(application=config.application, target=target, repo=repo, ref=shown_ref)
        self.run = Run(report, config, notify_url, pushed_ref)
        self.target = target
        self._recording = recording(report)
        self._started = 0.0

    def __enter__(self) -> Run:
        """Start recording the steps."""
        self._started = time.monotonic()
        self._recording.__enter__()
        return self.run

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Report and notify; what ended the block propagates; a probe violation fails the run."""
        report = self.run.report
        self._recording.__exit__(kind, value, tb)
        if value is not None:
            report.ok = False
            report.stopped = stopped_by_worker(value)
            report.outcome = outcome_of(value)
        report.total_seconds = time.monotonic() - self._started
        _finish(self.run, self.target)
        get_run_logger().info("%s (%.1fs)", report.outcome, report.total_seconds)
        probe = report.probe
        if value is None and probe is not None and probe.violation:
            raise ZeroDowntimeViolation(
                f"{report.version} is live and verified, but {probe.failures} of {probe.requests} probe "
                f"requests to prod failed ({probe.swap_failures} during the swap); see the zero-downtime "
                "artifact and the proxy's log"
            )


def stopped_by_worker(error: BaseException) -> TypeGuard[TerminationSignal]:
    """Whether `error` is the termination signal of the run's worker stopping its process (the run
    was cancelled, or the worker shut down), not a fault of the release."""
    return isinstance(error, TerminationSignal)


def outcome_of(error: BaseException) -> str:
    """How a run that `error` ended reads in its report: a termination signal (its worker stopping
    the process: the run was cancelled, or the worker shut down) says so; else the error's type
    and message. A run cancelled while it ran gets its recovery's report too (flows/recovery/)."""
    if stopped_by_worker(error):
        return (
            f"stopped by signal {error.signal} from its worker (the run was cancelled, or the worker "
            "shut down); its recovery makes prod serve a verified version"
        )
    return f"{type(error).__name__}: {error}"


def _finish(run: Run, target: str) -> None:
    report = run.report
    if report.workdir is not None:
        release_checkout(report.workdir)
    try:
        roles = find_roles(make_target(target, run.config), run.config)
        report.prod, report.preprod = describe(roles.prod), describe(roles.preprod)
    except Exception as exc:  # the report must be written even when the target is unreachable
        report.prod = f"unknown ({exc})"
    if report.probe is not None and report.probe.violation and report.ok:
        report.ok = False
        report.outcome = f"{report.outcome}, but zero downtime was VIOLATED"
    if run.returned:
        run.returned.update(run.result())
    publish_run(report)
    publish_delivery_performance(report.application, target)  # never raises
    if run.notify_url:
        _notify(run.notify_url, report)


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

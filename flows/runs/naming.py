"""A run's name: the commit it will release from the start, the version once the checkout knows it."""

from __future__ import annotations

from uuid import UUID

from prefect import get_run_logger
from prefect.runtime import flow_run

from flows.config import PipelineConfig
from flows.errors import SourceError
from flows.keys import initial_run_name, run_name
from flows.report.artifacts import RunReport
from flows.source.tasks import Checkout, resolve_local


def initial_name() -> str:
    """The flow run's name before checkout (Prefect's `flow_run_name`): the resolved commit, else the ref."""
    parameters = flow_run.parameters
    repo, ref = str(parameters.get("repo", ".")), str(parameters.get("ref", "HEAD"))
    config = parameters.get("config")
    application = config.application if isinstance(config, PipelineConfig) else "deliverypipeline"
    try:
        commit = resolve_local(repo, ref)
    except SourceError:
        commit = None
    return initial_run_name(application, ref, commit)


def name_after_checkout(report: RunReport, source: Checkout) -> None:
    """From the checkout on, the run is known by what it releases: its report carries the commit,
    the version and the work directory (removed at the end), and the run is renamed after them."""
    report.commit, report.version, report.workdir = source.commit, source.version, source.path
    rename_run(run_name(report.application, source.version, source.commit))


def rename_run(name: str) -> None:
    """Rename the current flow run; a failure is logged, never fails a release."""
    run_id = flow_run.id
    if run_id is None:
        return
    from flows.controlplane.api import for_current_run

    try:
        with for_current_run() as api:
            api.rename_flow_run(UUID(str(run_id)), name)
    except Exception as exc:  # a cosmetic failure must not fail a release
        get_run_logger().warning("could not rename the run to %s: %s", name, exc)

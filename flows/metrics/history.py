"""The release history the four keys are computed from, read from the control plane's API.

Through the one REST adapter (`flows.controlplane.api`): the `deliverypipeline` flow runs
started in the window (their names, parameters), their task runs (step names, states, end
times), and the `recover` runs (which release each recovered, from its `crashed_run`
parameter). A release's commit time comes from its repository when it is readable on this
machine (`git show -s --format=%ct <commit>`, the commit taken from the run's name); otherwise
it stays unknown.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flows.controlplane.api import ControlPlaneApi
from flows.errors import DeliveryError
from flows.metrics.dora import Recovery, Release, RunRef, Step

RELEASE_FLOW = "deliverypipeline"
RECOVERY_FLOW = "recover"
RUN_RESOURCE = "prefect.flow-run."  # a recovery's parameter may be its Crashed event's resource id
PAGE = 200  # the API's largest page
RUNS_PER_TASK_QUERY = 50
_HEX = re.compile(r"^[0-9a-f]{7,40}$")
CommitTime = Callable[[str, str], datetime | None]


def _when(value: str | None) -> datetime | None:
    """A timestamp of the API (ISO 8601), None when absent."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _pages(api: ControlPlaneApi, path: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every object a filter matches, page by page."""
    found: list[dict[str, Any]] = []
    while True:
        page = api.call("POST", path, {**body, "limit": PAGE, "offset": len(found)}) or []
        found.extend(page)
        if len(page) < PAGE:
            return found


def flow_runs(api: ControlPlaneApi, flow: str, since: datetime) -> list[dict[str, Any]]:
    """The runs of `flow` that started after `since`, oldest first."""
    body = {
        "flows": {"name": {"any_": [flow]}},
        "flow_runs": {"start_time": {"after_": since.isoformat()}},
        "sort": "START_TIME_ASC",
    }
    return _pages(api, "/flow_runs/filter", body)


def task_steps(api: ControlPlaneApi, run_ids: list[str]) -> dict[str, tuple[Step, ...]]:
    """The steps (task runs) of each flow run in `run_ids`."""
    found: dict[str, list[Step]] = defaultdict(list)
    for start in range(0, len(run_ids), RUNS_PER_TASK_QUERY):
        chunk = run_ids[start : start + RUNS_PER_TASK_QUERY]
        body = {"flow_runs": {"id": {"any_": chunk}}, "sort": "EXPECTED_START_TIME_ASC"}
        for task_run in _pages(api, "/task_runs/filter", body):
            found[str(task_run["flow_run_id"])].append(step(task_run))
    return {run_id: tuple(found.get(run_id, ())) for run_id in run_ids}


def step(task_run: Mapping[str, Any]) -> Step:
    """A task run as a step: `swap back-3f2` is the step "swap back"."""
    name = str(task_run.get("name") or "").rsplit("-", 1)[0]
    state = task_run.get("state") or {}
    return Step(
        name, str(task_run.get("state_type") or state.get("type") or ""), _when(task_run.get("end_time"))
    )


def application_of(parameters: Mapping[str, Any]) -> str:
    """The application a release run shipped: its config's `application`, else the default."""
    config = parameters.get("config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            config = None
    found = config.get("application") if isinstance(config, Mapping) else None
    return str(found or RELEASE_FLOW)


def commit_of(name: str, application: str, ref: str) -> str | None:
    """The commit a release run shipped, from its name (`<app>-<version>[@<commit>]`, the version
    from `git describe`: `<tag>-<n>-g<commit>`, `<commit>` or either with `-dirty`), else its ref."""
    label = name.removeprefix(f"{application}-")
    if "@" in label:
        return label.rsplit("@", 1)[1]
    words = label.removesuffix("-dirty").split("-")
    last = words[-1]
    if len(words) >= 3 and last.startswith("g") and _HEX.match(last[1:]):
        return last[1:]
    if _HEX.match(label.removesuffix("-dirty")):
        return label.removesuffix("-dirty")
    return ref if _HEX.match(ref) else None


def git_commit_time(repo: str, commit: str) -> datetime | None:
    """The commit's time from a repository on this machine; None when it cannot be read here."""
    if not Path(repo).is_dir():
        return None
    from flows.source.tasks import git

    try:
        return datetime.fromtimestamp(int(git(Path(repo), "show", "-s", "--format=%ct", commit)), UTC)
    except (DeliveryError, ValueError):
        return None


def releases(
    runs: list[dict[str, Any]], run_steps: Mapping[str, tuple[Step, ...]], commit_time: CommitTime
) -> list[Release]:
    """Release records of `deliverypipeline` runs; `commit_time(repo, commit)` is asked once per commit."""
    known: dict[tuple[str, str], datetime | None] = {}
    found = []
    for run in runs:
        parameters = run.get("parameters") or {}
        application = application_of(parameters)
        repo = str(parameters.get("repo") or ".")
        commit = commit_of(str(run["name"]), application, str(parameters.get("ref") or ""))
        when = None
        if commit:
            if (repo, commit) not in known:
                known[(repo, commit)] = commit_time(repo, commit)
            when = known[(repo, commit)]
        found.append(
            Release(
                RunRef(str(run["id"]), str(run["name"])),
                application,
                str(parameters.get("target") or "local"),
                run_steps.get(str(run["id"]), ()),
                when,
            )
        )
    return found


def recoveries(runs: list[dict[str, Any]], run_steps: Mapping[str, tuple[Step, ...]]) -> list[Recovery]:
    """Recovery records of `recover` runs: which release run each recovered."""
    return [
        Recovery(
            RunRef(str(run["id"]), str(run["name"])),
            str((run.get("parameters") or {}).get("crashed_run") or "").strip().removeprefix(RUN_RESOURCE),
            run_steps.get(str(run["id"]), ()),
        )
        for run in runs
    ]


def read(
    api: ControlPlaneApi, now: datetime, days: int, commit_time: CommitTime = git_commit_time
) -> tuple[list[Release], list[Recovery]]:
    """The releases and recoveries that started in the `days` days before `now` (a day more for
    releases, so one that started just before the window and reached prod inside it counts)."""
    release_runs = flow_runs(api, RELEASE_FLOW, now - timedelta(days=days + 1))
    recovery_runs = flow_runs(api, RECOVERY_FLOW, now - timedelta(days=days + 1))
    run_steps = task_steps(api, [str(r["id"]) for r in release_runs + recovery_runs])
    return releases(release_runs, run_steps, commit_time), recoveries(recovery_runs, run_steps)

"""A stand-in for `flows/pipeline.py:pipeline` (DELIVERY_E2E_STANDIN=1): the trigger chain without Docker.

Same flow name and parameters as the pipeline; a pushed run first ends Cancelled "superseded by
<sha>" when a newer push of its branch exists or "prod" (the last commit it recorded) is newer
(the decision the real flow makes once it holds its run slot, see flows/webhook/supersede.py,
with the repository's history); it checks that the commit exists in the repository,
holds the run for a few seconds, and appends its start and end times to the JSON-lines file named
by DELIVERY_E2E_RECORDS, so a test can prove runs never overlapped. No Docker, no release.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Cancelled

from flows.config import PipelineConfig
from flows.controlplane.api import for_current_run
from flows.webhook import history
from flows.webhook.supersede import message, superseded_run

HOLD_S = 3.0


def released() -> str | None:
    """The commit the last completed stand-in run recorded: the stand-in's "prod"."""
    with open(os.environ["DELIVERY_E2E_RECORDS"], encoding="utf-8") as records:
        lines = records.read().splitlines()
    return str(json.loads(lines[-1])["ref"]) if lines else None


@flow(name="deliverypipeline", flow_run_name="standin-{ref}")
def pipeline(
    repo: str = ".",
    ref: str = "HEAD",
    target: str = "local",
    config: PipelineConfig = PipelineConfig(),  # noqa: B008 - the pipeline's own default
    require_approval: bool = False,
    notify_url: str | None = None,
    pushed_ref: str | None = None,
) -> str | State[Any]:
    """Record the run of `ref` of `repo`; fail if the commit is not in the repository."""
    if pushed_ref and flow_run.id:  # the deployment's concurrency slot is this flow's run slot
        with for_current_run() as api:
            commit = superseded_run(api, UUID(str(flow_run.id)), history.for_repository, released)
        if commit is not None:
            return Cancelled(message=message(commit))
    started = time.time()
    subprocess.run(["git", "-C", repo, "cat-file", "-e", f"{ref}^{{commit}}"], check=True)
    time.sleep(HOLD_S)
    with open(os.environ["DELIVERY_E2E_RECORDS"], "a", encoding="utf-8") as records:
        records.write(json.dumps({"ref": ref, "repo": repo, "start": started, "end": time.time()}) + "\n")
    return ref

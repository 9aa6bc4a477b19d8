"""A stand-in for `flows/pipeline.py:pipeline` (DELIVERY_E2E_STANDIN=1): the trigger chain without Docker.

Same flow name and parameters as the pipeline; a pushed run first ends Cancelled "superseded by
<sha>" if a newer push of its branch exists (the call the real flow makes once it holds its run
slot, see flows/webhook/supersede.py); it checks that the commit exists in the repository,
holds the run for a few seconds, and appends its start and end times to the JSON-lines file named
by DELIVERY_E2E_RECORDS, so a test can prove runs never overlapped. No Docker, no release.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from flows.config import PipelineConfig
from flows.webhook.supersede import superseded_state

HOLD_S = 3.0


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
        with get_client(sync_client=True) as client:
            superseded = superseded_state(client, flow_run.id)
        if superseded is not None:
            return superseded
    started = time.time()
    subprocess.run(["git", "-C", repo, "cat-file", "-e", f"{ref}^{{commit}}"], check=True)
    time.sleep(HOLD_S)
    with open(os.environ["DELIVERY_E2E_RECORDS"], "a", encoding="utf-8") as records:
        records.write(json.dumps({"ref": ref, "repo": repo, "start": started, "end": time.time()}) + "\n")
    return ref

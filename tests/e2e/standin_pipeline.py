"""A stand-in for `flows/pipeline.py:pipeline` (DELIVERY_E2E_STANDIN=1): the trigger chain without Docker.

Same flow name and parameters as the pipeline; it checks that the commit exists in the repository,
holds the run for a few seconds, and appends its start and end times to the JSON-lines file named
by DELIVERY_E2E_RECORDS, so a test can prove runs never overlapped. No Docker, no release.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from prefect import flow

from flows.config import PipelineConfig

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
) -> str:
    """Record the run of `ref` of `repo`; fail if the commit is not in the repository."""
    started = time.time()
    subprocess.run(["git", "-C", repo, "cat-file", "-e", f"{ref}^{{commit}}"], check=True)
    time.sleep(HOLD_S)
    with open(os.environ["DELIVERY_E2E_RECORDS"], "a", encoding="utf-8") as records:
        records.write(json.dumps({"ref": ref, "repo": repo, "start": started, "end": time.time()}) + "\n")
    return ref

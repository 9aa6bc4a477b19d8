"""The work pool and the deployments of prefect.yaml, (re)deployed only when what they come from changed.

A fingerprint of prefect.yaml, the flow's module, the parameter models, the checkout's path and
Prefect's version is recorded (`<state dir>/controlplane/deployed.json`) with the server and the
deployment ids it deployed: a warm entry point reads two deployments and moves on; a changed
fingerprint, another server or a missing deployment runs `prefect --no-prompt deploy --all` once.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.controlplane import ControlPlaneError
from flows.controlplane import processes as proc
from flows.controlplane.layout import POOL, Layout, prefect_executable
from flows.keys import digest

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

Say = Callable[[str], None]
FLOW = "deliverypipeline"
DEPLOYMENTS = ("local", "aws")
DEPLOY_TIMEOUT_S = 300.0
# What the deployments are made from: their definitions and the flow's parameter schema.
SOURCES = (
    "prefect.yaml",
    "flows/pipeline.py",
    "flows/config.py",
    "flows/targets/local/settings.py",
    "flows/targets/aws/settings.py",
)


def deployment_name(target: str) -> str:
    """The deployment that releases to `target`: `deliverypipeline/<target>`."""
    return f"{FLOW}/{target}"


def fingerprint(root: Path, prefect_version: str) -> str:
    """A short digest of what the deployments are made from (see SOURCES), the path and Prefect."""
    parts = [str(root), prefect_version]
    for relative in SOURCES:
        path = root / relative
        parts.append(path.read_text(errors="replace") if path.is_file() else "-")
    return digest(parts)[:16]


def ensure_pool(client: SyncPrefectClient) -> bool:
    """Create the process pool `deliverypipeline` unless it exists; whether it was created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        client.read_work_pool(POOL)
        return False
    except ObjectNotFound:
        pass
    with contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(
            WorkPoolCreate(
                name=POOL, type="process", base_job_template=ProcessWorker.get_default_base_job_template()
            )
        )
    return True


def deployed_ids(client: SyncPrefectClient) -> dict[str, str] | None:
    """The ids of the deployments on the server, None when one is missing."""
    from prefect.exceptions import ObjectNotFound

    ids = {}
    for name in DEPLOYMENTS:
        try:
            ids[name] = str(client.read_deployment_by_name(deployment_name(name)).id)
        except ObjectNotFound:
            return None
    return ids


def is_current(record: dict[str, Any] | None, version: str, api_url: str, ids: dict[str, str] | None) -> bool:
    """Whether the deployments on the server are the ones recorded for this fingerprint (pure)."""
    if record is None or ids is None:
        return False
    return bool(
        record.get("version") == version and record.get("api_url") == api_url and record.get("ids") == ids
    )


def record_path(layout: Layout) -> Path:
    """Where what was last deployed is recorded."""
    return layout.records / "deployed.json"


def ensure_deployments(layout: Layout, client: SyncPrefectClient, say: Say) -> bool:
    """Deploy prefect.yaml's deployments from `layout.root` unless they are current; whether it deployed."""
    import prefect

    version = fingerprint(layout.root, prefect.__version__)
    record = proc.read_record(record_path(layout))
    if is_current(record, version, layout.api_url, deployed_ids(client)):
        return False
    names = ", ".join(deployment_name(n) for n in DEPLOYMENTS)
    say(f"deploying {names} from {layout.root} (version {version})")
    args = [prefect_executable(), "--no-prompt", "deploy", "--all"]
    try:
        done = subprocess.run(
            args,
            cwd=layout.root,
            env=layout.env(),
            capture_output=True,
            text=True,
            timeout=DEPLOY_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ControlPlaneError(
            f"`prefect deploy --all` in {layout.root} took over {DEPLOY_TIMEOUT_S:.0f}s; is the server "
            f"at {layout.api_url} overloaded? See {layout.logs / 'server.log'}"
        ) from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        tail = " | ".join(line.strip() for line in output[-6:] if line.strip())
        raise ControlPlaneError(
            f"`prefect deploy --all` in {layout.root} failed (exit {done.returncode}): {tail}; "
            "fix prefect.yaml or the flow it names (flows/pipeline.py)"
        )
    proc.write_record(
        record_path(layout), {"version": version, "api_url": layout.api_url, "ids": deployed_ids(client)}
    )
    return True

"""The work pool and the deployments of prefect.yaml, (re)deployed only when what they come from changed.

A fingerprint of prefect.yaml, the flows' modules, the parameter models, the checkout's path and
Prefect's version is the deployments' `version` on the server (prefect.yaml takes it from
`DELIVERYPIPELINE_DEPLOYMENT_VERSION`): a warm entry point reads the three
deployments and moves on; a changed fingerprint, a missing deployment, or deployments made from
another checkout since (they run that checkout's code) runs `prefect --no-prompt deploy --all` once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from importlib.metadata import version as installed_version
from pathlib import Path

from flows.controlplane import ControlPlaneError
from flows.controlplane.api import ControlPlaneApi, NotFound
from flows.controlplane.layout import POOL, Layout, prefect_executable
from flows.keys import digest

Say = Callable[[str], None]
FLOW = "deliverypipeline"
RECOVERY = "recover/crashed-release"  # started by the server when a release run crashes
# Every deployment of prefect.yaml, by full name: the releases, one per target, and the recovery.
DEPLOYMENTS = (f"{FLOW}/local", f"{FLOW}/aws", f"{FLOW}/swarm", RECOVERY)
DEPLOY_TIMEOUT_S = 300.0
VERSION_ENV = "DELIVERYPIPELINE_DEPLOYMENT_VERSION"
# What the deployments are made from: their definitions and the flow's parameter schema.
SOURCES = (
    "prefect.yaml",
    "flows/pipeline.py",
    "flows/recovery/flow.py",
    "flows/config.py",
    "flows/targets/local/settings.py",
    "flows/targets/aws/settings.py",
    "flows/targets/swarm/settings.py",
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


def ensure_pool(client: ControlPlaneApi) -> bool:
    """Create the process pool `deliverypipeline` unless it exists; whether it was created."""
    try:
        client.read_work_pool(POOL)
        return False
    except NotFound:
        pass
    from prefect.workers.process import ProcessWorker  # slow to import: only to create the pool

    client.create_work_pool(POOL, "process", ProcessWorker.get_default_base_job_template())
    return True


def deployed_versions(client: ControlPlaneApi) -> dict[str, str | None]:
    """The `version` of each deployment on the server (None when it is missing or has none)."""
    versions: dict[str, str | None] = {}
    for name in DEPLOYMENTS:
        try:
            versions[name] = client.read_deployment_by_name(name).version
        except NotFound:
            versions[name] = None
    return versions


def is_current(versions: Mapping[str, str | None], fingerprint: str) -> bool:
    """Whether every deployment on the server was made from this fingerprint (pure)."""
    return all(versions.get(name) == fingerprint for name in DEPLOYMENTS)


def ensure_deployments(layout: Layout, client: ControlPlaneApi, say: Say) -> bool:
    """Deploy prefect.yaml's deployments from `layout.root` unless they are current; whether it deployed."""
    version = fingerprint(layout.root, installed_version("prefect"))
    if is_current(deployed_versions(client), version):
        return False
    names = ", ".join(DEPLOYMENTS)
    say(f"deploying {names} from {layout.root} (version {version})")
    args = [prefect_executable(), "--no-prompt", "deploy", "--all"]
    try:
        done = subprocess.run(
            args,
            cwd=layout.root,
            env={**layout.env(), VERSION_ENV: version},  # prefect.yaml gives it as the deployments' version
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
    return True

"""What the local target's Docker tests of claims, recovery and retention share: versions g1..g4
as registry-named images, configurations on free ports, and releasing the way the pipeline does.

The webapp image is built once; each "version" is a one-label image on top of it (distinct image
ids, instant to build), pushed to the host's registry for the retention test. The fixtures that
build them are in this folder's `conftest.py`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from flows.config import Deadlines, PipelineConfig
from flows.targets.local.containers import LABEL_TARGET
from flows.targets.local.settings import LocalSettings
from flows.targets.local.target import LocalTarget
from tests.support import free_port

REPO = Path(__file__).resolve().parents[4]
PID = str(os.getpid())
TEST_LABEL = {"deliverypipeline.test": f"guards-{PID}"}
REGISTRY = "127.0.0.1:5000"
REPOSITORY = f"{REGISTRY}/dp-guards-test-{PID}"
VERSIONS = ("g1", "g2", "g3", "g4")
EPOCH = datetime(2000, 1, 1)  # before every event
NewTarget = Callable[[PipelineConfig], LocalTarget]  # the `new_target` fixture


def make_config(**local: Any) -> PipelineConfig:
    return PipelineConfig(
        application=f"dpguards{PID}",
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        deadlines=Deadlines(ready=90),
        local=LocalSettings(
            state_dir=Path(tempfile.mkdtemp(prefix=f"dpg-{PID}-")), drain_seconds=0.2, stop_grace=2, **local
        ),
    )


def release(target: LocalTarget, version: str) -> None:
    """Deploy into whichever environment holds preprod, swap, then wait for the clean-up (as the
    release lock's exit does)."""
    envs = {env.address: env for env in target.environments()}
    preprod = envs[target.config.preprod_address].name
    prod = envs[target.config.prod_address].name
    target.deploy(preprod, version)
    target.swap(prod, preprod)
    assert target.settle()


def containers(docker_client: Any, target: LocalTarget) -> list[Any]:
    return list(
        docker_client.containers.list(all=True, filters={"label": f"{LABEL_TARGET}={target.site.identity}"})
    )


def prod_versions(target: LocalTarget, times: int) -> set[str]:
    url = target.url(target.config.prod_address)
    return {
        requests.get(url + "/", headers={"Connection": "close", "Accept": "application/json"}, timeout=10)
        .json()
        .get("version", "?")
        for _ in range(times)
    }


def answers(target: LocalTarget, address: str) -> int | None:
    """The HTTP status `/health` gets on an address, None when nothing answers."""
    try:
        url = target.url(address) + "/health"
        return requests.get(url, headers={"Connection": "close"}, timeout=5).status_code
    except requests.ConnectionError:
        return None

"""The swarm target keeps the target contract (`tests/flows/targets/contract.py`) on a real local swarm.

The folder's three-node lab and two versions (`conftest.py`), one application, edge and pair of
ports per check. Needs root, Docker and HAProxy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flows.clock import SYSTEM_CLOCK
from flows.targets.swarm.lab_plans import LabLayout
from tests.flows.targets.contract import CHECKS, Stage
from tests.flows.targets.swarm.conftest import VERSIONS, bundle_of, target_on

pytestmark = pytest.mark.docker

PID = os.getpid()


@pytest.fixture
def stage_swarm(lab: LabLayout, swarm_image: str) -> Iterator[Stage]:
    """The swarm target on the lab, with its own application, edge, ports and state dir."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"dpsws-{PID}-"))
    target = target_on(lab, state_dir)
    config = target.config
    try:
        yield Stage(
            target,
            config.prod_address,
            config.preprod_address,
            bundle_of(swarm_image),
            VERSIONS,
            SYSTEM_CLOCK,
        )
    finally:
        target.down()
        target.engine.close()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__.removeprefix("check_") for check in CHECKS])
def test_the_swarm_target_keeps_the_contract(stage_swarm: Stage, check: Callable[[Stage], None]) -> None:
    check(stage_swarm)

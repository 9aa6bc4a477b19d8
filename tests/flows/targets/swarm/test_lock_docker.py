"""The swarm's release lock on a real manager: a holder killed with SIGKILL is taken over after its lease.

Two processes, as two pipelines on two machines would be: the first takes the lock and is killed
while holding it; the second waits while the lease lasts, then takes the lock over and is told
whose release it interrupted (the `recover` step then swaps back if that run had swapped).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from flows.targets.base import LockHolder
from flows.targets.swarm.lab_plans import LabLayout
from tests.flows.targets.swarm.conftest import target_on

pytestmark = pytest.mark.docker

HOLDER = """
import sys, time
from pathlib import Path
from flows.config import PipelineConfig
from flows.targets.base import LockHolder
from flows.targets.swarm.target import SwarmTarget
config = PipelineConfig.model_validate_json(Path(sys.argv[1]).read_text())
holder = LockHolder("release v1", "run-killed", 0, "machine-a", "2026-12-01T10:00:00+00:00")
with SwarmTarget(config).lock(holder, 30, print):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_holder_is_taken_over_after_its_lease_and_named(lab: LabLayout, tmp_path: Path) -> None:
    target = target_on(
        lab, Path(tempfile.mkdtemp(prefix="dpswl-")), lock_lease=4, lock_renew=1, lock_clock_skew=1
    )
    config_file = tmp_path / "config.json"
    config_file.write_text(target.config.model_dump_json())
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(config_file)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    ) as first:
        try:
            assert first.stdout is not None
            assert "held" in first.stdout.readline()  # created the lock object: nothing logged before
            time.sleep(2)  # renewed at least once: a live holder keeps it past one lease
        finally:
            first.send_signal(signal.SIGKILL)
    lines: list[str] = []
    started = time.monotonic()
    second = LockHolder("release v2", "run-next", os.getpid(), "machine-b", "2026-12-01T10:01:00+00:00")
    with target.lock(second, 30, lines.append) as interrupted:
        waited = time.monotonic() - started
    assert interrupted is not None and (interrupted.run, interrupted.host) == ("run-killed", "machine-a")
    assert 0.5 < waited < 15, lines
    assert any("has expired: taking the lock over" in line for line in lines), lines
    with target.lock(second, 5, lines.append) as interrupted:  # freed cleanly this time
        assert interrupted is None
    target.engine.close()

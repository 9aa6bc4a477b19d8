"""The control plane for real: started from nothing, reused, a killed run Crashed and recovered from.

Each test module run gets its own state dir, PREFECT_HOME and free port, and a private local
target (free ports, temp state, its own application name); everything is stopped by pid.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.clock import poll_until
from tests.flows.controlplane.plane import CLI, RUN_URL, Plane, running_plane

pytestmark = pytest.mark.docker
DEPLOY_STEP = re.compile(r"deploy-\w+: deploying ")  # the deploy step has begun (not the deployments')


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, docker_client: object) -> Iterator[Plane]:
    """One control plane for the module, stopped (and its pids checked) at the end."""
    with running_plane(tmp_path_factory.mktemp("controlplane")) as plane:
        yield plane


def test_started_from_nothing_then_reused(plane: Plane) -> None:
    first = plane.cli("server", "start")
    assert first.returncode == 0, first.stderr
    assert "started server" in first.stderr and "started worker" in first.stderr
    again = plane.cli("server", "start")
    assert again.returncode == 0 and "started" not in again.stderr, again.stderr
    status = plane.cli("server", "status")
    assert (
        status.returncode == 0 and "answering" in status.stdout and "deliverypipeline/local" in status.stdout
    )


def test_stopped_then_started_again_it_starts_its_own_worker(plane: Plane) -> None:
    """Just after `make stop` the server still lists the stopped worker as online (its heartbeats
    are not overdue yet): reusing it would leave every run Late."""
    assert plane.cli("server", "start").returncode == 0

    def listed_online(_: object) -> bool | None:
        answer = httpx.post(f"{plane.api}/work_pools/deliverypipeline/workers/filter", json={}, timeout=10)
        return True if any(worker["status"] == "ONLINE" for worker in answer.json()) else None

    poll_until(listed_online, 90, 1, lambda _: AssertionError("the worker was never listed online"))
    assert plane.cli("server", "stop").returncode == 0
    again = plane.cli("server", "start")
    assert again.returncode == 0, again.stderr
    assert "started worker" in again.stderr and "reusing the worker" not in again.stderr, again.stderr
    worker_line = next(
        line for line in plane.cli("server", "status").stdout.splitlines() if line.startswith("worker")
    )
    assert "not running" not in worker_line, worker_line


def test_demo_path_twice_streams_logs_and_prints_an_address_that_answers(plane: Plane) -> None:
    assert plane.cli("server", "start").returncode == 0  # up already, unless this test runs alone
    for attempt in range(2):
        done = plane.demo()
        assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
        assert "started server" not in done.stderr  # the server is reused
        addresses = RUN_URL.findall(done.stdout)
        assert len(addresses) == 2 and addresses[0] == addresses[-1], done.stdout[-2000:]
        run_id, url = addresses[0]
        assert "unit tests" in done.stdout and "ended Completed" in done.stdout
        page = httpx.get(url, headers={"Accept": "text/html"}, timeout=10)  # as a browser asks
        assert page.status_code == 200 and "<html" in page.text.lower()  # the UI's page of the run
        assert plane.state(run_id) == "COMPLETED", attempt


def test_a_run_killed_mid_deploy_is_crashed_and_the_next_one_proceeds(plane: Plane, tmp_path: Path) -> None:
    plane.commit(str(time.time()))
    log = tmp_path / "run.log"
    with log.open("w") as out:
        first = subprocess.Popen(
            [*CLI, "run", "--repo", ".", "--target", "local", *plane.target],
            cwd=plane.repo, env=plane.env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not DEPLOY_STEP.search(log.read_text()):
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        run_id = RUN_URL.findall(log.read_text())[0][0]
        pid = httpx.get(f"{plane.api}/flow_runs/{run_id}", timeout=10).json()["infrastructure_pid"]
        os.kill(int(pid), signal.SIGKILL)
        killed = time.monotonic()
        assert first.wait(timeout=120) == 3, log.read_text()[-3000:]  # the exit code of a crash
        assert plane.state(run_id) == "CRASHED"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)
    done = plane.demo()
    recovered = time.monotonic() - killed
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    slot = re.search(r"(\d\d:\d\d:\d\d) \S+\s+flow: waiting for the run slot", done.stdout)
    checkout = re.search(r"(\d\d:\d\d:\d\d) \S+\s+checkout", done.stdout)
    if slot and checkout:
        waited = _seconds(checkout.group(1)) - _seconds(slot.group(1))
        assert waited <= 30, f"the next run waited {waited}s for the run slot"
    print(f"crash to next run completed: {recovered:.1f}s")


def _seconds(clock: str) -> int:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return hours * 3600 + minutes * 60 + seconds

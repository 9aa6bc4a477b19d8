"""A release killed right after its swap, and nothing else started: the control plane recovers it.

The kill is a SIGKILL of the flow-run process (its worker sees it die and marks it Crashed), then of
the worker and the flow-run process together (the keeper notices the dead worker, marks the run
Crashed and starts a worker again). Either way the server's trigger starts a run of
`recover/crashed-release`, which swaps back the unverified swap and verifies prod: within 60 s of
the kill prod serves the previous, verified version again, the recovery run is in the API, and
clients on prod saw at most 2 % of their requests fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.clock import poll_until
from tests.flows.controlplane.plane import RUN_URL, Plane, running_plane

pytestmark = pytest.mark.docker
GOAL_S = 60.0
MAX_FAILED = 0.02
CLIENTS = 8


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, docker_client: object) -> Iterator[Plane]:
    """A control plane with a first release on prod (the verified version a recovery returns to)."""
    with running_plane(tmp_path_factory.mktemp("recovery")) as plane:
        done = plane.demo()
        assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
        yield plane


class Clients:
    """`CLIENTS` keep-alive clients asking prod's /health until stopped: answers, failures, versions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers = 0
        self.failed = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.ask, daemon=True) for _ in range(CLIENTS)]

    def ask(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                try:
                    ok = client.get(self.url).status_code < 500
                except httpx.HTTPError:
                    ok = False
                with self.lock:
                    self.answers += ok
                    self.failed += not ok

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def share_failed(self) -> float:
        """The share of requests that failed so far."""
        with self.lock:
            return self.failed / max(self.answers + self.failed, 1)


def prod_version(plane: Plane) -> str | None:
    """The version prod serves now (None when it does not answer)."""
    try:
        return str(httpx.get(f"http://{plane.prod}/health", timeout=5).json()["version"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def recovery_of(plane: Plane, run_id: str) -> dict[str, object] | None:
    """The recovery run started for the crashed run `run_id`, if there is one."""
    body = {"deployments": {"name": {"any_": ["crashed-release"]}}, "sort": "EXPECTED_START_TIME_DESC"}
    runs = httpx.post(f"{plane.api}/flow_runs/filter", json=body, timeout=10).json()
    mine = [run for run in runs if run_id in str(run["parameters"].get("crashed_run"))]
    return mine[0] if mine else None


def kill_after_swap(plane: Plane, log: Path, kill_worker: bool) -> tuple[str, float]:
    """Release a new commit and SIGKILL it right after its swap; the run's id and the kill's time."""
    plane.commit(f"{time.time()}")
    with log.open("w") as out:
        release = subprocess.Popen(
            plane.demo_args(), cwd=plane.repo, env=plane.env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:

        def swapped(_: object) -> bool | None:
            assert release.poll() is None, log.read_text()[-3000:]
            return True if "prod is now" in log.read_text() else None

        poll_until(swapped, 300, 0.05, lambda _: AssertionError(log.read_text()[-3000:]))
        run_id = RUN_URL.findall(log.read_text())[0][0]
        pid = int(str(plane.run(run_id)["infrastructure_pid"]).rsplit(":", 1)[-1])
        if kill_worker:
            record = json.loads((plane.tmp / "state" / "controlplane" / "worker.json").read_text())
            os.kill(record["pid"], signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        assert release.wait(timeout=120) == 3, log.read_text()[-3000:]  # the exit code of a crash
        return run_id, killed
    finally:
        if release.poll() is None:
            release.kill()
            release.wait(timeout=30)


@pytest.mark.parametrize("kill_worker", [False, True], ids=["flow-run-process", "worker-and-flow-run"])
def test_a_release_killed_after_its_swap_is_recovered_within_a_minute(
    plane: Plane, tmp_path: Path, kill_worker: bool
) -> None:
    verified = prod_version(plane)
    assert verified is not None
    with Clients(f"http://{plane.prod}/health") as clients:
        run_id, killed = kill_after_swap(plane, tmp_path / "release.log", kill_worker)

        def recovered(_: object) -> dict[str, object] | None:
            recovery = recovery_of(plane, run_id)
            done = recovery is not None and recovery["state_type"] == "COMPLETED"
            return recovery if done and prod_version(plane) == verified else None

        def too_slow(_: object) -> AssertionError:
            return AssertionError(
                f"prod serves {prod_version(plane)} (verified: {verified}) {GOAL_S:.0f}s after the kill; "
                f"recovery run: {recovery_of(plane, run_id)}"
            )

        recovery = poll_until(recovered, GOAL_S - (time.monotonic() - killed), 0.2, too_slow)
        took = time.monotonic() - killed
    assert plane.state(run_id) == "CRASHED"
    assert isinstance(recovery, dict) and str(recovery["name"]).startswith("recover ")
    assert clients.share_failed() <= MAX_FAILED, (clients.answers, clients.failed)
    print(f"kill to verified prod: {took:.1f}s; {clients.answers} answers, {clients.failed} failed")

"""A real control plane for the Docker tests: its own state dir, free port and private local target.

Everything it starts is stopped by pid at the end (`running_plane`). Shared by the test modules
that start releases on it and kill them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e.servers import committed_copy
from tests.support import free_port

CLI = [sys.executable, "-m", "flows.cli.main"]
RUN_URL = re.compile(r"run ([0-9a-f-]{36}): (http://127\.0\.0\.1:\d+/runs/flow-run/[0-9a-f-]{36})")


class Plane:
    """A control plane under a temp state dir, and the commands run against it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.repo = committed_copy(tmp / "repo")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env.update(
            DELIVERY_STATE_DIR=str(tmp / "state"),
            PREFECT_PORT=str(self.port),
            DELIVERYPIPELINE_WORK_DIR=str(tmp / "work"),
            PYTHONPATH=str(self.repo),
        )
        self.prod = f"127.0.0.1:{free_port()}"
        self.target = [
            "--prod-address", self.prod,
            "--preprod-address", f"127.0.0.1:{free_port()}",
            "--state-dir", str(tmp / "target"),
            "--application", f"cp-test-{os.getpid()}",
            "--image-repository", f"deliverypipeline-test-cp-{os.getpid()}",
        ]  # fmt: skip

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run the CLI in the committed copy (what `make demo` runs), capturing its output."""
        return subprocess.run(
            [*CLI, *args], cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def demo_args(self) -> list[str]:
        """`make demo`'s command line, on the private target."""
        return [*CLI, "run", "--repo", ".", "--ref", "HEAD", "--target", "local", *self.target]

    def demo(self) -> subprocess.CompletedProcess[str]:
        """`make demo`'s command, on the private target."""
        return self.cli(*self.demo_args()[len(CLI) :])

    def commit(self, content: str) -> None:
        """A new commit in the repository: the next release really deploys."""
        (self.repo / "CHANGE").write_text(content)
        subprocess.run(["git", "-C", str(self.repo), "add", "-A"], check=True)
        identity = ["-c", "user.name=t", "-c", "user.email=t@localhost"]
        subprocess.run(["git", "-C", str(self.repo), *identity, "commit", "-qm", content], check=True)

    def run(self, run_id: str) -> dict[str, object]:
        """A flow run as the API gives it."""
        answer: dict[str, object] = httpx.get(f"{self.api}/flow_runs/{run_id}", timeout=10).json()
        return answer

    def state(self, run_id: str) -> str:
        """A run's state type."""
        return str(self.run(run_id)["state_type"])


@contextmanager
def running_plane(tmp: Path) -> Iterator[Plane]:
    """A control plane for the block, its target taken down and everything it started stopped after."""
    plane = Plane(tmp)
    try:
        yield plane
    finally:
        # the private target's containers and proxy, then the control plane
        plane.cli("local", "down", "--purge", *plane.target[:-2], timeout=120)
        plane.cli("server", "stop", timeout=120)
        for record in (tmp / "state" / "controlplane").glob("*.json"):
            pid = re.search(r'"pid": (\d+)', record.read_text())
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(pid.group(1)), signal.SIGKILL)

"""Test helpers: run ``python -m webapp`` as a real process on a free port, and call it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_DEADLINE_S = 30.0


class WebappProcess:
    """``python -m webapp`` in a subprocess, listening on 127.0.0.1:port."""

    def __init__(self, env: Mapping[str, str]) -> None:
        """Start the server (retrying on another port if the chosen one was taken) and wait until ready."""
        for _attempt in range(3):
            self.port = free_port()
            self._log, self._err = tempfile.TemporaryFile(), ""  # noqa: SIM115 - closed by _stderr
            full = {k: v for k, v in os.environ.items() if k not in ("DELIVERY_CONF", "DELIVERY_DATA_DIR")}
            full.update(env)
            full.update({"HOST": "127.0.0.1", "PORT": str(self.port), "PYTHONPATH": str(ROOT)})
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "webapp"],
                env=full,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=self._log,  # a file, not a pipe: a chatty server never blocks on a full pipe
            )
            if self._wait_ready():
                return
            err = self.stop()
            if "address already in use" not in err:
                raise RuntimeError(f"webapp did not start (exit {self.proc.returncode}):\n{err}")
        raise RuntimeError("webapp did not start: no free port after 3 attempts")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _ = self.get("/health")
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def get(self, path: str = "/", accept: str = "application/json") -> tuple[int, bytes]:
        """One request on a new connection: (status, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Accept": accept})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def call(self) -> int:
        """Count one call and return its number."""
        status, body = self.get("/")
        assert status == 200, body
        return int(json.loads(body)["calls"])

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no final snapshot."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._stderr()

    def stop(self) -> str:
        """SIGTERM and wait; return what the process wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return self._stderr()

    def _stderr(self) -> str:
        """What the process wrote to stderr (the file is read and closed once the process ended)."""
        if not self._log.closed:
            self._log.seek(0)
            self._err = self._log.read().decode(errors="replace")
            self._log.close()
        return self._err


def hammer(port: int, requests: int) -> list[int]:
    """Send ``requests`` counted calls on one keep-alive connection; return the numbers shown."""
    numbers: list[int] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        for _ in range(requests):
            conn.request("GET", "/", headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, body
            numbers.append(int(json.loads(body)["calls"]))
    finally:
        conn.close()
    return numbers


def run_module(env: Mapping[str, str], *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``python -m webapp ARGS`` (expected to exit by itself) with ``env`` added."""
    full = {k: v for k, v in os.environ.items() if k not in ("DELIVERY_CONF", "DELIVERY_DATA_DIR")}
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "webapp", *args],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

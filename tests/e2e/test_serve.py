"""`make serve` (scripts/serve.sh): refuses without a secret; starts all four parts; Ctrl-C stops them all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows.webhook.signature import sign
from tests.e2e.servers import ROOT, free_port, prefect_env, stop

SERVE = str(ROOT / "scripts" / "serve.sh")


def test_refuses_to_start_without_a_webhook_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DELIVERY_WEBHOOK_SECRET"}
    env["DELIVERY_STATE_DIR"] = str(tmp_path / "state")
    done = subprocess.run(["bash", SERVE], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "DELIVERY_WEBHOOK_SECRET is not set" in done.stderr
    assert not (tmp_path / "state").exists()  # nothing was started or created


def test_refuses_a_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        env = {
            **os.environ,
            "DELIVERY_WEBHOOK_SECRET": "x",
            "PREFECT_PORT": str(busy.getsockname()[1]),
            "DELIVERY_STATE_DIR": str(tmp_path / "state"),
            "VENV": sys.prefix,  # the running interpreter's venv, wherever the checkout is
        }
        done = subprocess.run(
            ["bash", SERVE], env=env, capture_output=True, text=True, timeout=30, check=False
        )
    assert done.returncode == 2
    assert "already listens on 127.0.0.1:" in done.stderr
    assert "started" not in done.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.docker
def test_serves_server_deployments_worker_and_receiver_until_interrupted(tmp_path: Path) -> None:
    prefect_port, webhook_port = free_port(), free_port()
    env = prefect_env(
        tmp_path / "unused-home",  # serve.sh sets PREFECT_HOME under the state dir
        None,
        DELIVERY_WEBHOOK_SECRET="serve-secret",
        PREFECT_PORT=str(prefect_port),
        WEBHOOK_PORT=str(webhook_port),
        DELIVERY_STATE_DIR=str(tmp_path / "state"),
        PREFECT_UI_ENABLED="false",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            ["bash", SERVE], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        while "serve: ready:" not in log.read_text():
            assert serve.poll() is None, f"serve.sh exited early:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"serve.sh not ready in time:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        api = f"http://127.0.0.1:{prefect_port}/api"
        for name in ("local", "aws"):
            assert httpx.get(f"{api}/deployments/name/deliverypipeline/{name}", timeout=10).status_code == 200
        assert (tmp_path / "state" / "prefect" / "prefect.db").exists()
        workers = httpx.post(f"{api}/work_pools/deliverypipeline/workers/filter", json={}, timeout=10).json()
        assert len(workers) == 1
        body = b'{"zen": "Design for failure."}'
        ping = httpx.post(
            f"http://127.0.0.1:{webhook_port}/webhooks/github",
            content=body,
            headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(b"serve-secret", body)},
            timeout=10,
        )
        assert ping.status_code == 200

        pids = [int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", log.read_text())]
        assert len(pids) == 3
        serve.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the script
        assert serve.wait(timeout=60) == 130
        assert [pid for pid in pids if _alive(pid)] == []
        assert "serve: stopped" in log.read_text()
    finally:
        stop(serve)

"""`make serve` (scripts/serve.sh): refuses without a secret; starts all four parts; Ctrl-C stops them all,
flow runs in progress included."""

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
from tests.e2e.servers import ROOT, WITH_CTRL_C, api_post, prefect_env, stop
from tests.support import free_port

SERVE = str(ROOT / "scripts" / "serve.sh")


def test_refuses_to_start_without_a_webhook_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DELIVERY_WEBHOOK_SECRET"}
    env["DELIVERY_STATE_DIR"] = str(tmp_path / "state")
    done = subprocess.run(["bash", SERVE], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "DELIVERY_WEBHOOK_SECRET is not set" in done.stderr
    assert not (tmp_path / "state").exists()  # nothing was started or created


@pytest.mark.slow  # starts processes and waits on them
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
    """Whether `pid` runs (a zombie waiting to be reaped has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(child) for child in done.stdout.split()]


def _start_a_harmless_run(api: str, tmp_path: Path) -> str:
    """A run of deliverypipeline/local on a target of its own (free ports, temp state); stopped early."""
    deployment = httpx.get(f"{api}/deployments/name/deliverypipeline/local", timeout=10).json()
    config = {
        "application": f"serve-test-{os.getpid()}",
        "prod_address": f"127.0.0.1:{free_port()}",
        "preprod_address": f"127.0.0.1:{free_port()}",
        "image_repository": f"deliverypipeline-test-serve-{os.getpid()}",
        "local": {"state_dir": str(tmp_path / "target-state")},
    }
    created = api_post(
        f"{api}/deployments/{deployment['id']}/create_flow_run", {"parameters": {"config": config}}
    )
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    return run_id


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
        DELIVERYPIPELINE_WORK_DIR=str(tmp_path / "work"),  # where a flow run checks out
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [*WITH_CTRL_C, "bash", SERVE],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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
            headers={
                "X-GitHub-Event": "ping",
                "X-Hub-Signature-256": sign(b"serve-secret", body),
                "Content-Type": "application/json",  # as GitHub sends it
            },
            timeout=10,
        )
        assert ping.status_code == 200
        assert f"→ deliverypipeline/local on {api}" in log.read_text()  # the receiver's target

        pids = [int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", log.read_text())]
        assert len(pids) == 4  # the server, the worker, its keeper and the receiver
        # A flow run in progress runs in a session of its own: Ctrl-C must stop it too.
        run_id = _start_a_harmless_run(api, tmp_path)
        worker = pids[1]
        deadline = time.monotonic() + 90
        while httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state_type"] != "RUNNING":
            assert time.monotonic() < deadline, f"the flow run never ran:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        runs = _children(worker)
        assert runs, "the worker runs no flow-run process"
        os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C delivers to the terminal's process group
        try:  # each part gets its stop grace (SIGTERM, then SIGKILL): bounded, if slow on a busy machine
            assert serve.wait(timeout=120) == 130
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve.sh did not stop within 120 s of Ctrl-C:\n{log.read_text()[-4000:]}")
        assert [pid for pid in pids + runs if _alive(pid)] == []
        assert "serve: stopped" in log.read_text()
    finally:
        if serve.poll() is None:  # one SIGTERM, then time to stop its flow runs, worker and server
            os.killpg(serve.pid, signal.SIGTERM)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(serve)

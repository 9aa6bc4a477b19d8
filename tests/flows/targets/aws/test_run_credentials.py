"""The caller's AWS credentials reach a run on a real control plane, and nothing else keeps them.

A Prefect server and worker are started from a shell that holds AWS keys (as `make demo` from
such a shell would), then `deliverypipeline run --target aws` is submitted from shells with and
without keys. The EB-compatible stand-in is moto's server in this process, behind a recorder of
the access key each request was signed with. The run is given a ref that does not exist, so it
stops at the checkout right after the preflight: the preflight is what reaches the stand-in.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.servers import committed_copy
from tests.flows.targets.aws.eb_world import APPLICATION, BUCKET, NODE_1, NODE_2, PREPROD, PROD, REGION
from tests.support import free_port

pytestmark = pytest.mark.docker  # starts a Prefect server, a worker and an AWS stand-in

CLI = [sys.executable, "-m", "flows.cli.main"]
STACK = "64bit Amazon Linux 2023 v4.4.1 running Docker"
LONG_TERM_KEY = "AKIALONGTERMCALLER01"
LONG_TERM_SECRET = "long-term-secret-of-the-caller-0123456789"
# What moto's STS answers GetSessionToken with (fixed in moto/sts/responses.py).
SESSION_KEY = "AKIAIOSFODNN7EXAMPLE"
SESSION_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
SESSION_TOKEN_START = "AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT"
REGISTRY_PASSWORD = "registry-password-of-the-caller-9876"
SIGNED = re.compile(r"Credential=([A-Z0-9]+)/\d+/[^/]+/([a-z0-9-]+)/")


class StandIn:
    """moto's server on 127.0.0.1, recording (access key, service, action) of every request."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        moto = DomainDispatcherApplication(create_backend_app)
        self.seen: list[tuple[str, str]] = []

        def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            signed = SIGNED.search(environ.get("HTTP_AUTHORIZATION", ""))
            if signed:
                self.seen.append((signed.group(1), signed.group(2)))
            return moto(environ, start_response)

        self.server = make_server("127.0.0.1", 0, recording, True, request_handler=MotoRequestHandler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keys_for(self, service: str) -> set[str]:
        """The access keys that signed requests to `service`."""
        return {key for key, name in self.seen if name == service}

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()


class Plane:
    """A control plane under a temp state dir, started from a shell holding long-term AWS keys."""

    def __init__(self, tmp: Path, stand_in: StandIn) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.repo = committed_copy(tmp / "repo")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "DELIVERY_"))}
        self.env = base | {
            "DELIVERY_STATE_DIR": str(tmp / "state"),
            "PREFECT_PORT": str(self.port),
            "DELIVERYPIPELINE_WORK_DIR": str(tmp / "work"),
            "PYTHONPATH": str(self.repo),
            # the hosts' own chain finds nothing: no files, no instance metadata
            "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        self.keys = {
            "AWS_ACCESS_KEY_ID": LONG_TERM_KEY,
            "AWS_SECRET_ACCESS_KEY": LONG_TERM_SECRET,
            "DELIVERY_REGISTRY_USER": "ci",
            "DELIVERY_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
        }
        self.config = tmp / "aws.toml"
        self.config.write_text(
            f'application = "{APPLICATION}"\nenvironments = ["{NODE_1}", "{NODE_2}"]\n'
            f'prod_address = "{PROD}"\npreprod_address = "{PREPROD}"\n'
            f'[aws]\nregion = "{REGION}"\nbucket = "{BUCKET}"\nendpoint_url = "{stand_in.url}"\n'
        )

    def cli(self, *args: str, keys: bool = False, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """The CLI in the copy, from a shell with (`keys`) or without the long-term keys (and a
        registry login)."""
        env = self.env | (self.keys if keys else {})
        return subprocess.run(
            [*CLI, *args], cwd=self.repo, env=env, capture_output=True, text=True, timeout=timeout
        )

    def run_aws(self, keys: bool) -> subprocess.CompletedProcess[str]:
        """`deliverypipeline run --target aws` of a ref that does not exist (it stops after preflight)."""
        return self.cli(
            "run", "--target", "aws", "--config", str(self.config), "--ref", "no-such-ref",
            "--no-require-approval", keys=keys,
        )  # fmt: skip

    def worker_pid(self) -> int:
        record = json.loads((self.tmp / "state" / "controlplane" / "worker.json").read_text())
        return int(record["pid"])

    def run_blocks(self) -> list[str]:
        body = {"block_documents": {"name": {"like_": "run-"}}}
        answer = httpx.post(f"{self.api}/block_documents/filter", json=body, timeout=10)
        return [row["name"] for row in answer.json()]


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    """The EB-compatible stand-in with the application, its two environments and the bucket."""
    server = StandIn()
    # moto keeps its accounts per process: an earlier test of this session may have made them
    httpx.post(f"{server.url}/moto-api/reset", timeout=10).raise_for_status()
    options: dict[str, Any] = {"region_name": REGION, "endpoint_url": server.url}
    session = boto3.session.Session(aws_access_key_id="setup", aws_secret_access_key="setup")
    eb = session.client("elasticbeanstalk", **options)
    eb.create_application(ApplicationName=APPLICATION)
    for name in (NODE_1, NODE_2):
        eb.create_environment(ApplicationName=APPLICATION, EnvironmentName=name, SolutionStackName=STACK)
    s3: Any = session.client("s3", **options)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    server.seen.clear()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, stand_in: StandIn) -> Iterator[Plane]:
    """The control plane, started from the shell with keys; stopped (by pid) at the end."""
    tmp = tmp_path_factory.mktemp("aws-credentials")
    plane = Plane(tmp, stand_in)
    try:
        started = plane.cli("server", "start", keys=True)
        assert started.returncode == 0, started.stderr
        yield plane
    finally:
        plane.cli("server", "stop", timeout=120)
        for record in (tmp / "state" / "controlplane").glob("*.json"):
            pid = re.search(r'"pid": (\d+)', record.read_text())
            if pid:
                with suppress(ProcessLookupError):
                    os.killpg(int(pid.group(1)), signal.SIGKILL)


def test_the_worker_never_inherits_the_credentials_of_the_shell_that_started_it(plane: Plane) -> None:
    environ = Path(f"/proc/{plane.worker_pid()}/environ").read_bytes()
    assert b"PREFECT_API_URL=" in environ  # it is the worker's environment
    for secret in (LONG_TERM_KEY, LONG_TERM_SECRET, REGISTRY_PASSWORD):
        assert secret.encode() not in environ, secret


def test_without_credentials_preflight_says_whose_environment_it_searched(
    plane: Plane, stand_in: StandIn
) -> None:
    done = plane.run_aws(keys=False)

    assert done.returncode == 1, f"{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    assert "AWS credentials: none in this shell; the run uses its worker host's own" in done.stderr
    assert "no AWS credentials found in the environment of the run's process (pid " in done.stdout
    assert f"started by the worker, pid {plane.worker_pid()}, on host" in done.stdout, done.stdout[-3000:]
    assert "deliverypipeline run --target aws` from a shell that has them" in done.stdout
    assert stand_in.keys_for("elasticbeanstalk") == set()  # nothing signed: nothing was sent


def test_the_callers_keys_reach_the_run_short_lived_and_leave_nothing_behind(
    plane: Plane, stand_in: StandIn
) -> None:
    done = plane.run_aws(keys=True)

    output = f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert done.returncode == 1, output  # the ref does not exist: the checkout fails, after preflight
    assert "handed to the run: a session token for 240 min (STS GetSessionToken)" in done.stderr, output
    assert "registry credentials of this shell handed to the run" in done.stderr, output
    assert "the aws target is ready for a release" in done.stdout, output
    # the stand-in: the long-term keys signed only the STS exchange, the run signed with the session's
    assert stand_in.keys_for("sts") == {LONG_TERM_KEY}
    assert stand_in.keys_for("elasticbeanstalk") == {SESSION_KEY} == stand_in.keys_for("s3")
    assert plane.run_blocks() == []  # the run's block was removed when it ended
    # no secret anywhere in Prefect's database (parameters, logs, artifacts, blocks)
    database = b"".join(path.read_bytes() for path in (plane.tmp / "state" / "prefect").glob("prefect.db*"))
    assert database, "the control plane's database was not found"
    for secret in (LONG_TERM_SECRET, SESSION_SECRET, SESSION_TOKEN_START, REGISTRY_PASSWORD):
        assert secret.encode() not in database, secret
    assert b"credentials_block" in database and b"registry_secret_block" in database  # names only
    environ = Path(f"/proc/{plane.worker_pid()}/environ").read_bytes()
    assert SESSION_KEY.encode() not in environ and LONG_TERM_KEY.encode() not in environ

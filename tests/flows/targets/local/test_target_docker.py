"""The local target end to end: real Docker, real HAProxy, the real webapp image, zero failed requests.

Two versions of the repository's image are built (only the build-info layer differs). A
bounded loop of 16 keep-alive clients hits the prod address while versions are deployed and the
addresses swapped; every request must succeed, and the call counter must carry on throughout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from flows.cli import local as local_cli
from flows.config import Deadlines, PipelineConfig
from flows.release.decisions import Readiness, assign_roles, readiness, swap_pair
from flows.targets.base import GREEN, GREY, MISSING, READY, UPDATING, Target
from flows.targets.local.errors import ContainerError
from flows.targets.local.settings import LocalSettings
from flows.targets.local.target import LocalTarget
from tests.support import free_port

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[4]
PID = str(os.getpid())
TEST_LABEL = {"deliverypipeline.test": PID}
V1, V2 = "1.0.0-localtest", "2.0.0-localtest"


@pytest.fixture(scope="module")
def images(docker_client: Any) -> Iterator[dict[str, str]]:
    """Two versions of the repository's webapp image, built locally (never pulled)."""
    from flows.image.wheelhouse import ensure_wheelhouse

    ensure_wheelhouse(REPO)
    tags = {}
    for version in (V1, V2):
        tag = f"dp-local-test-{PID}:{version}"
        docker_client.images.build(
            path=str(REPO), tag=tag, buildargs={"VERSION": version}, rm=True, labels=TEST_LABEL
        )
        tags[version] = tag
    yield tags
    for tag in tags.values():
        try:
            docker_client.images.remove(tag)
        except Exception as exc:  # still used by a container left by a failure: say so, don't mask
            print(f"could not remove image {tag}: {exc}")


@pytest.fixture
def config() -> Iterator[PipelineConfig]:
    """A configuration on free ports with a short state directory (the admin socket path is bounded)."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"dpl-{PID}-"))
    yield PipelineConfig(
        application=f"dplocaltest{PID}",
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        deadlines=Deadlines(ready=60),
        local=LocalSettings(state_dir=state_dir, drain_seconds=0.5, stop_grace=10),
    )
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def target(config: PipelineConfig, docker_client: Any, images: dict[str, str]) -> Iterator[LocalTarget]:
    """A local target whose containers carry this test process's label; torn down afterwards."""
    made = LocalTarget(config, client=docker_client, extra_labels=TEST_LABEL)
    for version, tag in images.items():
        made.register_version(version, {"AWSEBDockerrunVersion": "1", "Image": {"Name": tag}})
    yield made
    made.down(purge=True)
    for container in docker_client.containers.list(
        all=True, filters={"label": f"deliverypipeline.test={PID}"}
    ):
        container.remove(force=True)


def get_json(url: str) -> dict[str, Any]:
    response = requests.get(url, headers={"Accept": "application/json", "Connection": "close"}, timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def by_name(target: LocalTarget) -> dict[str, Any]:
    return {env.name: env for env in target.environments()}


@dataclass
class LoadLoop:
    """Bounded keep-alive clients on one URL, recording every failure."""

    url: str
    threads: int = 16
    per_thread: int = 600
    max_seconds: float = 180
    pause: float = 0.01
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        end = time.monotonic() + self.max_seconds
        with requests.Session() as session:
            for _ in range(self.per_thread):
                if self._stop.is_set() or time.monotonic() > end:
                    return
                try:
                    response = session.get(self.url, headers={"Accept": "application/json"}, timeout=10)
                    version = response.json()["version"] if response.status_code == 200 else None
                    error = None if version else f"HTTP {response.status_code}: {response.text[:100]}"
                except (requests.RequestException, ValueError, KeyError) as exc:
                    version, error = None, f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if error is None and version is not None:
                        self.ok += 1
                        self.versions[version] += 1
                    else:
                        self.failures.append(error or "?")
                time.sleep(self.pause)

    def __enter__(self) -> LoadLoop:
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    @property
    def total(self) -> int:
        return self.ok + len(self.failures)


def release(target: LocalTarget, version: str) -> None:
    """What the pipeline does: pick preprod by address, deploy, check ready, swap."""
    config = target.config
    roles = assign_roles(target.environments(), config.prod_address, config.preprod_address)
    target.deploy(roles.preprod.name, version)
    preprod = by_name(target)[roles.preprod.name]
    assert readiness(preprod, version, config.accepted_health) is Readiness.READY, preprod
    assert get_json(target.url(config.preprod_address) + "/health")["version"] == version
    target.swap(*swap_pair(roles))
    assert target.settle()  # the replaced container retired, as the release lock's exit waits for


def test_releases_and_swaps_fail_no_request(target: LocalTarget, docker_client: Any) -> None:
    config = target.config
    prod_url = target.url(config.prod_address)
    preprod_url = target.url(config.preprod_address)
    assert isinstance(target, Target)
    started = datetime.now(UTC)

    # An empty target: both Missing, the first environment holds prod.
    envs = by_name(target)
    assert [(e.address, e.status, e.health, e.version) for e in envs.values()] == [
        (config.prod_address, MISSING, GREY, None),
        (config.preprod_address, MISSING, GREY, None),
    ]

    # First release: deploy into preprod (node-2), swap; node-1 stays Missing on preprod (503).
    release(target, V1)
    envs = by_name(target)
    assert (envs["node-2"].address, envs["node-2"].version, envs["node-2"].status, envs["node-2"].health) == (
        config.prod_address,
        V1,
        READY,
        GREEN,
    )
    assert (envs["node-1"].address, envs["node-1"].status) == (config.preprod_address, MISSING)
    assert get_json(prod_url + "/health")["version"] == V1
    assert requests.get(preprod_url + "/health", timeout=10).status_code == 503
    # Swapping back (what a failed prod verification does) restores the empty prod, and again.
    target.swap("node-1", "node-2")
    assert requests.get(prod_url + "/health", timeout=10).status_code == 503
    assert get_json(preprod_url + "/health")["version"] == V1
    assert any("prod answers 503" in e.message for e in target.events("node-1", started))
    target.swap("node-2", "node-1")
    assert get_json(prod_url + "/health")["version"] == V1
    assert by_name(target)["node-2"].address == config.prod_address
    calls_before = get_json(prod_url + "/")["calls"]

    with LoadLoop(prod_url + "/") as load:
        time.sleep(1)
        release(target, V2)  # node-1 gets v2 and prod
        assert get_json(prod_url + "/health")["version"] == V2
        release(target, V1)  # node-2 (just off prod, under load) is replaced, then swapped in
        assert get_json(prod_url + "/health")["version"] == V1
        prod_env = assign_roles(target.environments(), config.prod_address, config.preprod_address).prod
        replaced = prod_env.details["container"]
        target.deploy(prod_env.name, V2)  # in place, behind the prod address
        # deploy returns once the new container serves; the replaced one drains in the background,
        # and is no orphan meanwhile (the next deploy or `local status` must not cut its drain short)
        assert docker_client.containers.get(replaced).status == "running"
        assert replaced not in [orphan.name for orphan in target.orphans()]
        assert get_json(prod_url + "/health")["version"] == V2
        time.sleep(1)
        assert target.settle()
        assert not docker_client.containers.list(all=True, filters={"name": f"^/{replaced}$"})
        assert target.site.state.read().retiring == {}  # its mark goes with it
    print(
        f"\nload on prod during 3 releases and an in-place deploy: {load.total} requests, "
        f"{len(load.failures)} failures, versions {dict(load.versions)}"
    )
    assert load.failures == [], load.failures[:5]
    assert load.total >= 1000
    assert set(load.versions) == {V1, V2}

    # The shared store carried the counter and the deploy history through every container.
    page = get_json(prod_url + "/")
    assert page["calls"] >= calls_before + load.ok + 1
    assert [row["version"] for row in page["deploy_history"]][:4] == [V2, V1, V2, V1]

    # Status: node-1 on preprod with v2, node-2 on prod with v2 (replaced in place); one container each.
    envs = by_name(target)
    assert {(e.name, e.address, e.version, e.status, e.health) for e in envs.values()} == {
        ("node-1", config.preprod_address, V2, READY, GREEN),
        ("node-2", config.prod_address, V2, READY, GREEN),
    }
    running = docker_client.containers.list(filters={"label": f"deliverypipeline.test={PID}"})
    assert sorted(c.name for c in running) == sorted(e.details["container"] for e in envs.values())
    messages = [event.message for event in target.events("node-2", started)]
    assert any(m.startswith("created container") for m in messages)
    assert any(m.startswith("retired container") for m in messages)
    assert any("healthy" in m for m in messages)

    # The proxy is reused, and a restarted proxy comes back with the same roles.
    pid = target.haproxy.pid()
    target.ensure_proxy()
    assert target.haproxy.pid() == pid
    assert target.haproxy.stop()
    assert target.haproxy.pid() is None
    target.ensure_proxy()
    assert get_json(prod_url + "/health")["version"] == V2
    assert by_name(target) == envs


def test_a_version_that_never_gets_healthy_leaves_the_old_one_serving(
    target: LocalTarget, config: PipelineConfig, docker_client: Any
) -> None:
    release(target, V1)
    broken = LocalTarget(
        config.model_copy(
            update={
                "deadlines": Deadlines(ready=5),
                "local": config.local.model_copy(update={"health_path": "/no-such-page"}),
            }
        ),
        client=docker_client,
        extra_labels=TEST_LABEL,
    )
    errors: list[Exception] = []

    def deploy() -> None:
        try:
            broken.deploy("node-2", V2)  # node-2 holds prod
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=deploy)
    worker.start()
    seen: set[tuple[str, str | None]] = set()
    while worker.is_alive():
        node = by_name(target)["node-2"]
        seen.add((node.status, node.details.get("updating_to")))
        time.sleep(0.2)
    worker.join()
    assert (UPDATING, V2) in seen  # the pipeline, polling, sees the deploy under way
    assert len(errors) == 1 and isinstance(errors[0], ContainerError)
    assert "not healthy after 5s" in str(errors[0])
    assert get_json(target.url(config.prod_address) + "/health")["version"] == V1
    envs = by_name(target)
    assert (envs["node-2"].version, envs["node-2"].status, envs["node-2"].health) == (V1, READY, GREEN)
    running = docker_client.containers.list(all=True, filters={"label": f"deliverypipeline.test={PID}"})
    assert [c.name for c in running] == [envs["node-2"].details["container"]]
    assert any(e.severity == "ERROR" for e in target.events("node-2", datetime(2000, 1, 1)))


def test_cli_status_and_down(
    target: LocalTarget, config: PipelineConfig, docker_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    release(target, V1)
    import argparse

    parser = argparse.ArgumentParser()
    local_cli.add_parser(parser.add_subparsers())
    options = [
        "--state-dir",
        str(config.local.state_dir),
        "--application",
        config.application,
        "--prod-address",
        config.prod_address,
        "--preprod-address",
        config.preprod_address,
    ]
    args = parser.parse_args(["local", "status", *options])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "proxy: haproxy running" in out
    container = by_name(target)["node-2"].details["container"]
    assert f"node-2       {config.prod_address}  {V1}  {container}  Ready    Green" in out
    assert f"node-1       {config.preprod_address}  -" in out

    pid = target.haproxy.pid()
    args = parser.parse_args(["local", "down", *options])
    assert args.func(args) == 0
    assert f"removed container {container}" in capsys.readouterr().out
    assert docker_client.containers.list(all=True, filters={"label": f"deliverypipeline.test={PID}"}) == []
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(requests.ConnectionError):
        requests.get(target.url(config.prod_address), timeout=5)
    assert (config.local.state_dir / "data" / "delivery.sqlite3").exists()  # data kept without --purge

    args = parser.parse_args(["local", "down", "--purge", *options])
    assert args.func(args) == 0
    assert f"removed {config.local.state_dir / 'data'}" in capsys.readouterr().out
    assert not config.local.state_dir.exists()


def environ_of(pid: int) -> dict[str, str]:
    """A process's initial environment, as /proc shows it."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_the_proxy_and_the_containers_get_none_of_the_run_s_environment(
    target: LocalTarget, docker_client: Any, images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {"PREFECT__FLOW_RUN_ID": "6d3c1a4e-run", "AWS_SECRET_ACCESS_KEY": "worker-secret"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    release(target, V1)  # the proxy and the container start from this process
    proxy_pid = target.haproxy.pid()
    assert proxy_pid is not None
    assert environ_of(proxy_pid) == {}

    container = docker_client.containers.get(by_name(target)["node-2"].details["container"])
    image_env = set(docker_client.images.get(images[V1]).attrs["Config"]["Env"])
    assert set(container.attrs["Config"]["Env"]) == image_env | {"DELIVERY_CONF=/app/application.conf"}
    seen = environ_of(container.attrs["State"]["Pid"])
    assert seen["DELIVERY_CONF"] == "/app/application.conf"
    assert not set(secrets) & set(seen), seen

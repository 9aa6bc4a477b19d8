"""The webapp on PostgreSQL when the database fails: at start, while serving, and killed under load.

Each test that stops or kills the server gets a cluster of its own (the session's cluster is
shared by the other tests).
"""

from __future__ import annotations

import http.client
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flows.servers import postgres
from flows.servers.postgres import Cluster, ClusterSpec
from tests.support import free_port
from tests.webapp.servers import WebappProcess, run_module
from tests.webapp.test_processes import PASSWORD_ENV, postgresql_conf
from webapp.state import CALLS
from webapp.stores.postgresql import PostgresStore

pytestmark = pytest.mark.slow  # processes and a server killed under load


@pytest.fixture
def own_cluster(postgres_cluster: Cluster) -> Iterator[Cluster]:
    """A cluster of this test's own (the session's proves the binaries are there), stopped after."""
    directory = Path(tempfile.mkdtemp(prefix="deliverypipeline-pg-"))
    spec = ClusterSpec(directory, free_port(), secrets.token_urlsafe(12))
    cluster = postgres.start(spec, postgres_cluster.bindir)
    yield cluster
    cluster.stop()
    shutil.rmtree(directory, ignore_errors=True)


def env_for(cluster: Cluster, tmp_path: Path) -> tuple[dict[str, str], str]:
    url = cluster.create_database("delivery")
    return {"DELIVERY_CONF": str(postgresql_conf(tmp_path, url)), PASSWORD_ENV: cluster.spec.password}, url


def test_unreachable_database_at_start_is_one_line_and_a_failed_start(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    conf = tmp_path / "delivery.toml"
    conf.write_text(f'[store]\nkind = "postgresql"\nuri = "postgresql://app@127.0.0.1:{port}/dp"\n')
    done = run_module({"DELIVERY_CONF": str(conf), "PGPASSWORD": "s3cret"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"webapp: cannot start: {conf}: [store] uri: cannot connect to PostgreSQL")
    assert f"127.0.0.1:{port}" in lines[0] and "check that the server runs" in lines[0]
    assert "s3cret" not in done.stderr


@dataclass
class Load:
    """Clients that keep calling through errors, recording what each answer said."""

    port: int
    acknowledged: list[int] = field(default_factory=list)
    refused: int = 0  # 503: not recorded, no number shown
    broken: int = 0  # no answer
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        while not self.stop.is_set():
            try:
                conn.request("GET", "/", headers={"Accept": "application/json"})
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
                with self.lock:
                    self.broken += 1
                continue
            with self.lock:
                if response.status == 200:
                    self.acknowledged.append(int(json.loads(body)["calls"]))
                else:
                    assert response.status == 503, body
                    self.refused += 1
        conn.close()

    def wait_for(self, acknowledged: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while len(self.acknowledged) < acknowledged and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.acknowledged) >= acknowledged, (len(self.acknowledged), self.refused)


def journaled(url: str) -> list[int]:
    store = PostgresStore(url)
    try:
        return [seq for seq, _ in store.read(CALLS, 0)]
    finally:
        store.close()


@pytest.mark.docker  # a real server
def test_lost_database_answers_503_then_serves_again_by_itself(own_cluster: Cluster, tmp_path: Path) -> None:
    env, url = env_for(own_cluster, tmp_path)
    server = WebappProcess(env)
    cluster = own_cluster
    try:
        assert [server.call() for _ in range(3)] == [1, 2, 3]
        own_cluster.stop()  # fast shutdown: the webapp's session is ended
        assert {server.get("/")[0] for _ in range(5)} == {503}  # never a number it could not store
        assert server.get("/health")[0] == 200  # the process lives on; only calls are refused
        cluster = postgres.start(own_cluster.spec, own_cluster.bindir)
        deadline = time.monotonic() + 20
        status, body = server.get("/")
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            status, body = server.get("/")
        assert status == 200, body
        assert json.loads(body)["calls"] == 4  # reconnected by itself; the refused calls took no number
    finally:
        err = server.stop()
    try:
        assert journaled(url) == [1, 2, 3, 4]
    finally:
        cluster.stop()
    assert "journal writes succeed again" in err, err


@pytest.mark.docker  # a real server
def test_kill_9_of_the_database_under_load_loses_no_acknowledged_call(
    own_cluster: Cluster, tmp_path: Path
) -> None:
    env, url = env_for(own_cluster, tmp_path)
    server = WebappProcess(env)
    load = Load(server.port)
    threads = [threading.Thread(target=load.client) for _ in range(16)]
    for thread in threads:
        thread.start()
    cluster = own_cluster
    try:
        load.wait_for(300)
        own_cluster.kill()  # the server and its backends, SIGKILL, while commits are in flight
        refused_before = load.refused
        cluster = postgres.start(own_cluster.spec, own_cluster.bindir)  # crash recovery
        load.wait_for(len(load.acknowledged) + 300)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        server.stop()
    try:
        numbers = journaled(url)
    finally:
        cluster.stop()
    assert load.refused > refused_before or load.refused > 0  # the outage was seen, as 503s
    assert len(set(load.acknowledged)) == len(load.acknowledged)  # no number shown twice
    assert set(load.acknowledged) <= set(numbers)  # every number a client saw is in the journal
    assert numbers == list(range(1, len(numbers) + 1))  # and the journal has no gaps

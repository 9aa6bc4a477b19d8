"""Real processes: blue and green on one shared store count exactly; a kill -9 loses no acknowledged call."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.webapp.conftest import POSTGRESQL
from tests.webapp.servers import WebappProcess, hammer
from webapp.service import CATCH_UP_INTERVAL_S
from webapp.state import CALLS
from webapp.stores.base import Store
from webapp.stores.leveldb import LevelDBStore
from webapp.stores.postgresql import PostgresStore
from webapp.stores.sqlite import SQLiteStore

PASSWORD_ENV = "DELIVERY_DB_PASSWORD"

pytestmark = (
    pytest.mark.slow
)  # several processes and kill -9 under load: in `make unit`, not the pipeline step

CLIENTS_PER_SERVER = 8
REQUESTS_PER_CLIENT = 60


def sqlite_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "delivery.toml"
    conf.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp_path}/journal.sqlite3"\nsnapshot_every = 100\n')
    return conf


def leveldb_conf(tmp_path: Path) -> Path:
    """LevelDB with frequent snapshots, so a kill can land during one and recovery starts from one."""
    conf = tmp_path / "delivery.toml"
    conf.write_text(f'[store]\nkind = "leveldb"\npath = "{tmp_path}/leveldb"\nsnapshot_every = 100\n')
    return conf


def postgresql_conf(tmp_path: Path, url: str) -> Path:
    """The postgresql store on ``url``, its password given through an environment variable."""
    parts = urllib.parse.urlsplit(url)
    bare = parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port}").geturl()
    conf = tmp_path / "delivery.toml"
    conf.write_text(
        f'[store]\nkind = "postgresql"\nuri = "{bare}"\n'
        f'password_env = "{PASSWORD_ENV}"\nsnapshot_every = 100\n'
    )
    return conf


def shared_env(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[dict[str, str], Store]:
    """The environment of a process on a shared store of ``kind``, and that store opened here."""
    if kind == "sqlite":
        return {"DELIVERY_CONF": str(sqlite_conf(tmp_path))}, SQLiteStore(tmp_path / "journal.sqlite3")
    url: str = request.getfixturevalue("postgres_url")
    password = urllib.parse.unquote(urllib.parse.urlsplit(url).password or "")
    env = {"DELIVERY_CONF": str(postgresql_conf(tmp_path, url)), PASSWORD_ENV: password}
    return env, PostgresStore(url)


@pytest.mark.parametrize("kind", ["sqlite", POSTGRESQL])
def test_two_processes_sharing_a_store_give_every_call_a_distinct_number(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    env, store = shared_env(kind, tmp_path, request)
    blue, green = WebappProcess(env), WebappProcess(env)
    try:
        with ThreadPoolExecutor(max_workers=2 * CLIENTS_PER_SERVER) as pool:
            jobs = [
                pool.submit(hammer, server.port, REQUESTS_PER_CLIENT)
                for server in (blue, green)
                for _ in range(CLIENTS_PER_SERVER)
            ]
            numbers = [n for job in jobs for n in job.result(timeout=120)]
        total = 2 * CLIENTS_PER_SERVER * REQUESTS_PER_CLIENT
        assert sorted(numbers) == list(range(1, total + 1))  # no gaps, no duplicates
        # each process sees the other's calls and (polled every CATCH_UP_INTERVAL_S) both starts
        time.sleep(CATCH_UP_INTERVAL_S + 0.05)
        blue_view = json.loads(blue.get("/")[1])
        green_view = json.loads(green.get("/")[1])
        assert {blue_view["calls"], green_view["calls"]} == {total + 1, total + 2}
        assert len(blue_view["deploy_history"]) == 2
    finally:
        blue.stop()
        green.stop()
    assert [seq for seq, _ in store.read(CALLS, 0)] == list(range(1, total + 3))
    store.close()


def load_until_killed(port: int, acknowledged: list[int], stop: threading.Event) -> None:
    """Keep calling until the connection breaks; record every number a response showed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        while not stop.is_set():
            conn.request("GET", "/", headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
            if response.status == 200:
                acknowledged.append(int(json.loads(body)["calls"]))
    except (OSError, http.client.HTTPException):
        return  # the server died under us: expected
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["leveldb", "sqlite"])
def test_kill_9_mid_load_loses_no_acknowledged_call(tmp_path: Path, kind: str) -> None:
    env = {"DELIVERY_CONF": str(leveldb_conf(tmp_path) if kind == "leveldb" else sqlite_conf(tmp_path))}
    server = WebappProcess(env)
    acknowledged: list[int] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=load_until_killed, args=(server.port, acknowledged, stop)) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(acknowledged) < 500 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL while requests are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    assert len(acknowledged) >= 500
    assert len(set(acknowledged)) == len(acknowledged)

    restarted = WebappProcess(env)
    try:
        after_restart = restarted.call()
    finally:
        err = restarted.stop()
    assert "snapshot used" in err, err  # recovery = the snapshot taken under load + the journal after it
    store = (
        LevelDBStore(tmp_path / "leveldb") if kind == "leveldb" else SQLiteStore(tmp_path / "journal.sqlite3")
    )
    journaled = [seq for seq, _ in store.read(CALLS, 0)]
    store.close()
    assert set(acknowledged) <= set(journaled)
    assert journaled == list(range(1, len(journaled) + 1))
    # the restarted process continued right after the last journaled call: no number reused
    assert after_restart == journaled[-1] > max(acknowledged)

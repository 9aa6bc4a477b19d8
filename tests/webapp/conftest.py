"""Fixtures for the webapp tests: stores of each kind in temporary places, and a real PostgreSQL.

The PostgreSQL store runs against a throwaway cluster (flows.servers.postgres), one per test
session, with a fresh database per test. Without the server binaries the PostgreSQL cases skip
with the reason, except under CI=true, where they fail: CI must test every store.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mongomock
import pytest

from flows.servers.postgres import Cluster, ClusterSpec, PostgresError, find_bindir, start
from tests.support import free_port
from webapp.stores.base import Store
from webapp.stores.leveldb import LevelDBStore
from webapp.stores.mongodb import MongoStore
from webapp.stores.postgresql import PostgresStore
from webapp.stores.sqlite import SQLiteStore

StoreFactory = Callable[[], Store]

POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.docker)  # needs a server: not in `make unit`


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed under CI and cannot start: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster on a free port of 127.0.0.1 (password auth), stopped at the end.

    Its directory is made under /tmp directly (pytest's are private to root, and as root the
    server runs as the ``postgres`` user).
    """
    try:
        bindir = find_bindir()
    except PostgresError as exc:
        _unavailable(str(exc))
    directory = Path(tempfile.mkdtemp(prefix="deliverypipeline-pg-"))
    try:
        cluster = start(ClusterSpec(directory, free_port(), secrets.token_urlsafe(12)), bindir)
    except PostgresError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        _unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    """The URL (with its password) of a new, empty database on the session's cluster."""
    return postgres_cluster.create_database(f"t_{uuid.uuid4().hex[:16]}")


def _factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Open a store of kind ``request.param`` on the same place (database) at every call."""
    opened: list[Store] = []
    client: mongomock.MongoClient[Any] = mongomock.MongoClient()
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""

    def factory() -> Store:
        store: Store
        if request.param == "leveldb":
            store = LevelDBStore(tmp_path / "leveldb")
        elif request.param == "sqlite":
            store = SQLiteStore(tmp_path / "journal.sqlite3")
        elif request.param == "postgresql":
            store = PostgresStore(url)
        else:
            # every MongoStore on this factory talks to the same in-memory "server"
            store = MongoStore("mongodb://localhost:27017/deliverypipeline", client_class=lambda **_: client)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture(params=["leveldb", "sqlite", "mongodb", POSTGRESQL])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Every store: opens one of each kind on the same place (database) every time it is called."""
    yield from _factory(request, tmp_path)


@pytest.fixture(params=["sqlite", POSTGRESQL])
def shared_store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """The stores several processes share at once, each store object standing for one process.

    MongoDB is not here: its store keeps one connection per process (mongoengine's alias), so two
    stores in one process are not two processes; tests/webapp/test_mongodb_server.py covers it.
    """
    yield from _factory(request, tmp_path)

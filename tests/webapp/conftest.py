"""Fixtures for the webapp tests: stores of each kind in temporary places."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mongomock
import pytest

from webapp.stores.base import Store
from webapp.stores.leveldb import LevelDBStore
from webapp.stores.mongodb import MongoStore
from webapp.stores.sqlite import SQLiteStore

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["leveldb", "sqlite", "mongodb"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens a store of each kind on the same place (database) every time it is called."""
    opened: list[Store] = []
    client: mongomock.MongoClient[Any] = mongomock.MongoClient()

    def factory() -> Store:
        store: Store
        if request.param == "leveldb":
            store = LevelDBStore(tmp_path / "leveldb")
        elif request.param == "sqlite":
            store = SQLiteStore(tmp_path / "journal.sqlite3")
        else:
            # every MongoStore on this factory talks to the same in-memory "server"
            store = MongoStore("mongodb://localhost:27017/deliverypipeline", client_class=lambda **_: client)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()

"""The journal stores: LevelDB, SQLite, MongoDB (on mongomock) and PostgreSQL behave the same."""

from __future__ import annotations

import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any

import mongomock
import pytest

from tests.webapp.conftest import StoreFactory
from webapp.config import StoreConfig
from webapp.errors import StoreError
from webapp.stores import open_store
from webapp.stores.base import Store
from webapp.stores.leveldb import LevelDBStore
from webapp.stores.mongodb import JournalEntry, MongoStore
from webapp.stores.sqlite import SQLiteStore


def test_append_numbers_each_stream_from_one_without_gaps(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.head("calls") == 0
    assert list(store.append("calls", [b"a", b"b", b"c"])) == [1, 2, 3]
    assert list(store.append("starts", [b"s"])) == [1]
    assert list(store.append("calls", [b"d"])) == [4]
    assert (store.head("calls"), store.head("starts")) == (4, 1)
    assert list(store.read("calls", 0)) == [(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")]
    assert list(store.read("calls", 2)) == [(3, b"c"), (4, b"d")]
    assert list(store.read("starts", 0)) == [(1, b"s")]
    assert list(store.read("nothing", 0)) == []


def test_a_batch_repeating_one_event_reads_back_entry_by_entry(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert list(store.append("calls", [b"x"])) == [1]
    assert list(store.append("calls", [b"call"] * 5)) == [2, 3, 4, 5, 6]
    assert list(store.append("calls", [b"y", b"y", b"z"])) == [7, 8, 9]
    assert list(store.read("calls", 3)) == [
        (4, b"call"),
        (5, b"call"),
        (6, b"call"),
        (7, b"y"),
        (8, b"y"),
        (9, b"z"),
    ]
    assert store.head("calls") == 9


def test_snapshot_slot_keeps_the_latest(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.load_snapshot() is None
    store.save_snapshot(b"one")
    store.save_snapshot(b"two")
    assert store.load_snapshot() == b"two"


def test_journal_and_snapshot_survive_reopening(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.append("calls", [b"a", b"b"])
    store.save_snapshot(b"snap")
    store.close()
    again = store_factory()
    assert list(again.read("calls", 0)) == [(1, b"a"), (2, b"b")]
    assert again.load_snapshot() == b"snap"
    assert list(again.append("calls", [b"c"])) == [3]


def test_leveldb_refuses_a_second_process_on_the_same_directory(tmp_path: Path) -> None:
    first = LevelDBStore(tmp_path / "db", where="DELIVERY_DATA_DIR=/x")
    try:
        with pytest.raises(StoreError, match=r"DELIVERY_DATA_DIR=/x: .* in use by another process"):
            LevelDBStore(tmp_path / "db", where="DELIVERY_DATA_DIR=/x")
        assert list(first.append("calls", [b"a"])) == [1]
    finally:
        first.close()


class _RecordingDB:
    """Wraps a plyvel.DB and records the keyword arguments of every ``write_batch``."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.batches: list[dict[str, Any]] = []

    def write_batch(self, **kwargs: Any) -> Any:
        self.batches.append(kwargs)
        return self._db.write_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_leveldb_append_is_one_synced_write_batch(tmp_path: Path) -> None:
    store = LevelDBStore(tmp_path / "db")
    recording = _RecordingDB(store._db)
    store._db = recording
    assert list(store.append("calls", [b"a", b"b", b"c"])) == [1, 2, 3]
    assert recording.batches == [{"sync": True}]
    store.close()


def test_mongo_append_asks_for_journaled_write_concern(
    mongo: MongoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mongoengine.queryset.base import BaseQuerySet

    concerns: list[Any] = []
    original = BaseQuerySet.insert

    def insert(self: Any, docs: Any, *args: Any, **kwargs: Any) -> Any:
        concerns.append(kwargs.get("write_concern"))
        return original(self, docs, *args, **kwargs)

    monkeypatch.setattr(BaseQuerySet, "insert", insert)
    assert list(mongo.append("calls", [b"a", b"b"])) == [1, 2]
    assert concerns == [{"j": True}]
    mongo.close()


def test_leveldb_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=r"cfg: \[store\] path: cannot create the LevelDB directory"):
        LevelDBStore(tmp_path / "file" / "db", where="cfg: [store] path")


def test_sqlite_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=r"cfg: \[store\] path: cannot create the directory"):
        SQLiteStore(tmp_path / "file" / "j.sqlite3", where="cfg: [store] path")


def test_sqlite_on_a_non_database_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"cfg: \[store\] path: cannot use .* as the SQLite journal"):
        SQLiteStore(path, where="cfg: [store] path")


def test_sqlite_uses_wal_and_full_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "j.sqlite3")
    store.append("calls", [b"a"])
    # synchronous is a per-connection setting: ask the store's own connection (2 = FULL)
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    store.close()
    db = sqlite3.connect(tmp_path / "j.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_shared_stores_appending_concurrently_get_distinct_numbers(
    shared_store_factory: StoreFactory,
) -> None:
    stores = [shared_store_factory() for _ in range(3)]  # three processes on one journal
    numbers: list[int] = []
    lock = threading.Lock()

    def work(store: Store) -> None:
        for _ in range(40):
            got = store.append("calls", [b"x", b"y"])
            with lock:
                numbers.extend(got)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(numbers) == list(range(1, 241))
    assert stores[0].head("calls") == 240
    assert [seq for seq, _ in stores[1].read("calls", 0)] == list(range(1, 241))


@pytest.fixture
def mongo() -> MongoStore:
    client: mongomock.MongoClient[Any] = mongomock.MongoClient()
    return MongoStore("mongodb://localhost/deliverypipeline", client_class=lambda **_: client)


def test_mongo_append_retries_after_numbers_taken_by_another_process(mongo: MongoStore) -> None:
    assert list(mongo.append("calls", [b"a", b"b"])) == [1, 2]
    # another process took number 4 between our head read and insert: 3 lands, the rest move up
    JournalEntry(stream="calls", sequence=4, payload=b"other", batch="other").save()
    original_head = mongo.head
    heads = iter([2])
    mongo.head = lambda stream: next(heads, None) or original_head(stream)  # type: ignore[method-assign]
    assert list(mongo.append("calls", [b"c", b"d", b"e"])) == [3, 5, 6]
    assert [seq for seq, _ in mongo.read("calls", 0)] == [1, 2, 3, 4, 5, 6]
    mongo.close()


def test_mongo_unique_index_on_stream_and_sequence(mongo: MongoStore) -> None:
    info = JournalEntry._get_collection().index_information()
    assert any(
        spec.get("unique") and [k for k, _ in spec["key"]] == ["stream", "sequence"] for spec in info.values()
    )
    mongo.close()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("mongodb://", "is not a valid MongoDB URI"),
        ("mongodb://localhost:27017", "names no database"),
    ],
)
def test_mongo_bad_uri_is_a_clear_error(uri: str, message: str) -> None:
    with pytest.raises(StoreError, match=rf"cfg: \[store\] uri: .*{message}"):
        MongoStore(uri, where="cfg: [store] uri")


def test_open_store_picks_the_configured_kind(tmp_path: Path) -> None:
    for kind, path, cls in (
        ("leveldb", tmp_path / "l", LevelDBStore),
        ("sqlite", tmp_path / "s.db", SQLiteStore),
    ):
        store = open_store(StoreConfig(kind=kind, path=path))
        assert isinstance(store, cls)
        store.close()


def test_mongo_unreachable_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymongo.common

    import webapp.stores.mongodb as mongodb

    # While pymongo waits to select a server it re-checks every MIN_HEARTBEAT_INTERVAL (0.5 s),
    # whatever the timeout: shortened here as pymongo's own tests do (their `client_knobs`).
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.01)
    monkeypatch.setattr(mongodb, "SERVER_TIMEOUT_MS", 50)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    with pytest.raises(
        StoreError, match=r"cfg: \[store\] uri: cannot use MongoDB database dp at 127\.0\.0\.1"
    ):
        MongoStore(f"mongodb://127.0.0.1:{port}/dp", where="cfg: [store] uri")

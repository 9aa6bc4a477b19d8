"""The journal stores (LevelDB, SQLite, MongoDB, PostgreSQL) and :func:`open_store`, which picks one."""

from __future__ import annotations

from webapp.config import StoreConfig
from webapp.errors import StoreError
from webapp.stores.base import Store

__all__ = ["Store", "StoreError", "open_store"]


def open_store(config: StoreConfig) -> Store:
    """Open the store the configuration names; raise StoreError naming the setting when that fails.

    Store modules are imported lazily so a deployment only needs the driver it uses.
    """
    if config.kind == "leveldb":
        from webapp.stores.leveldb import LevelDBStore

        assert config.path is not None
        return LevelDBStore(config.path, where=config.where("path"))
    if config.kind == "sqlite":
        from webapp.stores.sqlite import SQLiteStore

        assert config.path is not None
        return SQLiteStore(config.path, where=config.where("path"))
    if config.kind == "mongodb":
        from webapp.stores.mongodb import MongoStore

        assert config.uri is not None
        return MongoStore(config.uri, where=config.where("uri"))
    if config.kind == "postgresql":
        from webapp.stores.postgresql import PostgresStore

        assert config.uri is not None
        return PostgresStore(config.uri, where=config.where("uri"), password=config.password)
    raise StoreError(f"{config.where('kind')}: unknown store kind {config.kind!r}")

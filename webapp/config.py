"""Store configuration: the TOML file named by ``DELIVERY_CONF``, or LevelDB under ``DELIVERY_DATA_DIR``.

File format::

    [store]
    kind = "sqlite"                  # "leveldb" | "sqlite" | "mongodb"
    path = "/data/delivery.sqlite3"  # sqlite: file; leveldb: directory
    uri = "mongodb://host:27017/db"  # mongodb only
    snapshot_every = 1000            # optional

Parsing is pure (:func:`parse_config`); every error names the file and the key to fix.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("leveldb", "sqlite", "mongodb")
DEFAULT_DATA_DIR = "/tmp/deliverypipeline"
DEFAULT_SNAPSHOT_EVERY = 1000
CONF_ENV = "DELIVERY_CONF"
DATA_DIR_ENV = "DELIVERY_DATA_DIR"


class ConfigError(Exception):
    """The store configuration is missing or wrong; the message names the file and key to fix."""


@dataclass(frozen=True)
class StoreConfig:
    """Which store to open and where. ``origin`` names where each setting came from (for messages)."""

    kind: str
    path: Path | None = None
    uri: str | None = None
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY
    origin: str = "defaults"
    labels: Mapping[str, str] = field(default_factory=dict)

    def where(self, key: str) -> str:
        """How to refer to setting ``key`` in a message, e.g. ``/etc/app.toml: [store] path``."""
        return self.labels.get(key, f"{self.origin}: [store] {key}")


def default_config(env: Mapping[str, str]) -> StoreConfig:
    """LevelDB in ``$DELIVERY_DATA_DIR/leveldb`` (default ``/tmp/deliverypipeline``), used without a file."""
    data_dir = env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return StoreConfig(
        kind="leveldb",
        path=Path(data_dir) / "leveldb",
        origin=f"environment (no {CONF_ENV})",
        labels={"path": f"{DATA_DIR_ENV}={data_dir}", "kind": f"default store (no {CONF_ENV})"},
    )


def parse_config(text: str, file: str) -> StoreConfig:
    """Parse and check the TOML text of config file ``file``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}); fix the syntax") from exc
    store = doc.get("store")
    if not isinstance(store, dict):
        raise ConfigError(
            f'{file}: [store] table is missing; add [store] with kind = "leveldb|sqlite|mongodb"'
        )
    unknown = sorted(set(store) - {"kind", "path", "uri", "snapshot_every"})
    if unknown:
        raise ConfigError(
            f"{file}: [store] {unknown[0]} is not a known key; use kind, path, uri, snapshot_every"
        )
    kind = _string(store, "kind", file)
    if kind not in KINDS:
        raise ConfigError(
            f"{file}: [store] kind = {kind!r} is not a known store; use one of {', '.join(KINDS)}"
        )
    snapshot_every = store.get("snapshot_every", DEFAULT_SNAPSHOT_EVERY)
    if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 1:
        raise ConfigError(f"{file}: [store] snapshot_every = {snapshot_every!r} must be a positive integer")
    path: Path | None = None
    uri: str | None = None
    if kind == "mongodb":
        uri = _string(store, "uri", file)
        if not uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError(f"{file}: [store] uri = {uri!r} must start with mongodb:// or mongodb+srv://")
    else:
        path = Path(_string(store, "path", file))
    return StoreConfig(kind=kind, path=path, uri=uri, snapshot_every=snapshot_every, origin=file)


def load_config(env: Mapping[str, str] | None = None) -> StoreConfig:
    """The store configuration for this process: the file named by ``DELIVERY_CONF``, else the default."""
    env = os.environ if env is None else env
    file = env.get(CONF_ENV)
    if not file:
        return default_config(env)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CONF_ENV}={file}: cannot read the config file ({exc})") from exc
    return parse_config(text, file)


def _string(table: Mapping[str, Any], key: str, file: str) -> str:
    value = table.get(key)
    if value is None:
        raise ConfigError(f"{file}: [store] {key} is missing")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{file}: [store] {key} = {value!r} must be a non-empty string")
    return value

"""Store configuration: the TOML file named by ``DELIVERY_CONF``, or LevelDB under ``DELIVERY_DATA_DIR``.

File format::

    [store]
    kind = "sqlite"                  # "leveldb" | "sqlite" | "mongodb" | "postgresql"
    path = "/data/delivery.sqlite3"  # sqlite: file; leveldb: directory
    uri = "mongodb://host:27017/db"  # mongodb; postgresql: "postgresql://user[:password]@host:5432/db"
    password_env = "DELIVERY_DB_PASSWORD"  # postgresql, optional: the variable holding the password
    snapshot_every = 1000            # optional

The PostgreSQL password comes from the URL in the file or from the environment variable that
``password_env`` names (which wins); it is never shown in a message or a log line.

Parsing is pure (:func:`parse_config`); every error names the file and the key to fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from webapp.errors import SettingsError

KINDS = ("leveldb", "sqlite", "mongodb", "postgresql")
KEYS = ("kind", "path", "uri", "password_env", "snapshot_every")
URI_SCHEMES = {
    "mongodb": ("mongodb://", "mongodb+srv://"),
    "postgresql": ("postgresql://", "postgres://"),
}
DEFAULT_DATA_DIR = "/tmp/deliverypipeline"
DEFAULT_SNAPSHOT_EVERY = 1000
CONF_ENV = "DELIVERY_CONF"
DATA_DIR_ENV = "DELIVERY_DATA_DIR"


@dataclass(frozen=True)
class StoreConfig:
    """Which store to open and where. ``origin`` names where each setting came from (for messages)."""

    kind: str
    path: Path | None = None
    uri: str | None = None
    password_env: str | None = None  # postgresql: the environment variable holding the password
    password: str | None = field(default=None, repr=False)  # its value, read by load_config
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
        raise SettingsError(f"{file}: not valid TOML ({exc}); fix the syntax") from exc
    store = doc.get("store")
    if not isinstance(store, dict):
        raise SettingsError(
            f'{file}: [store] table is missing; add [store] with kind = "leveldb|sqlite|mongodb"'
        )
    unknown = sorted(set(store) - set(KEYS))
    if unknown:
        raise SettingsError(f"{file}: [store] {unknown[0]} is not a known key; use {', '.join(KEYS)}")
    kind = _string(store, "kind", file)
    if kind not in KINDS:
        raise SettingsError(
            f"{file}: [store] kind = {kind!r} is not a known store; use one of {', '.join(KINDS)}"
        )
    snapshot_every = store.get("snapshot_every", DEFAULT_SNAPSHOT_EVERY)
    if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 1:
        raise SettingsError(f"{file}: [store] snapshot_every = {snapshot_every!r} must be a positive integer")
    path: Path | None = None
    uri: str | None = None
    if kind in URI_SCHEMES:
        uri = _string(store, "uri", file)
        if not uri.startswith(URI_SCHEMES[kind]):
            raise SettingsError(
                f"{file}: [store] uri = {masked(uri)!r} must start with {' or '.join(URI_SCHEMES[kind])}"
            )
    else:
        path = Path(_string(store, "path", file))
    password_env = _string(store, "password_env", file) if "password_env" in store else None
    if password_env is not None and kind != "postgresql":
        raise SettingsError(f'{file}: [store] password_env is for kind = "postgresql" only; remove it')
    config = StoreConfig(kind=kind, path=path, uri=uri, snapshot_every=snapshot_every, origin=file)
    return replace(config, password_env=password_env) if password_env else config


def load_config(env: Mapping[str, str] | None = None) -> StoreConfig:
    """The store configuration for this process: the file named by ``DELIVERY_CONF``, else the default."""
    env = os.environ if env is None else env
    file = env.get(CONF_ENV)
    if not file:
        return default_config(env)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{CONF_ENV}={file}: cannot read the config file ({exc})") from exc
    return with_password(parse_config(text, file), env)


def with_password(config: StoreConfig, env: Mapping[str, str]) -> StoreConfig:
    """``config`` with the password read from the variable its ``password_env`` names (if any)."""
    variable = config.password_env
    if not variable:
        return config
    password = env.get(variable)
    if not password:
        raise SettingsError(
            f"{config.origin}: [store] password_env = {variable!r} but {variable} is not set; "
            "set it to the database password"
        )
    return replace(config, password=password)


def masked(uri: str) -> str:
    """``uri`` with its password (if any) replaced by ``***``, for messages.

    The user part ends at the URL's last ``@``, so a password holding a raw ``/`` or ``@`` is
    masked whole too; a ``password=`` query parameter is masked as well.
    """
    scheme, separator, rest = uri.partition("://")
    if separator and "@" in rest:
        userinfo, _, hosts = rest.rpartition("@")
        user = userinfo.split(":", 1)[0]
        rest = f"{user}:***@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
    return scheme + separator + re.sub(r"(password=)[^&]*", r"\1***", rest)


def _string(table: Mapping[str, Any], key: str, file: str) -> str:
    value = table.get(key)
    if value is None:
        raise SettingsError(f"{file}: [store] {key} is missing")
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{file}: [store] {key} = {value!r} must be a non-empty string")
    return value

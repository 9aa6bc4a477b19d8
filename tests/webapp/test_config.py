"""Store configuration: the DELIVERY_CONF file, the default, and errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.config import DEFAULT_SNAPSHOT_EVERY, load_config, parse_config
from webapp.errors import SettingsError


def test_sqlite_file_is_parsed() -> None:
    config = parse_config(
        '[store]\nkind = "sqlite"\npath = "/data/x.sqlite3"\nsnapshot_every = 50\n', "c.toml"
    )
    assert (config.kind, config.path, config.snapshot_every) == ("sqlite", Path("/data/x.sqlite3"), 50)
    assert config.where("path") == "c.toml: [store] path"


def test_mongodb_file_is_parsed_with_default_snapshot_interval() -> None:
    config = parse_config('[store]\nkind = "mongodb"\nuri = "mongodb://db:27017/dp"\n', "c.toml")
    assert (config.kind, config.uri, config.snapshot_every) == ("mongodb", "mongodb://db:27017/dp", 1000)


def test_no_delivery_conf_means_leveldb_under_the_data_dir() -> None:
    config = load_config({"DELIVERY_DATA_DIR": "/srv/dp"})
    assert (config.kind, config.path) == ("leveldb", Path("/srv/dp/leveldb"))
    assert config.snapshot_every == DEFAULT_SNAPSHOT_EVERY
    assert config.where("path") == "DELIVERY_DATA_DIR=/srv/dp"
    assert load_config({}).path == Path("/tmp/deliverypipeline/leveldb")


def test_delivery_conf_file_is_read(tmp_path: Path) -> None:
    file = tmp_path / "delivery.toml"
    file.write_text(f'[store]\nkind = "leveldb"\npath = "{tmp_path}/db"\n')
    config = load_config({"DELIVERY_CONF": str(file)})
    assert (config.kind, config.path, config.origin) == ("leveldb", tmp_path / "db", str(file))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[store\n", r"c\.toml: not valid TOML"),
        ('kind = "sqlite"\n', r"c\.toml: \[store\] table is missing"),
        ('[store]\nkind = "redis"\npath = "x"\n', r"c\.toml: \[store\] kind = 'redis' is not a known store"),
        ("[store]\npath = 'x'\n", r"c\.toml: \[store\] kind is missing"),
        ('[store]\nkind = "sqlite"\n', r"c\.toml: \[store\] path is missing"),
        ('[store]\nkind = "sqlite"\npath = 3\n', r"c\.toml: \[store\] path = 3 must be a non-empty string"),
        ('[store]\nkind = "mongodb"\n', r"c\.toml: \[store\] uri is missing"),
        (
            '[store]\nkind = "mongodb"\nuri = "http://x/db"\n',
            r"c\.toml: \[store\] uri = 'http://x/db' must start",
        ),
        (
            '[store]\nkind = "sqlite"\npath = "x"\nsnapshot_every = 0\n',
            r"\[store\] snapshot_every = 0 must be",
        ),
        ('[store]\nkind = "sqlite"\npath = "x"\nsnapshot_every = true\n', r"\[store\] snapshot_every = True"),
        ('[store]\nkind = "sqlite"\npath = "x"\nsize = 1\n', r"c\.toml: \[store\] size is not a known key"),
    ],
)
def test_config_errors_name_file_and_key(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_config(text, "c.toml")


def test_unreadable_config_file_names_the_variable_and_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match=rf"DELIVERY_CONF={missing}: cannot read the config file"):
        load_config({"DELIVERY_CONF": str(missing)})


def test_postgresql_file_with_a_password_variable(tmp_path: Path) -> None:
    file = tmp_path / "delivery.toml"
    file.write_text(
        '[store]\nkind = "postgresql"\nuri = "postgresql://app@db:5432/dp"\npassword_env = "DP_PASSWORD"\n'
    )
    config = load_config({"DELIVERY_CONF": str(file), "DP_PASSWORD": "s3cret"})
    assert (config.kind, config.uri, config.password_env, config.password) == (
        "postgresql",
        "postgresql://app@db:5432/dp",
        "DP_PASSWORD",
        "s3cret",
    )
    assert "s3cret" not in repr(config)


def test_postgresql_password_variable_unset_is_named(tmp_path: Path) -> None:
    file = tmp_path / "delivery.toml"
    file.write_text(
        '[store]\nkind = "postgresql"\nuri = "postgresql://app@db/dp"\npassword_env = "DP_PASSWORD"\n'
    )
    with pytest.raises(SettingsError, match=r"password_env = 'DP_PASSWORD' but DP_PASSWORD is not set"):
        load_config({"DELIVERY_CONF": str(file)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[store]\nkind = "postgresql"\n', r"\[store\] uri is missing"),
        (
            '[store]\nkind = "postgresql"\nuri = "mysql://app:pw@db/dp"\n',
            r"uri = 'mysql://app:\*\*\*@db/dp' must start with postgresql:// or postgres://",
        ),
        (
            '[store]\nkind = "sqlite"\npath = "x"\npassword_env = "P"\n',
            r'password_env is for kind = "postgresql" only',
        ),
    ],
)
def test_postgresql_config_errors(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_config(text, "c.toml")

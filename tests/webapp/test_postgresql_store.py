"""The PostgreSQL store against a real server: schema, durability settings, faults and messages.

What every store guarantees is proved by the shared suite (test_stores.py, test_service.py,
parametrised over every store); this module covers what only PostgreSQL has.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from flows.servers.postgres import Cluster
from tests.support import free_port
from webapp.config import StoreConfig
from webapp.errors import StoreError
from webapp.stores import open_store
from webapp.stores.postgresql import SCHEMA_VERSION, PostgresStore, parse_url

pytestmark = pytest.mark.docker  # a real PostgreSQL server


def test_schema_is_created_once_by_concurrent_first_starts_and_its_version_recorded(
    postgres_url: str,
) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_one() -> None:
        barrier.wait()
        try:
            opened.append(PostgresStore(postgres_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(opened) == 6
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM journal_schema").fetchall() == [(SCHEMA_VERSION,)]
    for store in opened:
        store.close()


def test_a_newer_schema_is_refused_naming_both_versions(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO journal_schema (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this release's"):
        PostgresStore(postgres_url, where="cfg: [store] uri")


def test_commits_are_synchronous(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    assert store._connection().execute("SHOW synchronous_commit").fetchone() == ("on",)
    assert store._connection().execute("SHOW fsync").fetchone() == ("on",)
    store.close()


def test_a_lost_connection_fails_that_append_then_reconnects_without_a_gap(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    assert list(store.append("calls", [b"a", b"b"])) == [1, 2]
    backend = store._connection().info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    with pytest.raises(
        StoreError, match=r"PostgreSQL database t_\w+ at 127\.0\.0\.1:\d+: appending to calls"
    ):
        store.append("calls", [b"c"])
    assert list(store.append("calls", [b"d"])) == [3]  # a new connection; the failed append took nothing
    assert [payload for _, payload in store.read("calls", 0)] == [b"a", b"b", b"d"]
    store.close()


def test_unreachable_server_is_one_line_naming_host_and_what_to_check() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StoreError) as caught:
        PostgresStore(
            f"postgresql://app:s3cret@127.0.0.1:{port}/dp", where="/app/application.conf: [store] uri"
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"/app/application.conf: [store] uri: cannot connect to PostgreSQL database dp at 127.0.0.1:{port}"
    )
    assert "check that the server runs and listens on that address" in message
    assert "s3cret" not in message


def test_a_wrong_password_is_named_without_showing_it(postgres_cluster: Cluster, postgres_url: str) -> None:
    wrong = postgres_url.replace(postgres_cluster.spec.password, "not-the-password")
    with pytest.raises(StoreError, match="password authentication failed") as caught:
        PostgresStore(wrong)
    assert "not-the-password" not in str(caught.value)


def test_the_configured_password_replaces_the_urls(postgres_cluster: Cluster, postgres_url: str) -> None:
    without = postgres_url.replace(f":{postgres_cluster.spec.password}@", "@")
    config = StoreConfig(kind="postgresql", uri=without, password=postgres_cluster.spec.password)
    store = open_store(config)
    assert isinstance(store, PostgresStore)
    assert list(store.append("calls", [b"a"])) == [1]
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:pw@h/db", "must start with postgresql://"),
        ("postgresql://u:pw@h:5432", "names no database"),
        ("postgresql://u:pw@h:5432/db?sslmode=a=1", "extra key/value separator"),
    ],
)
def test_bad_urls_are_named_with_the_password_masked(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        PostgresStore(url, where="cfg: [store] uri")
    assert str(caught.value).startswith("cfg: [store] uri: the PostgreSQL URL ")
    assert ":pw@" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:s3c/ret@h/db", "postgresql://u:p@ss3cret@h/db", "postgresql://u@h/db?password=s3cret"],
)
def test_a_password_libpq_would_misread_is_refused_and_never_shown(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        PostgresStore(url, where="cfg: [store] uri")
    assert "s3c" not in str(caught.value)


def test_description_names_database_and_address_only() -> None:
    params, description = parse_url("postgresql://app:pw@db.example:6432/journal", password="other")
    assert description == "PostgreSQL database journal at db.example:6432"
    assert params["password"] == "other"


def test_open_store_on_a_missing_database_names_it(postgres_cluster: Cluster, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r'database "missing_db" does not exist'):
        PostgresStore(postgres_cluster.url("missing_db"))


def test_a_batch_is_one_row_and_reads_page_through_batches(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webapp.stores.postgresql as module

    monkeypatch.setattr(module, "READ_PAGE", 2)  # two batches per query
    store = PostgresStore(postgres_url)
    for size in (3, 1, 4, 2, 5):
        store.append("calls", [f"{n}".encode() for n in range(size)])
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT first_seq, last_seq FROM journal ORDER BY last_seq").fetchall() == [
            (1, 3), (4, 4), (5, 8), (9, 10), (11, 15)
        ]  # fmt: skip
    for after in (0, 2, 4, 7, 10, 14, 15):
        assert [seq for seq, _ in store.read("calls", after)] == list(range(after + 1, 16))
    assert [payload for _, payload in store.read("calls", 8)] == [b"0", b"1", b"0", b"1", b"2", b"3", b"4"]
    store.close()

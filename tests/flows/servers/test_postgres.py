"""The throwaway PostgreSQL cluster: pure commands and configuration, then a real server."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from flows.servers import postgres
from flows.servers.postgres import ClusterSpec, PostgresError
from tests.support import free_port

SPEC = ClusterSpec(Path("/srv/pg"), 6543, "p@ss:w/rd", host="10.0.9.1", allow_from=("10.0.9.0/24",))


def test_initdb_makes_a_password_protected_utf8_cluster() -> None:
    assert postgres.initdb_command(Path("/usr/lib/postgresql/15/bin"), SPEC, Path("/srv/pg/pw")) == [
        "/usr/lib/postgresql/15/bin/initdb",
        "--pgdata",
        "/srv/pg/data",
        "--username",
        "deliverypipeline",
        "--pwfile",
        "/srv/pg/pw",
        "--auth-local=scram-sha-256",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
    ]


def test_server_listens_on_the_given_address_with_synced_commits() -> None:
    settings = postgres.server_settings(SPEC)
    for line in ("listen_addresses = '10.0.9.1'", "port = 6543", "fsync = on", "synchronous_commit = on"):
        assert line in settings.splitlines()


def test_hba_admits_loopback_and_the_given_networks_by_password_only() -> None:
    assert postgres.hba_text(SPEC).splitlines()[1:] == [
        "host all all 127.0.0.1/32 scram-sha-256",
        "host all all ::1/128 scram-sha-256",
        "host all all 10.0.9.0/24 scram-sha-256",
    ]


def test_url_quotes_the_password_and_uses_the_listen_address() -> None:
    assert postgres.url(SPEC, "dp") == "postgresql://deliverypipeline:p%40ss%3Aw%2Frd@10.0.9.1:6543/dp"
    wildcard = ClusterSpec(Path("/x"), 5432, "pw", host="*")
    assert postgres.url(wildcard) == "postgresql://deliverypipeline:pw@127.0.0.1:5432/postgres"
    assert postgres.url(wildcard, host="172.17.0.1").startswith(
        "postgresql://deliverypipeline:pw@172.17.0.1:"
    )


def test_missing_binaries_say_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PostgresError, match="install Debian's postgresql package"):
        postgres.find_bindir(roots=(str(tmp_path / "none"),))


@pytest.fixture
def directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="deliverypipeline-pg-test-"))  # traversable by the postgres user
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bindir() -> Path:
    """The server binaries; without them the test skips saying so, or fails under CI=true."""
    try:
        return postgres.find_bindir()
    except PostgresError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.mark.docker
def test_a_cluster_starts_keeps_its_data_across_a_kill_and_stops_by_pid(
    directory: Path, bindir: Path
) -> None:
    spec = ClusterSpec(directory, free_port(), secrets.token_urlsafe(12))
    cluster = postgres.start(spec, bindir)
    try:
        url = cluster.create_database("kept")
        assert cluster.create_database("kept") == url  # idempotent
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (n int)")
            conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(url.replace(spec.password, "wrong"), connect_timeout=5).close()
        cluster.kill()
        assert cluster.process.returncode is not None
        cluster = postgres.start(spec, bindir)  # crash recovery on the same directory
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT n FROM t").fetchall() == [(1,)]
    finally:
        cluster.stop()
    assert cluster.process.returncode == 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()


@pytest.mark.docker
def test_a_server_refusing_this_host_fails_at_once_naming_the_rules(
    directory: Path, bindir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ClusterSpec(directory, free_port(), "pw")
    postgres.initialise(spec, bindir)
    (spec.data_dir / "pg_hba.conf").write_text("host all all 10.255.255.0/24 scram-sha-256\n")  # not us
    monkeypatch.setattr(postgres, "initialise", lambda _spec, _bindir: None)  # keep those rules
    with pytest.raises(PostgresError, match=r"refuses this host's connection .*no pg_hba.conf entry"):
        postgres.start(spec, bindir)

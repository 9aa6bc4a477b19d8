"""PostgreSQL journal (psycopg 3): one database shared by any number of processes on any hosts.

Tables (created on first start under an advisory lock, so concurrent starts are safe; the schema
version is recorded in ``journal_schema`` so a later release can migrate):

- ``journal (stream, first_seq, last_seq, payloads)``: the entries, one row per appended batch
  (entries ``first_seq`` .. ``last_seq``), keyed by ``(stream, last_seq)``;
- ``journal_heads (stream, seq)``: each stream's highest number;
- ``journal_snapshot``: one row, the latest snapshot.

An append is one statement, so one transaction: it raises the stream's head by the batch size
(the row lock on the head orders appenders of every process, and a rolled-back append gives its
numbers back, so there are no gaps and no overlaps) and inserts the batch as one row under the
numbers it took: one heap tuple and one index entry per group commit, whatever its size, so the
commit writes and syncs little. A batch that repeats one event (the service's counted calls) sends
that event once and the server builds the array (``array_fill``): the client adapts one value, not
one per call. Commits are synced (``synchronous_commit = on``): an
acknowledged append survives a crash of the server.

A lost connection makes the call that saw it fail with StoreError (the service answers 503 and
never shows a number that was not stored); the next call connects again.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import conninfo

from webapp.config import masked
from webapp.errors import StoreError

SCHEMA_VERSION = 1
SCHEMA_LOCK = 0x6A6F75726E616C  # pg_advisory_xact_lock key held while the schema is created
CONNECT_TIMEOUT_S = 5
RECONNECT_PAUSE_S = 0.5  # after a failed connect, calls fail at once for this long: no connection storm
READ_PAGE = 1000  # batches per query when reading
WRITERS = 2  # appends in flight at once, one connection each: the head's row lock orders them
# (two overlap the round trips; more make smaller batches, so more commits for the server's CPU)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS journal_schema ("
    " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS journal_heads (stream text PRIMARY KEY, seq bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS journal ("
    " stream text NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL, payloads bytea[] NOT NULL,"
    " PRIMARY KEY (stream, last_seq), CHECK (last_seq = first_seq + cardinality(payloads) - 1))",
    "CREATE TABLE IF NOT EXISTS journal_snapshot ("
    " id smallint PRIMARY KEY CHECK (id = 1), data bytea NOT NULL,"
    " saved_at timestamptz NOT NULL DEFAULT now())",
)

_APPEND = """
WITH head AS (
    INSERT INTO journal_heads AS h (stream, seq) VALUES (%(stream)s, %(count)s)
    ON CONFLICT (stream) DO UPDATE SET seq = h.seq + EXCLUDED.seq
    RETURNING seq
)
INSERT INTO journal (stream, first_seq, last_seq, payloads)
SELECT %(stream)s, head.seq - %(count)s + 1, head.seq, {payloads} FROM head
RETURNING last_seq
"""
APPEND = _APPEND.format(payloads="%(payloads)s")
APPEND_REPEATED = _APPEND.format(payloads="array_fill(%(payload)s::bytea, ARRAY[%(count)s])")


def _one_line(exc: BaseException) -> str:
    """libpq's messages span lines ("connection failed: ...\\n\\tIs the server running ..."): join them."""
    return re.sub(r"\s+", " ", str(exc)).strip()


def parse_url(url: str, password: str | None = None) -> tuple[dict[str, Any], str]:
    """The connection parameters of ``url`` (``password`` added when given) and a description without
    the password; raise ValueError when the URL is not a PostgreSQL connection URL."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError("must start with postgresql://")
    userinfo = url.partition("://")[2].rpartition("@")[0]
    if "/" in userinfo or "@" in userinfo:
        raise ValueError(
            "has a raw '/' or '@' in its user or password: percent-encode it (%2F, %40) "
            "or give the password apart (password = ... or password_env = ...)"
        )
    try:
        params: dict[str, Any] = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(_one_line(exc)) from exc
    if not params.get("dbname"):
        raise ValueError("names no database; add one, e.g. postgresql://user@host:5432/deliverypipeline")
    if password is not None:
        params["password"] = password
    where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
    return params, f"PostgreSQL database {params['dbname']} at {where}"


class PostgresStore:
    """Journal in a PostgreSQL database; see the module docstring."""

    shared = True
    writers = WRITERS

    def __init__(self, url: str, where: str = "uri", password: str | None = None) -> None:
        """Connect to the database of ``url`` and create the schema if missing.

        ``password`` (from the config file or an environment variable) overrides one in the URL;
        neither appears in any message.
        """
        try:
            self._params, self.description = parse_url(url, password)
        except ValueError as exc:
            raise StoreError(f"{where}: the PostgreSQL URL {masked(url)} {exc}") from exc
        self._where = where
        self._local = threading.local()  # each thread its own connection (a connection runs one statement)
        self._open: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._failed: tuple[float, StoreError] | None = None  # when the last connect failed, and how
        try:
            self._create_schema(self._connection())
        except psycopg.Error as exc:
            self.close()
            raise StoreError(
                f"{where}: cannot use {self.description} ({_one_line(exc)}); "
                "check the server and the user's rights on the database"
            ) from exc
        except BaseException:
            self.close()
            raise

    def _connection(self) -> psycopg.Connection[Any]:
        """This thread's open connection, or a new one (after a lost connection, the next call reconnects)."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            conn.close()
            with self._lock:
                if conn in self._open:
                    self._open.remove(conn)
            self._local.conn = None
        if self._failed is not None and time.monotonic() - self._failed[0] < RECONNECT_PAUSE_S:
            raise self._failed[1]  # a server starting up is not flooded with connection attempts
        try:
            conn = psycopg.connect(
                **self._params, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="webapp"
            )
        except psycopg.Error as exc:
            error = StoreError(
                f"{self._where}: cannot connect to {self.description} ({_one_line(exc)}); check that the "
                "server runs and listens on that address, that its pg_hba.conf admits this host, and "
                "the user and password"
            )
            self._failed = (time.monotonic(), error)
            raise error from exc
        self._failed = None
        conn.execute("SET synchronous_commit = on")  # durable when acknowledged, whatever the server default
        self._local.conn = conn
        with self._lock:
            self._open.append(conn)
        return conn

    def _create_schema(self, conn: psycopg.Connection[Any]) -> None:
        """Create the tables once, whoever starts first; refuse a schema newer than this release."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT max(version) FROM journal_schema").fetchone()
            found = row[0] if row else None
            if found is not None and found > SCHEMA_VERSION:
                raise StoreError(
                    f"{self._where}: {self.description} has journal schema version {found}, newer than "
                    f"this release's {SCHEMA_VERSION}; release a newer version or point at another database"
                )
            conn.execute(
                "INSERT INTO journal_schema (version) VALUES (%s) ON CONFLICT DO NOTHING", (SCHEMA_VERSION,)
            )

    def _fetch(self, what: str, query: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement on this thread's connection and return its rows; a failure is a StoreError."""
        try:
            return self._connection().execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"{self.description}: {what} failed ({_one_line(exc)})") from exc

    def head(self, stream: str) -> int:
        """The highest sequence number in ``stream`` (0 when empty), as committed by any process."""
        rows = self._fetch(
            f"reading the head of {stream}", "SELECT seq FROM journal_heads WHERE stream = %s", (stream,)
        )
        return int(rows[0][0]) if rows else 0

    def read(self, stream: str, after: int) -> Iterator[tuple[int, bytes]]:
        """Entries of ``stream`` after sequence ``after``, in order (fetched a page of batches at a time)."""
        while True:
            rows = self._fetch(
                f"reading {stream}",
                "SELECT first_seq, payloads FROM journal WHERE stream = %s AND last_seq > %s "
                "ORDER BY last_seq LIMIT %s",
                (stream, after, READ_PAGE),
            )
            for first, payloads in rows:
                for seq, payload in enumerate(payloads, start=int(first)):
                    if seq > after:
                        yield seq, bytes(payload)
                after = int(first) + len(payloads) - 1
            if len(rows) < READ_PAGE:
                return

    def append(self, stream: str, payloads: Sequence[bytes]) -> Sequence[int]:
        """One synced transaction: take the stream's next ``len(payloads)`` numbers, insert the batch."""
        if not payloads:
            return range(0)
        first = payloads[0]
        params: dict[str, Any] = {"stream": stream, "count": len(payloads)}
        if all(payload == first for payload in payloads):
            statement, params["payload"] = APPEND_REPEATED, first
        else:
            statement, params["payloads"] = APPEND, list(payloads)
        rows = self._fetch(f"appending to {stream}", statement, params)
        last = int(rows[0][0])
        return range(last - len(payloads) + 1, last + 1)

    def load_snapshot(self) -> bytes | None:
        """The latest snapshot, or None."""
        rows = self._fetch("reading the snapshot", "SELECT data FROM journal_snapshot WHERE id = 1", ())
        return bytes(rows[0][0]) if rows else None

    def save_snapshot(self, data: bytes) -> None:
        """Replace the snapshot (a synced commit)."""
        self._fetch(
            "saving a snapshot",
            "INSERT INTO journal_snapshot (id, data) VALUES (1, %s) "
            "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, saved_at = now() RETURNING id",
            (data,),
        )

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()

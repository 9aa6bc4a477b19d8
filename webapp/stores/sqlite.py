"""SQLite journal (stdlib sqlite3) in WAL mode: several processes on one host share one file.

Appends run ``BEGIN IMMEDIATE`` (one writer at a time across processes), read the stream's
highest sequence, insert the batch after it and commit with ``synchronous=FULL``, so each event
gets a distinct, gap-free number and is on disk when ``append`` returns. Blocking calls: the
service runs them off the event loop, always from one thread at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from webapp.errors import StoreError

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " stream TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,"
    " PRIMARY KEY (stream, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL)",
)
BUSY_TIMEOUT_MS = 30_000
SNAPSHOTS_KEPT = 3


class SQLiteStore:
    """Journal in one SQLite file; see the module docstring."""

    shared = True
    writers = 1

    def __init__(self, path: Path, where: str = "path") -> None:
        """Open (creating if needed) the database file ``path``; ``where`` names the setting for messages."""
        self.description = f"SQLite at {path}"
        self._where = where
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{where}: cannot create the directory for {path} ({exc})") from exc
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{where}: cannot open the SQLite file {path} ({exc})") from exc
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(
                    f"{where}: {path} cannot use WAL mode (got {mode!r}); use a local filesystem"
                )
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            for statement in SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"{where}: cannot use {path} as the SQLite journal ({exc})") from exc

    def head(self, stream: str) -> int:
        """The highest sequence number in ``stream`` (0 when empty), as committed by any process."""
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE stream = ?", (stream,)
        ).fetchone()
        return int(row[0])

    def read(self, stream: str, after: int) -> Iterator[tuple[int, bytes]]:
        """Entries of ``stream`` after sequence ``after``, in order."""
        cursor = self._db.execute(
            "SELECT seq, payload FROM events WHERE stream = ? AND seq > ? ORDER BY seq", (stream, after)
        )
        try:
            yield from cursor
        finally:
            cursor.close()

    @contextmanager
    def _immediate(self, failed: str, hint: str = "") -> Iterator[None]:
        """The block as one ``BEGIN IMMEDIATE`` transaction: committed (synced) at its end, rolled
        back if it raises; a SQLite error is a `StoreError` saying what ``failed``, then ``hint``."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"{self.description}: {failed} ({exc}){hint}") from exc

    def append(self, stream: str, payloads: Sequence[bytes]) -> Sequence[int]:
        """One immediate transaction: number the batch after the current head, insert, commit (synced)."""
        with self._immediate("append failed", f"; check {self._where}"):
            first = self.head(stream) + 1
            self._db.executemany(
                "INSERT INTO events (stream, seq, payload) VALUES (?, ?, ?)",
                [(stream, first + i, payload) for i, payload in enumerate(payloads)],
            )
        return range(first, first + len(payloads))

    def load_snapshot(self) -> bytes | None:
        """The most recently saved snapshot, or None."""
        row = self._db.execute("SELECT data FROM snapshots ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else bytes(row[0])

    def save_snapshot(self, data: bytes) -> None:
        """Add a snapshot and drop all but the last few."""
        with self._immediate("saving a snapshot failed"):
            cursor = self._db.execute("INSERT INTO snapshots (data) VALUES (?)", (data,))
            newest = cursor.lastrowid or 0
            self._db.execute("DELETE FROM snapshots WHERE id <= ?", (newest - SNAPSHOTS_KEPT,))

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

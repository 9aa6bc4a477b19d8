"""LevelDB journal (plyvel): the default store, for one process per directory.

Keys are ``j<stream>\\0<seq as 8 bytes big-endian>`` so a prefix iterator returns a stream in
order; a batch of events is one ``write_batch(sync=True)`` (one fsync for the whole batch).
LevelDB's lock file makes a second process on the same directory fail at open, never corrupt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import plyvel

from webapp.errors import StoreError

SNAPSHOT_KEY = b"snapshot"


def _text(exc: Exception) -> str:
    """plyvel puts the LevelDB status (bytes) in args[0]; make it readable."""
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


def _prefix(stream: str) -> bytes:
    return b"j" + stream.encode() + b"\x00"


class LevelDBStore:
    """Journal in a LevelDB directory; see the module docstring for the layout."""

    shared = False
    writers = 1

    def __init__(self, path: Path, where: str = "path") -> None:
        """Open (creating if needed) the database at ``path``; ``where`` names the setting for messages."""
        self.description = f"LevelDB at {path}"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{where}: cannot create the LevelDB directory {path} ({exc})") from exc
        if not os.access(path, os.W_OK):
            raise StoreError(f"{where}: the LevelDB directory {path} is not writable")
        try:
            self._db = plyvel.DB(str(path), create_if_missing=True)
        except plyvel.IOError as exc:
            text = _text(exc)
            if "lock" in text.lower() and ("unavailable" in text or "held" in text):
                raise StoreError(
                    f"{where}: the LevelDB directory {path} is in use by another process "
                    "(LevelDB allows one process per directory; stop the other one, use another "
                    "directory, or configure the sqlite or mongodb store to share state)"
                ) from exc
            raise StoreError(f"{where}: cannot open LevelDB at {path} ({text})") from exc
        except plyvel.Error as exc:
            raise StoreError(f"{where}: cannot open LevelDB at {path} ({_text(exc)})") from exc
        self._heads: dict[str, int] = {}

    def head(self, stream: str) -> int:
        """The highest sequence number in ``stream`` (cached: this process is the only writer)."""
        if stream not in self._heads:
            last = 0
            with self._db.iterator(prefix=_prefix(stream), reverse=True, include_value=False) as it:
                for key in it:
                    last = int.from_bytes(key[-8:], "big")
                    break
            self._heads[stream] = last
        return self._heads[stream]

    def read(self, stream: str, after: int) -> Iterator[tuple[int, bytes]]:
        """Entries of ``stream`` after sequence ``after``, in order."""
        prefix = _prefix(stream)
        start = prefix + (after + 1).to_bytes(8, "big")
        with self._db.iterator(start=start, stop=prefix + b"\xff" * 9) as it:
            for key, value in it:
                yield int.from_bytes(key[-8:], "big"), value

    def append(self, stream: str, payloads: Sequence[bytes]) -> Sequence[int]:
        """Write the batch with one synced write; numbers continue from the stream's head."""
        first = self.head(stream) + 1
        prefix = _prefix(stream)
        try:
            with self._db.write_batch(sync=True) as batch:
                for offset, payload in enumerate(payloads):
                    batch.put(prefix + (first + offset).to_bytes(8, "big"), payload)
        except plyvel.Error as exc:
            raise StoreError(f"{self.description}: write failed ({_text(exc)})") from exc
        self._heads[stream] = first + len(payloads) - 1
        return range(first, first + len(payloads))

    def load_snapshot(self) -> bytes | None:
        """The latest snapshot, or None."""
        value: bytes | None = self._db.get(SNAPSHOT_KEY)
        return value

    def save_snapshot(self, data: bytes) -> None:
        """Replace the snapshot.

        Not synced on its own: LevelDB applies each write atomically, so after a crash recovery
        sees the old or the new snapshot, and the next synced journal write syncs it anyway.
        """
        try:
            self._db.put(SNAPSHOT_KEY, data)
        except plyvel.Error as exc:
            raise StoreError(f"{self.description}: saving a snapshot failed ({_text(exc)})") from exc

    def close(self) -> None:
        """Close the database and release its lock."""
        if not self._db.closed:
            self._db.close()

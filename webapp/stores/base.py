"""The journal store interface shared by the LevelDB, SQLite, MongoDB and PostgreSQL stores.

A store keeps append-only streams of opaque event payloads, each entry numbered by a
per-stream sequence (1, 2, 3, ... with no gaps), plus the latest state snapshot. ``append``
returns only once the entries are durable (synced to disk or journaled by the server), and
assigns numbers atomically even when several processes share the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol


class Store(Protocol):
    """An event journal with per-stream sequence numbers and a snapshot slot."""

    description: str
    shared: bool  # True when other processes may append to the same journal
    writers: int  # how many appends may run at once, each from its own thread (1: one at a time)

    def head(self, stream: str) -> int:
        """The highest sequence number in ``stream`` (0 when empty)."""
        ...

    def read(self, stream: str, after: int) -> Iterator[tuple[int, bytes]]:
        """Entries of ``stream`` with sequence > ``after``, in order."""
        ...

    def append(self, stream: str, payloads: Sequence[bytes]) -> Sequence[int]:
        """Durably append ``payloads`` to ``stream`` and return the sequence number given to each."""
        ...

    def load_snapshot(self) -> bytes | None:
        """The latest saved snapshot, or None."""
        ...

    def save_snapshot(self, data: bytes) -> None:
        """Replace the latest snapshot (the journal stays the source of truth)."""
        ...

    def close(self) -> None:
        """Release files, locks and connections."""
        ...

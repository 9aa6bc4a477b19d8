"""MongoDB journal via mongoengine: journaled writes (``j: true``), shared by any number of processes.

Entries are documents ``{stream, sequence, payload, batch}`` with a unique index on
``(stream, sequence)``. An append reads the stream's head and inserts the batch after it with an
ordered, journaled insert; if another process took one of those numbers first the insert stops
with NotUniqueError, the entries that did land (found by their batch id) keep their numbers,
and the rest are retried after the new head.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import mongoengine
from mongoengine import BinaryField, Document, IntField, StringField
from pymongo import uri_parser
from pymongo.errors import ConfigurationError, InvalidURI, PyMongoError

from webapp.errors import StoreError

ALIAS = "deliverypipeline"
WRITE_CONCERN = {"j": True}
SERVER_TIMEOUT_MS = 5000
MAX_ATTEMPTS = 1000


class JournalEntry(Document):  # type: ignore[misc]
    """One journaled event."""

    stream = StringField(required=True)
    sequence = IntField(required=True)
    payload = BinaryField(required=True)
    batch = StringField(required=True)
    meta: dict[str, Any] = {  # noqa: RUF012 - mongoengine reads this class attribute
        "db_alias": ALIAS,
        "collection": "journal",
        "indexes": [{"fields": ["stream", "sequence"], "unique": True}],
        "auto_create_index": False,
    }


class SnapshotDoc(Document):  # type: ignore[misc]
    """The latest state snapshot (one document)."""

    key = StringField(primary_key=True)
    data = BinaryField(required=True)
    meta: dict[str, Any] = {"db_alias": ALIAS, "collection": "snapshots"}  # noqa: RUF012


class MongoStore:
    """Journal in a MongoDB database; see the module docstring."""

    shared = True
    writers = 1

    def __init__(self, uri: str, where: str = "uri", client_class: Callable[..., Any] | None = None) -> None:
        """Connect to the database named in ``uri`` and ensure the unique index.

        ``client_class`` replaces pymongo's MongoClient (tests pass mongomock.MongoClient).
        """
        try:
            parsed = uri_parser.parse_uri(uri)
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            raise StoreError(f"{where}: {uri!r} is not a valid MongoDB URI ({exc})") from exc
        if not parsed.get("database"):
            raise StoreError(
                f"{where}: {uri!r} names no database; add one, e.g. mongodb://host:27017/deliverypipeline"
            )
        self.description = (
            f"MongoDB database {parsed['database']} at {', '.join(f'{h}:{p}' for h, p in parsed['nodelist'])}"
        )
        kwargs: dict[str, Any] = {
            "serverSelectionTimeoutMS": SERVER_TIMEOUT_MS,
            "uuidRepresentation": "standard",
        }
        if client_class is not None:
            kwargs["mongo_client_class"] = client_class
        mongoengine.disconnect(alias=ALIAS)
        try:
            mongoengine.connect(host=uri, alias=ALIAS, **kwargs)
            JournalEntry.ensure_indexes()
        except PyMongoError as exc:
            mongoengine.disconnect(alias=ALIAS)
            raise StoreError(
                f"{where}: cannot use {self.description} ({exc}); check the URI and the server"
            ) from exc

    def head(self, stream: str) -> int:
        """The highest sequence number in ``stream`` (0 when empty), as written by any process."""
        try:
            doc = (
                JournalEntry.objects(stream=stream)
                .order_by("-sequence")
                .only("sequence")
                .as_pymongo()
                .first()
            )
        except PyMongoError as exc:
            raise StoreError(f"{self.description}: reading the head of {stream} failed ({exc})") from exc
        return 0 if doc is None else int(doc["sequence"])

    def read(self, stream: str, after: int) -> Iterator[tuple[int, bytes]]:
        """Entries of ``stream`` after sequence ``after``, in order."""
        query = JournalEntry.objects(stream=stream, sequence__gt=after).order_by("sequence")
        try:
            for doc in query.only("sequence", "payload").as_pymongo().no_cache():
                yield int(doc["sequence"]), bytes(doc["payload"])
        except PyMongoError as exc:
            raise StoreError(f"{self.description}: reading {stream} failed ({exc})") from exc

    def append(self, stream: str, payloads: Sequence[bytes]) -> Sequence[int]:
        """Journaled ordered insert after the head; numbers taken by others are retried after the new head."""
        numbers: list[int] = []
        remaining = list(payloads)
        try:
            for _ in range(MAX_ATTEMPTS):
                if not remaining:
                    return numbers
                batch = uuid.uuid4().hex
                first = self.head(stream) + 1
                docs = [
                    JournalEntry(stream=stream, sequence=first + i, payload=p, batch=batch)
                    for i, p in enumerate(remaining)
                ]
                try:
                    JournalEntry.objects.insert(docs, load_bulk=False, write_concern=WRITE_CONCERN)
                    numbers.extend(range(first, first + len(docs)))
                    return numbers
                except (mongoengine.NotUniqueError, mongoengine.errors.BulkWriteError) as exc:
                    # a bulk insert reports duplicates as BulkWriteError (code 11000); anything else is fatal
                    if not isinstance(exc, mongoengine.NotUniqueError) and "11000" not in str(exc):
                        raise StoreError(f"{self.description}: append failed ({exc})") from exc
                    landed = JournalEntry.objects(
                        stream=stream, sequence__gte=first, sequence__lt=first + len(docs), batch=batch
                    ).count()
                    numbers.extend(range(first, first + landed))
                    remaining = remaining[landed:]
        except PyMongoError as exc:
            raise StoreError(f"{self.description}: append failed ({exc})") from exc
        raise StoreError(f"{self.description}: gave up appending after {MAX_ATTEMPTS} numbering conflicts")

    def load_snapshot(self) -> bytes | None:
        """The latest snapshot, or None."""
        try:
            doc = SnapshotDoc.objects(key="latest").as_pymongo().first()
        except PyMongoError as exc:
            raise StoreError(f"{self.description}: reading the snapshot failed ({exc})") from exc
        return None if doc is None else bytes(doc["data"])

    def save_snapshot(self, data: bytes) -> None:
        """Replace the snapshot (journaled write)."""
        try:
            SnapshotDoc(key="latest", data=data).save(write_concern=WRITE_CONCERN)
        except PyMongoError as exc:
            raise StoreError(f"{self.description}: saving a snapshot failed ({exc})") from exc

    def close(self) -> None:
        """Drop the connection."""
        mongoengine.disconnect(alias=ALIAS)

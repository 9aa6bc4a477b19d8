"""MongoDB store against a real server (journaled writes, unique index), only when MONGODB_URI is set.

MongoDB is an optional external server, so without MONGODB_URI this module skips with that reason;
the same store code is tested on mongomock in test_stores.py. The test uses its own database
(named with the process id) and drops it afterwards.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

from webapp.state import CALLS
from webapp.stores.mongodb import ALIAS, MongoStore

URI = os.environ.get("MONGODB_URI", "")
pytestmark = pytest.mark.skipif(not URI, reason="MONGODB_URI is not set (optional external MongoDB server)")


@pytest.fixture
def store() -> Iterator[MongoStore]:
    parts = urllib.parse.urlsplit(URI)
    database = f"deliverypipeline_test_{os.getpid()}"
    opened = MongoStore(urllib.parse.urlunsplit(parts._replace(path=f"/{database}")))
    yield opened
    import mongoengine

    mongoengine.get_connection(ALIAS).drop_database(database)
    opened.close()


def test_real_server_journaled_appends_from_threads_are_exact(store: MongoStore) -> None:
    numbers: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(20):
            got = store.append(CALLS, [b"a", b"b", b"c"])
            with lock:
                numbers.extend(got)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(numbers) == list(range(1, 241))
    assert [seq for seq, _ in store.read(CALLS, 0)] == list(range(1, 241))
    store.save_snapshot(b"snap")
    assert store.load_snapshot() == b"snap"

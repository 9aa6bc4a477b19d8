"""The counter service: recovery from snapshot + journal, start records, group-committed calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.webapp.conftest import StoreFactory
from webapp import service as service_module
from webapp.buildinfo import BuildInfo
from webapp.errors import CallNotRecorded, JournalDamaged, StoreError
from webapp.service import CounterService
from webapp.state import CALLS, STARTS, CallCounted, VersionStarted, decode_event, encode_event
from webapp.stores.base import Store
from webapp.stores.leveldb import LevelDBStore

INFO = BuildInfo(version="v1.0.0", revision="a" * 40, build_time="2026-11-27T10:00:00Z")


def started(
    store: Store, host: str = "h1", snapshot_every: int = 1000, info: BuildInfo = INFO
) -> CounterService:
    service = CounterService(store, info, host, snapshot_every=snapshot_every)
    service.recover()
    service.record_start()
    return service


async def count(service: CounterService, calls: int) -> list[int]:
    await service.start()
    try:
        return list(await asyncio.gather(*(service.count_call() for _ in range(calls))))
    finally:
        await service.stop()


def test_concurrent_calls_get_distinct_numbers_and_share_writes(store_factory: StoreFactory) -> None:
    service = started(store_factory())
    numbers = asyncio.run(count(service, 200))
    assert sorted(numbers) == list(range(1, 201))
    assert service.state.calls == 200
    assert service.batches < 200  # group commit: calls waiting together shared a write
    assert service.batched_calls == 200


def test_calls_are_journaled_as_call_events(store_factory: StoreFactory) -> None:
    service = started(store_factory(), host="box")
    asyncio.run(count(service, 3))
    store = store_factory()
    events = [decode_event(p) for _, p in store.read(CALLS, 0)]
    assert len(events) == 3
    assert all(isinstance(e, CallCounted) and e.host == "box" and e.version == "v1.0.0" for e in events)


def test_restart_recovers_count_and_history(store_factory: StoreFactory) -> None:
    first = started(store_factory(), host="h1", snapshot_every=7)
    asyncio.run(count(first, 20))
    second = started(store_factory(), host="h2", info=BuildInfo("v2", "b" * 40, "t"))
    assert second.state.calls == 20
    assert [(s.version, s.host) for s in second.state.history] == [("v1.0.0", "h1"), ("v2", "h2")]
    assert asyncio.run(count(second, 1)) == [21]


def test_recovery_uses_the_snapshot_then_replays_the_tail(tmp_path: Path) -> None:
    store = LevelDBStore(tmp_path / "db")
    service = started(store, snapshot_every=10)
    asyncio.run(count(service, 25))  # stop() also snapshots
    store = LevelDBStore(tmp_path / "db")
    store.append(CALLS, [b'{"type":"call","at":1,"host":"x","version":"v"}'] * 4)
    recovering = CounterService(store, INFO, "h")
    report = recovering.recover()
    assert report.snapshot_used and report.replayed == 4
    assert recovering.state.calls == 29
    store.close()


def test_damaged_snapshot_falls_back_to_replay_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LevelDBStore(tmp_path / "db")
    asyncio.run(count(started(store), 12))
    store = LevelDBStore(tmp_path / "db")
    store.save_snapshot(b"\x00\x01 damaged")
    recovering = CounterService(store, INFO, "h")
    with caplog.at_level(logging.WARNING, logger="webapp.service"):
        report = recovering.recover()
    assert report.snapshot_damaged and not report.snapshot_used
    assert report.replayed == 13  # 12 calls + 1 start: nothing lost
    assert recovering.state.calls == 12
    assert "damaged" in caplog.text and "replaying the whole journal" in caplog.text
    store.close()


@pytest.mark.parametrize(("stream", "label"), [(STARTS, "starts #1"), (CALLS, "calls #1")])
def test_undecodable_journal_entry_stops_start_up(
    store_factory: StoreFactory, stream: str, label: str
) -> None:
    store = store_factory()
    store.append(stream, [b"garbage"])
    with pytest.raises(JournalDamaged, match=label):
        CounterService(store, INFO, "h").recover()


def test_another_process_s_damaged_start_is_skipped_in_the_page(
    shared_store_factory: StoreFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "CATCH_UP_INTERVAL_S", 0.0)  # catch up at every write
    service = started(shared_store_factory(), host="blue")
    other = shared_store_factory()
    other.append(STARTS, [b"garbage"])
    other.append(STARTS, [encode_event(VersionStarted(version="v2", at="t", host="green"))])
    with caplog.at_level(logging.ERROR, logger="webapp.service"):
        assert asyncio.run(count(service, 1)) == [1]  # the first write catches up
    assert [s.host for s in service.state.history] == ["blue", "green"]
    assert "starts #2 is damaged" in caplog.text and "skipped in the page" in caplog.text


def test_two_services_on_one_shared_store_share_count_and_history(shared_store_factory: StoreFactory) -> None:
    blue = started(shared_store_factory(), host="blue")
    green = started(shared_store_factory(), host="green")

    async def both() -> list[int]:
        await blue.start()
        await green.start()
        try:
            calls = [blue.count_call() if i % 2 else green.count_call() for i in range(100)]
            return list(await asyncio.gather(*calls))
        finally:
            await blue.stop()
            await green.stop()

    assert sorted(asyncio.run(both())) == list(range(1, 101))
    third = started(shared_store_factory(), host="third")
    assert third.state.calls == 100
    assert [s.host for s in third.state.history] == ["blue", "green", "third"]
    third.close()


class FailingStore(LevelDBStore):
    """Fails every call append (a full disk, say)."""

    def append(self, stream: str, payloads: Sequence[bytes]) -> Sequence[int]:
        if stream == CALLS:
            raise StoreError("disk full")
        return super().append(stream, payloads)


def test_a_failed_write_tells_no_caller_a_number(tmp_path: Path) -> None:
    service = started(FailingStore(tmp_path / "db"))

    async def run() -> list[BaseException | int]:
        await service.start()
        try:
            return await asyncio.gather(*(service.count_call() for _ in range(5)), return_exceptions=True)
        finally:
            await service.stop()

    results = asyncio.run(run())
    assert all(isinstance(r, CallNotRecorded) for r in results)
    assert service.state.calls == 0


class FlakyStore(LevelDBStore):
    """Fails the call appends while ``down`` is set (a database that went away and came back)."""

    down = True

    def append(self, stream: str, payloads: Sequence[bytes]) -> Sequence[int]:
        if stream == CALLS and self.down:
            raise StoreError("connection lost")
        return super().append(stream, payloads)


def test_an_outage_is_one_log_line_and_its_end_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(tmp_path / "db")
    service = started(store)

    async def run() -> list[BaseException | int]:
        await service.start()
        try:
            refused: list[BaseException | int] = []
            for _ in range(4):  # four writes, one after the other, all failing
                refused += await asyncio.gather(service.count_call(), return_exceptions=True)
            store.down = False
            return [*refused, await service.count_call()]
        finally:
            await service.stop()

    with caplog.at_level(logging.WARNING, logger="webapp.service"):
        results = asyncio.run(run())
    assert all(isinstance(r, CallNotRecorded) for r in results[:4]) and results[4] == 1
    failures = [r.getMessage() for r in caplog.records if "journal write failed" in r.getMessage()]
    assert failures == ["journal write failed, 1 calls not recorded (answered 503): connection lost"]
    assert "journal writes succeed again (3 more calls not recorded)" in caplog.text

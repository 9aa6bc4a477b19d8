"""The event-sourced counter: recovery at start-up and durable, group-committed calls.

Recovery loads the latest snapshot (a damaged one is logged and ignored), replays the journal
after it and then records this start. Group commit: each call parks a future in a list; when a
write may start, everything pending goes to a journal thread as one synced append, and when it is
durable the loop resolves each future with the number the journal assigned. Calls arriving while
the writes are in flight form the next batch, so the fsync cost is shared, never skipped. A store
takes ``store.writers`` writes at once (one for the file stores; a database server orders
concurrent transactions itself and overlaps their round trips).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from webapp.buildinfo import BuildInfo, utc_now_iso
from webapp.errors import (
    CallNotRecorded,
    EventDecodeError,
    JournalDamaged,
    ServiceClosed,
    SnapshotDecodeError,
    StoreError,
)
from webapp.page import Body, html_body, json_body
from webapp.state import (
    CALLS,
    STARTS,
    CallCounted,
    State,
    VersionStarted,
    apply,
    apply_calls,
    decode_event,
    decode_snapshot,
    encode_event,
    encode_snapshot,
    is_call,
    union,
)
from webapp.stores.base import Store

log = logging.getLogger("webapp.service")

CATCH_UP_INTERVAL_S = 0.25  # how often a shared store is polled for other processes' starts
STOP_DEADLINE_S = 30.0  # longest wait at shutdown for the write in flight
FAILURE_REPORT_S = 5.0  # during an outage, one log line per this many seconds (not one per write)


@dataclass(frozen=True)
class Recovery:
    """What start-up recovery did (for the log and the benchmark)."""

    snapshot_used: bool
    snapshot_damaged: bool
    replayed: int
    seconds: float


class CounterService:
    """Owns the store and the state; counts calls durably with group commit."""

    def __init__(self, store: Store, info: BuildInfo, hostname: str, snapshot_every: int = 1000) -> None:
        """Wrap an open store; call :meth:`recover` and :meth:`record_start` before serving."""
        self.store = store
        self.info = info
        self.hostname = hostname
        self.snapshot_every = snapshot_every
        self.state = State()
        self._since_snapshot = 0
        self._last_catch_up = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests: queue.SimpleQueue[tuple[int, int, State] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._snapshot_lock = threading.Lock()
        self._pending: list[asyncio.Future[int]] = []
        self._in_flight: dict[int, list[asyncio.Future[int]]] = {}  # by write number
        self._writes = 0
        self._flush_scheduled = False
        self._idle: asyncio.Event | None = None
        self._closing = False
        self._bodies: dict[bool, Body] = {}
        self._bodies_for = -1
        self.batches = 0
        self.batched_calls = 0
        self._outage = False  # the last write failed
        self._unrecorded = 0  # calls refused since the last failure report
        self._reported_at = -FAILURE_REPORT_S

    # --- start-up (blocking; before the server accepts requests) ---

    def recover(self) -> Recovery:
        """Rebuild the state from the latest snapshot plus the journal after it."""
        started = time.perf_counter()
        state, used, damaged = State(), False, False
        raw = self.store.load_snapshot()
        if raw is not None:
            try:
                state, used = decode_snapshot(raw), True
            except SnapshotDecodeError as exc:
                damaged = True
                log.warning(
                    "snapshot in %s is damaged (%s); replaying the whole journal", self.store.description, exc
                )
        replayed = 0
        last_call = state.calls
        for seq, payload in self.store.read(CALLS, state.calls):
            if not is_call(payload):
                raise JournalDamaged(
                    f"{self.store.description}: calls #{seq} is not a call event: {payload[:80]!r}"
                )
            last_call = seq
            replayed += 1
        state = apply_calls(state, last_call)
        for seq, payload in self.store.read(STARTS, state.starts):
            try:
                state = apply(state, seq, decode_event(payload))
            except EventDecodeError as exc:
                raise JournalDamaged(f"{self.store.description}: starts #{seq}: {exc}") from exc
            replayed += 1
        self.state = state
        self._since_snapshot = replayed
        result = Recovery(used, damaged, replayed, time.perf_counter() - started)
        log.info(
            "recovered from %s: %d calls, %d starts (snapshot %s, %d events replayed in %.3f s)",
            self.store.description,
            state.calls,
            state.starts,
            "used" if used else ("damaged, ignored" if damaged else "absent"),
            replayed,
            result.seconds,
        )
        return result

    def record_start(self) -> None:
        """Journal this start of the version on this host (one deploy-history entry)."""
        event = VersionStarted(version=self.info.version, at=utc_now_iso(), host=self.hostname)
        self.store.append(STARTS, [encode_event(event)])
        self.state = self._catch_up(self.state)
        self._since_snapshot += 1
        self._maybe_snapshot(self.state)

    # --- serving ---

    async def start(self) -> None:
        """Start the journal threads (one per write the store takes at once); calls are accepted now."""
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self._threads = [
            threading.Thread(target=self._journal_thread, name=f"journal-{n}", daemon=True)
            for n in range(self.store.writers)
        ]
        for thread in self._threads:
            thread.start()

    async def count_call(self) -> int:
        """Count one call; return its number once it is durable in the journal."""
        loop = self._loop
        if self._closing or loop is None:
            raise ServiceClosed("the service is not accepting calls")
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append(future)
        if len(self._in_flight) < self.store.writers and not self._flush_scheduled:
            # flush after the callbacks already queued in this loop iteration: calls that
            # arrived together go into one write
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def body(self, as_json: bool) -> Body:
        """The page body (JSON or HTML) for the current state, cached until the history changes."""
        if self._bodies_for != self.state.starts:
            self._bodies = {
                True: json_body(self.state, self.info.version, self.hostname),
                False: html_body(self.state, self.info.version, self.hostname),
            }
            self._bodies_for = self.state.starts
        return self._bodies[as_json]

    async def stop(self) -> None:
        """Finish pending calls, stop the journal thread, snapshot and close the store."""
        self._closing = True
        if self._threads and self._idle is not None:
            try:
                await asyncio.wait_for(self._idle.wait(), STOP_DEADLINE_S)
            except TimeoutError:
                log.error("journal write still running after %.0f s at shutdown; leaving it", STOP_DEADLINE_S)
                return
            for _ in self._threads:
                self._requests.put(None)
            for thread in self._threads:
                await asyncio.to_thread(thread.join, STOP_DEADLINE_S)
            self._threads = []
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Snapshot the state (so the next start replays little) and close the store."""
        if self.batches:
            log.info(
                "journaled %d calls in %d group commits (%.1f calls per commit)",
                self.batched_calls,
                self.batches,
                self.batched_calls / self.batches,
            )
        try:
            if self._since_snapshot:
                self.store.save_snapshot(encode_snapshot(self.state))
        except StoreError as exc:
            log.warning("could not save a snapshot at shutdown: %s", exc)
        self.store.close()

    # --- group commit: the event loop side ---

    def _flush(self) -> None:
        """Hand everything pending to a journal thread as one write (at most ``store.writers`` in flight)."""
        self._flush_scheduled = False
        if len(self._in_flight) >= self.store.writers or not self._pending:
            return
        self._writes += 1
        self._in_flight[self._writes], self._pending = self._pending, []
        assert self._idle is not None
        self._idle.clear()
        self._requests.put((self._writes, len(self._in_flight[self._writes]), self.state))

    def _written(
        self, write: int, numbers: Sequence[int] | None, state: State | None, error: Exception | None
    ) -> None:
        """Event loop: a journal thread finished a write; answer its callers and start the next one."""
        batch = self._in_flight.pop(write)
        if error is not None or numbers is None or state is None:
            self._report_failure(len(batch), error)
            for future in batch:
                if not future.done():
                    future.set_exception(CallNotRecorded(str(error)))
        else:
            if self._outage:
                log.warning("journal writes succeed again (%d more calls not recorded)", self._unrecorded)
                self._outage, self._unrecorded, self._reported_at = False, 0, -FAILURE_REPORT_S
            self.state = union(self.state, state)  # writes in flight at once may finish in any order
            self.batches += 1
            self.batched_calls += len(batch)
            for future, number in zip(batch, numbers, strict=True):
                if not future.done():  # a caller that went away still has its call journaled
                    future.set_result(number)
        if self._pending:
            self._flush()
        elif not self._in_flight and self._idle is not None:
            self._idle.set()

    def _report_failure(self, calls: int, error: Exception | None) -> None:
        """Log a failed write: the first at once, then one line per FAILURE_REPORT_S with the count."""
        self._outage = True
        self._unrecorded += calls
        now = time.monotonic()
        if now - self._reported_at >= FAILURE_REPORT_S:
            log.error(
                "journal write failed, %d calls not recorded (answered 503): %s", self._unrecorded, error
            )
            self._unrecorded, self._reported_at = 0, now

    # --- group commit: the journal thread ---

    def _journal_thread(self) -> None:
        """Journal thread: perform each requested write and report back to the event loop."""
        loop = self._loop
        assert loop is not None
        while True:
            request = self._requests.get()
            if request is None:
                return
            write, count, state = request
            try:
                numbers, new_state = self._commit(count, state)
            except Exception as exc:
                loop.call_soon_threadsafe(self._written, write, None, None, exc)
            else:
                loop.call_soon_threadsafe(self._written, write, numbers, new_state, None)

    def _commit(self, count: int, state: State) -> tuple[Sequence[int], State]:
        """Writer thread: append ``count`` call events in one durable write, then fold and maybe snapshot."""
        payload = encode_event(CallCounted(at=time.time(), host=self.hostname, version=self.info.version))
        numbers = self.store.append(CALLS, [payload] * count)
        state = apply_calls(state, max(numbers))
        if self.store.shared and time.monotonic() - self._last_catch_up >= CATCH_UP_INTERVAL_S:
            state = self._catch_up(state)
        with self._snapshot_lock:
            self._since_snapshot += count
            self._maybe_snapshot(state)
        return numbers, state

    def _catch_up(self, state: State) -> State:
        """Fold starts journaled (by any process) since the state's position."""
        self._last_catch_up = time.monotonic()
        for seq, payload in self.store.read(STARTS, state.starts):
            try:
                state = apply(state, seq, decode_event(payload))
            except EventDecodeError as exc:
                log.error(
                    "%s: starts #%d is damaged (%s); skipped in the page", self.store.description, seq, exc
                )
        return state

    def _maybe_snapshot(self, state: State) -> None:
        if self._since_snapshot < self.snapshot_every:
            return
        try:
            self.store.save_snapshot(encode_snapshot(state))
            self._since_snapshot = 0
        except StoreError as exc:  # the journal still has everything; only recovery gets slower
            log.warning("could not save a snapshot: %s", exc)

"""Pure state model: events, the events -> state fold, and snapshot encoding.

The service's state is a fold over two journal streams, each with its own sequence numbers:
``calls`` (one event per counted call; the call's number *is* its sequence number, so the count is
global across processes) and ``starts`` (one event per start of a version on a host). Nothing here
does I/O, so recovery logic is testable without a store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from webapp.errors import EventDecodeError, SnapshotDecodeError

CALLS = "calls"
STARTS = "starts"
STREAMS = (CALLS, STARTS)
HISTORY_LENGTH = 10
SNAPSHOT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class CallCounted:
    """One counted call of ``GET /``, served by ``version`` on ``host`` at ``at`` (Unix seconds)."""

    at: float
    host: str
    version: str


@dataclass(frozen=True, slots=True)
class VersionStarted:
    """A start of ``version`` on ``host`` at ``at`` (ISO-8601 UTC): one deploy-history entry."""

    version: str
    at: str
    host: str


Event = CallCounted | VersionStarted


def stream_of(event: Event) -> str:
    """The journal stream an event belongs to."""
    return CALLS if isinstance(event, CallCounted) else STARTS


def encode_event(event: Event) -> bytes:
    """Serialise an event for the journal (compact JSON with a type tag)."""
    if isinstance(event, CallCounted):
        doc: dict[str, Any] = {"type": "call", "at": event.at, "host": event.host, "version": event.version}
    else:
        doc = {"type": "start", "version": event.version, "at": event.at, "host": event.host}
    return json.dumps(doc, separators=(",", ":")).encode()


CALL_TAG = b'{"type":"call"'


def is_call(data: bytes) -> bool:
    """True when a journal entry is tagged as a call event.

    A call changes the state only through its sequence number, so replaying the calls stream
    checks each entry's tag instead of parsing it (replay of a million calls stays quick).
    """
    return data.startswith(CALL_TAG)


def decode_event(data: bytes) -> Event:
    """Parse a journal entry written by :func:`encode_event`; raise EventDecodeError if it is not one."""
    try:
        doc = json.loads(data)
        kind = doc["type"]
        if kind == "call":
            return CallCounted(at=float(doc["at"]), host=str(doc["host"]), version=str(doc["version"]))
        if kind == "start":
            return VersionStarted(version=str(doc["version"]), at=str(doc["at"]), host=str(doc["host"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise EventDecodeError(f"journal entry is not an event: {data[:80]!r} ({exc})") from exc
    raise EventDecodeError(f"journal entry has unknown type {kind!r}")


@dataclass(frozen=True, slots=True)
class State:
    """What the page shows: the highest call number seen, the starts seen, and the last starts.

    ``calls`` and ``starts`` are also the journal positions the state covers, so recovery
    resumes the replay just after them.
    """

    calls: int = 0
    starts: int = 0
    history: tuple[VersionStarted, ...] = ()

    def position(self, stream: str) -> int:
        """The last sequence number of ``stream`` folded into this state."""
        return self.calls if stream == CALLS else self.starts


def apply(state: State, seq: int, event: Event) -> State:
    """Fold one journaled event (with its per-stream sequence number) into the state.

    Calls only move the count up: with several processes on one store a process may learn of
    higher numbers before lower ones, and the count is the highest number assigned.
    """
    if isinstance(event, CallCounted):
        return State(calls=max(state.calls, seq), starts=state.starts, history=state.history)
    if seq <= state.starts:
        return state
    history = (*state.history, event)[-HISTORY_LENGTH:]
    return State(calls=state.calls, starts=seq, history=history)


def apply_calls(state: State, last_seq: int) -> State:
    """Fold a batch of call events whose highest sequence number is ``last_seq`` (same result as
    folding each with :func:`apply`, without building the events)."""
    if last_seq <= state.calls:
        return state
    return State(calls=last_seq, starts=state.starts, history=state.history)


def union(a: State, b: State) -> State:
    """What two views of the journal know together: the higher call number, and the history of
    the view that has folded more starts (each view folds the starts stream in order)."""
    longer = a if a.starts >= b.starts else b
    if longer.calls >= max(a.calls, b.calls):
        return longer
    return State(calls=max(a.calls, b.calls), starts=longer.starts, history=longer.history)


def fold(state: State, entries: Iterable[tuple[str, int, Event]]) -> State:
    """Fold ``(stream, seq, event)`` entries in order."""
    for _stream, seq, event in entries:
        state = apply(state, seq, event)
    return state


def encode_snapshot(state: State) -> bytes:
    """Serialise the state with a format number and a checksum, so a damaged snapshot is detected."""
    body = {
        "format": SNAPSHOT_FORMAT,
        "calls": state.calls,
        "starts": state.starts,
        "history": [{"version": s.version, "at": s.at, "host": s.host} for s in state.history],
    }
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return json.dumps({"sha256": digest, "state": body}, separators=(",", ":"), sort_keys=True).encode()


def decode_snapshot(data: bytes) -> State:
    """Parse a snapshot written by :func:`encode_snapshot`; raise SnapshotDecodeError if it is damaged."""
    try:
        outer = json.loads(data)
        body = outer["state"]
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        if hashlib.sha256(text.encode()).hexdigest() != outer["sha256"]:
            raise SnapshotDecodeError("snapshot checksum mismatch")
        if body["format"] != SNAPSHOT_FORMAT:
            raise SnapshotDecodeError(f"unknown snapshot format {body['format']!r}")
        history = tuple(
            VersionStarted(version=str(h["version"]), at=str(h["at"]), host=str(h["host"]))
            for h in body["history"]
        )
        calls, starts = int(body["calls"]), int(body["starts"])
    except SnapshotDecodeError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SnapshotDecodeError(f"snapshot is not readable: {exc}") from exc
    if calls < 0 or starts < 0:
        raise SnapshotDecodeError("snapshot has negative positions")
    return State(calls=calls, starts=starts, history=history[-HISTORY_LENGTH:])

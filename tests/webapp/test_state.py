"""The pure state model: event encoding, the fold, snapshots."""

from __future__ import annotations

import json

import pytest

from webapp.errors import EventDecodeError, SnapshotDecodeError
from webapp.state import (
    CALLS,
    HISTORY_LENGTH,
    STARTS,
    CallCounted,
    Event,
    State,
    VersionStarted,
    apply,
    apply_calls,
    decode_event,
    decode_snapshot,
    encode_event,
    encode_snapshot,
    fold,
    is_call,
    stream_of,
    union,
)


def start(n: int) -> VersionStarted:
    return VersionStarted(version=f"v{n}", at=f"2026-01-{n:02d}T00:00:00Z", host=f"host{n}")


def test_events_round_trip_and_pick_their_stream() -> None:
    call = CallCounted(at=1.5, host="h", version="v1")
    started = start(1)
    assert decode_event(encode_event(call)) == call
    assert decode_event(encode_event(started)) == started
    assert stream_of(call) == CALLS
    assert stream_of(started) == STARTS


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"type":"other"}', b'{"type":"call","at":"x"}'])
def test_decode_event_rejects_what_is_not_an_event(raw: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode_event(raw)


def test_fold_counts_calls_by_sequence_and_keeps_last_ten_starts() -> None:
    entries: list[tuple[str, int, Event]] = [(STARTS, n, start(n)) for n in range(1, 13)]
    entries += [(CALLS, n, CallCounted(at=float(n), host="h", version="v")) for n in range(1, 6)]
    state = fold(State(), entries)
    assert state.calls == 5
    assert state.starts == 12
    assert len(state.history) == HISTORY_LENGTH
    assert [s.version for s in state.history] == [f"v{n}" for n in range(3, 13)]


def test_calls_learnt_out_of_order_never_move_the_count_down() -> None:
    state = apply(State(), 7, CallCounted(at=0, host="a", version="v"))
    state = apply(state, 5, CallCounted(at=0, host="b", version="v"))
    assert state.calls == 7
    assert apply_calls(state, 6) is state
    assert apply_calls(state, 9).calls == 9


def test_a_start_already_folded_is_not_added_twice() -> None:
    state = apply(State(), 1, start(1))
    assert apply(state, 1, start(1)) is state


def test_snapshot_round_trip() -> None:
    state = fold(State(), [(STARTS, 1, start(1)), (STARTS, 2, start(2))])
    state = apply_calls(state, 1234)
    assert decode_snapshot(encode_snapshot(state)) == state


def test_tampered_snapshot_is_detected_by_its_checksum() -> None:
    doc = json.loads(encode_snapshot(apply_calls(State(), 10)))
    doc["state"]["calls"] = 11
    with pytest.raises(SnapshotDecodeError, match="checksum"):
        decode_snapshot(json.dumps(doc).encode())


@pytest.mark.parametrize("raw", [b"", b"\x00garbage", b"[]", b'{"sha256":"x"}'])
def test_unreadable_snapshot_raises_snapshot_decode_error(raw: bytes) -> None:
    with pytest.raises(SnapshotDecodeError):
        decode_snapshot(raw)


def test_call_entries_are_recognised_by_their_tag() -> None:
    assert is_call(encode_event(CallCounted(at=1.0, host="h", version="v")))
    assert not is_call(encode_event(start(1)))
    assert not is_call(b"garbage")


def test_union_keeps_the_higher_count_and_the_longer_history() -> None:
    one = VersionStarted(version="v1", at="t1", host="a")
    two = VersionStarted(version="v2", at="t2", host="b")
    behind = State(calls=30, starts=1, history=(one,))
    ahead = State(calls=20, starts=2, history=(one, two))
    assert union(behind, ahead) == State(calls=30, starts=2, history=(one, two))
    assert union(ahead, behind) == union(behind, ahead)
    assert union(ahead, State(calls=5, starts=2, history=(one, two))) is ahead

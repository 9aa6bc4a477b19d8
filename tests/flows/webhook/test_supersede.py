"""Which push supersedes which: git ancestry and the pushes' own fields, never the order of arrival."""

from __future__ import annotations

from uuid import UUID, uuid4

from flows.controlplane.records import FlowRun, RunState
from flows.webhook.supersede import (
    Push,
    is_force_push,
    message,
    no_history,
    push_of,
    superseded_by,
    superseded_waiting,
)


class Graph:
    """A commit graph: each commit's parents; `is_ancestor` as git answers it (None for unknown commits)."""

    def __init__(self, parents: dict[str, tuple[str, ...]]) -> None:
        self.parents = parents

    def _ancestors(self, commit: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.parents[commit])
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.parents[current])
        return seen

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        if older not in self.parents or newer not in self.parents:
            return None
        return older in self._ancestors(newer)


# A - B - C - D on main; E amends D (a force-push from D to E); F is a new commit on B.
LINE = Graph({"A": (), "B": ("A",), "C": ("B",), "D": ("C",), "E": ("C",), "F": ("B",)})


def push(commit: str, before: str | None = None, forced: bool = False, state: str = "SCHEDULED") -> Push:
    return Push(uuid4(), commit, before, forced, state)


def test_a_late_push_of_an_older_commit_is_superseded_by_the_newest_push_of_the_branch() -> None:
    b, c, d = push("B", "A"), push("C", "B", state="COMPLETED"), push("D", "C", state="RUNNING")
    assert superseded_by(b, [b, c, d], None, LINE.is_ancestor) == "D"  # the newest, not just the next
    assert superseded_by(c, [b, c, d], None, LINE.is_ancestor) == "D"
    assert superseded_by(d, [b, c, d], None, LINE.is_ancestor) is None


def test_arrival_order_does_not_matter() -> None:
    pushes = [push("D", "C"), push("B", "A"), push("C", "B")]
    for order in (pushes, pushes[::-1], pushes[1:] + pushes[:1]):
        assert {p.commit: superseded_by(p, order, None, LINE.is_ancestor) for p in order} == {
            "B": "D",
            "C": "D",
            "D": None,
        }


def test_the_commit_prod_serves_or_an_ancestor_of_it_is_superseded_by_prod() -> None:
    late = push("B", "A")
    assert superseded_by(late, [late], "C", LINE.is_ancestor) == "C"  # prod is newer
    assert superseded_by(push("C", "B"), [], "C", LINE.is_ancestor) == "C"  # prod serves it already
    assert superseded_by(push("D", "C"), [], "C", LINE.is_ancestor) is None  # newer than prod
    assert superseded_by(push("D", "C"), [], None, LINE.is_ancestor) is None  # prod unknown


def test_a_force_push_is_released_over_what_it_replaced() -> None:
    amended = push("E", "D", forced=True)  # D was pushed, then amended into E
    d = push("D", "C", state="COMPLETED")
    assert superseded_by(amended, [d, amended], "D", LINE.is_ancestor) is None
    assert superseded_by(d, [d, amended], None, LINE.is_ancestor) == "E"  # D's late redelivery: E moved on
    rollback = push("B", "D", forced=True)  # reset the branch to an older commit
    assert superseded_by(rollback, [d, rollback], "D", LINE.is_ancestor) is None
    assert superseded_by(d, [d, rollback], None, LINE.is_ancestor) == "B"


def test_a_commit_that_does_not_descend_from_the_branchs_previous_one_is_a_force_push() -> None:
    assert is_force_push(push("E", "D"), LINE.is_ancestor)  # GitHub's flag lost: git tells
    assert not is_force_push(push("D", "C"), LINE.is_ancestor)
    assert not is_force_push(push("E", "D"), no_history)  # no history: only the flag counts
    unflagged = push("E", "D")
    assert superseded_by(unflagged, [unflagged], "D", LINE.is_ancestor) is None


def test_a_later_push_over_a_force_push_supersedes_it() -> None:
    reset = push("B", "D", forced=True)
    on_top = push("F", "B")  # a new commit after the reset
    assert superseded_by(reset, [reset, on_top], "D", LINE.is_ancestor) == "F"
    assert superseded_by(on_top, [reset, on_top], "D", LINE.is_ancestor) is None


def test_without_history_only_the_pushes_own_fields_decide() -> None:
    b, c, d = push("B", "A"), push("C", "B"), push("D", "C")
    assert superseded_by(b, [b, c, d], None) == "D"  # the chain of `before`s
    gap = push("D", "X")  # a delivery in between is missing: nothing is known
    assert superseded_by(b, [b, gap], None) is None
    swap_back, swap = push("A", "B", forced=True), push("B", "A")  # each replaced the other
    assert superseded_by(swap, [swap, swap_back], None) is None
    assert superseded_by(swap_back, [swap, swap_back], None) is None


def test_another_push_of_the_same_commit_supersedes_nothing() -> None:
    first, again = push("C", "B", state="FAILED"), push("C", "B")
    assert superseded_by(again, [first, again], None, LINE.is_ancestor) is None


def test_the_receiver_cancels_only_waiting_runs_a_known_push_supersedes() -> None:
    waiting, running, newest = push("B", "A"), push("C", "B", state="RUNNING"), push("D", "C")
    pending = push("X", "W", state="PENDING")  # unknown to the chain: left to the flow
    found = superseded_waiting([newest, running, waiting, pending])
    assert [(p.commit, commit) for p, commit in found] == [("B", "D")]


def _run(parameters: dict[str, object], tags: tuple[str, ...]) -> FlowRun:
    return FlowRun(UUID(int=1), "run", RunState("SCHEDULED", "Late"), parameters=parameters, tags=tags)


def test_a_push_is_read_from_the_runs_parameters_and_tags_a_run_by_hand_is_none() -> None:
    pushed = _run(
        {"ref": "c" * 40, "pushed_ref": "refs/heads/main"},
        ("github-push", "branch:main", "before:" + "b" * 40, "forced"),
    )
    assert push_of(pushed) == Push(UUID(int=1), "c" * 40, "b" * 40, True, "SCHEDULED")
    assert push_of(_run({"ref": "v1.0.0"}, ())) is None  # a rollback started by hand
    plain = push_of(_run({"ref": "c" * 40, "pushed_ref": "refs/heads/main"}, ("branch:main",)))
    assert plain is not None and (plain.before, plain.forced) == (None, False)


def test_the_message_names_the_commit() -> None:
    assert message("d" * 40) == f"superseded by {'d' * 40}"

"""The four keys over a history with a stayed, a swapped-back, a recovered and an unfinished release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows import steps
from flows.metrics.dora import (
    Figure,
    Recovery,
    Release,
    RunRef,
    Step,
    assess,
    duration,
    four_keys,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def at(hours_ago: float, minutes: float = 0) -> datetime:
    return NOW - timedelta(hours=hours_ago) + timedelta(minutes=minutes)


def ok(name: str, end: datetime) -> Step:
    return Step(name, "COMPLETED", end)


def release(
    name: str, swapped: datetime, *more: Step, commit: datetime | None = None, target: str = "local"
) -> Release:
    return Release(
        RunRef(name, f"deliverypipeline-{name}"),
        "deliverypipeline",
        target,
        (ok(steps.DEPLOY, swapped - timedelta(minutes=2)), ok(steps.SWAP, swapped), *more),
        commit,
    )


STAYED = release(
    "a1", at(30), ok(steps.VERIFY_PROD, at(30, 1)), commit=at(32)
)  # 2 h 1 min from commit to verified
STAYED_2 = release("a2", at(10), ok(steps.VERIFY_PROD, at(10, 1)), commit=at(14))  # 4 h 1 min
UNKNOWN_COMMIT = release("a3", at(5), ok(steps.VERIFY_PROD, at(5, 2)))
SWAPPED_BACK = release(
    "b1",
    at(20),
    Step(steps.VERIFY_PROD, "FAILED", at(20, 1)),
    ok(steps.SWAP_BACK, at(20, 3)),
    commit=at(21),
)
RECOVERED = release("c1", at(8), Step(steps.VERIFY_PROD, "CRASHED", at(8, 20)), commit=at(9))
RECOVERY = Recovery(
    RunRef("r1", "recover deliverypipeline-c1"),
    "c1",
    (ok(steps.RECOVER, at(8, 40)), ok(steps.VERIFY_PROD, at(8, 45))),
)
NEVER_SWAPPED = Release(
    RunRef("d1", "deliverypipeline-d1"),
    "deliverypipeline",
    "local",
    (Step(steps.BUILD_IMAGE, "FAILED", at(3)),),
)
OLD = release("o1", at(24 * 20), ok(steps.VERIFY_PROD, at(24 * 20, 1)), commit=at(24 * 20 + 1))
HISTORY = [OLD, STAYED, SWAPPED_BACK, STAYED_2, RECOVERED, UNKNOWN_COMMIT, NEVER_SWAPPED]


def figures(days: int) -> dict[str, Figure]:
    (keys,) = four_keys(HISTORY, [RECOVERY], NOW, days)
    assert (keys.application, keys.target, keys.days) == ("deliverypipeline", "local", days)
    return {figure.key: figure for figure in keys.figures}


def names(refs: tuple[RunRef, ...]) -> list[str]:
    return [ref.name for ref in refs]


def test_a_release_that_never_swapped_did_not_reach_prod() -> None:
    assert assess(NEVER_SWAPPED, [RECOVERY]) is None


def test_a_swapped_back_release_failed_and_was_restored_by_its_own_swap_back() -> None:
    verdict = assess(SWAPPED_BACK, [RECOVERY])
    assert verdict is not None
    assert (verdict.failed, verdict.restored, verdict.restored_by) == (True, at(20, 3), SWAPPED_BACK.ref)


def test_a_recovered_release_failed_and_was_restored_by_the_recoverys_verify_prod() -> None:
    verdict = assess(RECOVERED, [RECOVERY])
    assert verdict is not None
    assert (verdict.failed, verdict.restored, verdict.restored_by) == (True, at(8, 45), RECOVERY.ref)


def test_deployment_frequency_counts_releases_that_stayed_on_prod() -> None:
    figure = figures(7)["deployment_frequency"]
    assert names(figure.runs) == ["deliverypipeline-a1", "deliverypipeline-a2", "deliverypipeline-a3"]
    assert figure.value == 3 / 7
    assert figure.shown == "3 in 7 d (0.43/day)"
    assert figure.elite is False


def test_the_30_day_window_includes_the_older_release() -> None:
    figure = figures(30)["deployment_frequency"]
    assert figure.value == 4 / 30
    assert names(figure.runs)[0] == "deliverypipeline-o1"


def test_lead_time_is_the_median_from_commit_to_verified_on_prod_and_names_unknown_commits() -> None:
    figure = figures(7)["lead_time"]
    assert figure.value == (2 * 3600 + 60 + 4 * 3600 + 60) / 2
    assert figure.shown == "3.0 h (median of 2), unknown for 1"
    assert figure.elite is True
    assert names(figure.unknown) == ["deliverypipeline-a3"]


def test_change_failure_rate_counts_swapped_back_and_recovered_releases() -> None:
    figure = figures(7)["change_failure_rate"]
    assert figure.value == 2 / 5
    assert figure.shown == "40 % (2 of 5)"
    assert figure.elite is False
    assert names(figure.runs) == ["deliverypipeline-b1", "deliverypipeline-c1", "recover deliverypipeline-c1"]


def test_recovery_time_runs_from_the_failed_swap_to_prod_verified_again() -> None:
    figure = figures(7)["recovery_time"]
    assert figure.value == (3 * 60 + 45 * 60) / 2
    assert figure.shown == "24 min (median of 2)"
    assert figure.elite is True
    assert names(figure.runs) == ["deliverypipeline-b1", "deliverypipeline-c1", "recover deliverypipeline-c1"]


def test_a_failed_release_not_restored_yet_is_named_and_not_elite() -> None:
    crashed = release("e1", at(2), commit=at(3))
    (keys,) = four_keys([crashed], [], NOW, 7)
    figure = keys.figures[3]
    assert (figure.value, figure.elite, names(figure.unknown)) == (None, None, [])
    rec = Recovery(
        RunRef("r2", "recover deliverypipeline-e1"), "e1", (Step(steps.VERIFY_PROD, "FAILED", at(1)),)
    )
    (keys,) = four_keys([crashed], [rec], NOW, 7)
    figure = keys.figures[3]
    assert (figure.value, figure.elite, names(figure.unknown)) == (None, False, ["deliverypipeline-e1"])
    assert figure.shown == "not restored yet (1 release(s))"


def test_each_application_and_target_has_its_own_keys_even_without_a_release_in_the_window() -> None:
    keys = four_keys([STAYED, release("x1", at(24 * 40), target="aws")], [], NOW, 7)
    assert [(k.target, k.figures[0].shown) for k in keys] == [
        ("aws", "0 in 7 d (0.00/day)"),
        ("local", "1 in 7 d (0.14/day)"),
    ]
    assert keys[0].figures[2].shown == "-"


def test_duration_reads_as_a_person_reads_it() -> None:
    assert [duration(s) for s in (42, 420, 9000, 3 * 86400)] == ["42 s", "7 min", "2.5 h", "3.0 d"]

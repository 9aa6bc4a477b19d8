"""DORA's four keys from plain records of release and recovery runs (pure: no API, no clock).

A release *reached prod* when its "swap" step completed. It *failed* when, after that swap, it
ran its "swap back" step or a `recover` run recovered it; prod was *restored* when that swap
back completed, or when the recovery's "verify prod" completed. From these, per application and
target over a window of days (a release counts in the window in which it reached prod):

- deployment frequency: releases that reached prod and stayed there (not failed), per day;
- lead time for changes: median time from the commit to its "verify prod" on prod, over the
  releases that stayed (a release whose commit time is unknown is listed, not counted);
- change failure rate: failed releases / releases that reached prod;
- failed-deployment recovery time: median time from a failed release's swap to prod verified
  again (a failed release not restored yet is listed, not counted).

DORA's elite levels are printed beside each figure (`ELITE`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flows import steps

COMPLETED = "COMPLETED"
DAY_S = 86_400.0
HOUR_S = 3_600.0
# DORA's elite performers (State of DevOps 2021-2023): what each figure is compared with.
ELITE = {
    "deployment_frequency": "on demand (multiple deploys per day)",
    "lead_time": "less than one day",
    "change_failure_rate": "0-15 % (about 5 %)",
    "recovery_time": "less than one hour",
}
ELITE_CHANGE_FAILURE_RATE = 0.15
LABELS = {
    "deployment_frequency": "Deployment frequency",
    "lead_time": "Lead time for changes",
    "change_failure_rate": "Change failure rate",
    "recovery_time": "Failed-deployment recovery time",
}
WINDOWS = (7, 30)  # the windows shown, in days


@dataclass(frozen=True)
class Step:
    """One task run of a flow run: its step name (flows/steps.py), state type and end time."""

    name: str
    state: str  # Prefect's state type: COMPLETED, FAILED, CRASHED, ...
    end: datetime | None


@dataclass(frozen=True)
class RunRef:
    """A flow run behind a figure: its id (for its UI address) and name."""

    run_id: str
    name: str


@dataclass(frozen=True)
class Release:
    """One `deliverypipeline` flow run, as the figures need it."""

    ref: RunRef
    application: str
    target: str
    steps: tuple[Step, ...]
    commit_time: datetime | None = None  # None: unknown (the repo is not readable here)


@dataclass(frozen=True)
class Recovery:
    """One `recover` flow run: the release run it recovered and its steps."""

    ref: RunRef
    recovered_run_id: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Verdict:
    """What became of a release that reached prod."""

    release: Release
    swapped: datetime  # when its swap completed: it reached prod
    verified: datetime | None  # its "verify prod" completed after the swap
    failed: bool  # swapped back or recovered
    restored: datetime | None = None  # prod verified again after a failure
    restored_by: RunRef | None = None  # the run that restored it (the release itself or a recovery)


def _ended(
    run_steps: Iterable[Step], name: str, after: datetime | None = None
) -> list[tuple[datetime, Step]]:
    """The steps called `name` that ended (after `after`), with their end, in order of their end."""
    found = [
        (s.end, s)
        for s in run_steps
        if s.name == name and s.end is not None and (after is None or s.end >= after)
    ]
    return sorted(found, key=lambda pair: pair[0])


def _completed_end(run_steps: Iterable[Step], name: str, after: datetime | None = None) -> datetime | None:
    """When the first completed step `name` (after `after`) ended, None when none did."""
    done = [end for end, s in _ended(run_steps, name, after) if s.state == COMPLETED]
    return done[0] if done else None


def assess(release: Release, recoveries: Sequence[Recovery]) -> Verdict | None:
    """What became of `release`; None when it never reached prod (no completed swap)."""
    swaps = [end for end, s in _ended(release.steps, steps.SWAP) if s.state == COMPLETED]
    if not swaps:
        return None
    swapped = swaps[-1]
    verified = _completed_end(release.steps, steps.VERIFY_PROD, swapped)
    swapped_back = [s for _, s in _ended(release.steps, steps.SWAP_BACK, swapped)]
    ours = [r for r in recoveries if r.recovered_run_id == release.ref.run_id]
    if swapped_back:
        restored = _completed_end(swapped_back, steps.SWAP_BACK)
        return Verdict(release, swapped, verified, True, restored, release.ref if restored else None)
    if ours:
        ends = [(end, r.ref) for r in ours if (end := _completed_end(r.steps, steps.VERIFY_PROD, swapped))]
        first = min(ends, key=lambda pair: pair[0]) if ends else None
        return Verdict(
            release, swapped, verified, True, first[0] if first else None, first[1] if first else None
        )
    return Verdict(release, swapped, verified, False)


@dataclass(frozen=True)
class Figure:
    """One key: its value (None: no data), how it reads, whether it is elite, the runs behind it."""

    key: str
    value: float | None  # per day, seconds, or a fraction
    shown: str
    elite: bool | None  # None: no data to judge
    runs: tuple[RunRef, ...] = ()
    unknown: tuple[RunRef, ...] = ()  # runs left out of the figure (and why, in `shown`)


@dataclass(frozen=True)
class Keys:
    """The four keys of one application and target over the last `days` days."""

    application: str
    target: str
    days: int  # the window: the days before the time the figures were taken
    figures: tuple[Figure, ...]  # deployment frequency, lead time, change failure rate, recovery time


def verdict(figure: Figure) -> str:
    """How a figure compares with DORA's elite level, in a word or two."""
    return {True: "elite", False: "below elite", None: "-"}[figure.elite]


def duration(seconds: float) -> str:
    """A duration as a person reads it: `42 s`, `7 min`, `2.5 h`, `3.1 d`."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < HOUR_S:
        return f"{seconds / 60:.0f} min"
    if seconds < DAY_S:
        return f"{seconds / HOUR_S:.1f} h"
    return f"{seconds / DAY_S:.1f} d"


def _refs(verdicts: Iterable[Verdict]) -> tuple[RunRef, ...]:
    return tuple(v.release.ref for v in verdicts)


def frequency(verdicts: Sequence[Verdict], days: int) -> Figure:
    """Releases that reached prod and stayed there, per day."""
    stayed = [v for v in verdicts if not v.failed]
    per_day = len(stayed) / days
    shown = f"{len(stayed)} in {days} d ({per_day:.2f}/day)"
    return Figure("deployment_frequency", per_day, shown, per_day >= 1.0 if stayed else None, _refs(stayed))


def lead_time(verdicts: Sequence[Verdict]) -> Figure:
    """Median time from commit to verified on prod, over releases that stayed."""
    stayed = [v for v in verdicts if not v.failed and v.verified is not None]
    known = [v for v in stayed if v.release.commit_time is not None]
    unknown = _refs(v for v in stayed if v.release.commit_time is None)
    times = [
        (verified - commit).total_seconds()
        for v in known
        if (verified := v.verified) and (commit := v.release.commit_time)
    ]
    if not times:
        shown = f"unknown ({len(unknown)} release(s), commit time not readable)" if unknown else "-"
        return Figure("lead_time", None, shown, None, (), unknown)
    median = statistics.median(times)
    shown = f"{duration(median)} (median of {len(times)})"
    if unknown:
        shown += f", unknown for {len(unknown)}"
    return Figure("lead_time", median, shown, median < DAY_S, _refs(known), unknown)


def failure_rate(verdicts: Sequence[Verdict]) -> Figure:
    """Failed releases (swapped back or recovered) over releases that reached prod."""
    failed = [v for v in verdicts if v.failed]
    if not verdicts:
        return Figure("change_failure_rate", None, "-", None)
    rate = len(failed) / len(verdicts)
    shown = f"{rate * 100:.0f} % ({len(failed)} of {len(verdicts)})"
    recoveries = tuple(v.restored_by for v in failed if v.restored_by and v.restored_by != v.release.ref)
    return Figure(
        "change_failure_rate", rate, shown, rate <= ELITE_CHANGE_FAILURE_RATE, _refs(failed) + recoveries
    )


def recovery_time(verdicts: Sequence[Verdict]) -> Figure:
    """Median time from a failed release's swap to prod verified again."""
    failed = [v for v in verdicts if v.failed]
    restored = [v for v in failed if v.restored is not None]
    open_ = _refs(v for v in failed if v.restored is None)
    times = [(end - v.swapped).total_seconds() for v in restored if (end := v.restored)]
    behind = tuple(r for v in restored for r in dict.fromkeys((v.release.ref, v.restored_by)) if r)
    if not times:
        shown = f"not restored yet ({len(open_)} release(s))" if open_ else "-"
        return Figure("recovery_time", None, shown, False if open_ else None, (), open_)
    median = statistics.median(times)
    shown = f"{duration(median)} (median of {len(times)})"
    if open_:
        shown += f", {len(open_)} not restored yet"
    return Figure("recovery_time", median, shown, median < HOUR_S and not open_, behind, open_)


def four_keys(
    releases: Sequence[Release], recoveries: Sequence[Recovery], now: datetime, days: int
) -> list[Keys]:
    """The four keys per (application, target) over the `days` days before `now`, sorted by both.

    Every application and target with a release in `releases` is listed, even one that did not
    reach prod in the window (its figures then read "-").
    """
    since = now - timedelta(days=days)
    groups: dict[tuple[str, str], list[Verdict]] = {
        (r.application, r.target): [] for r in sorted(releases, key=lambda r: (r.application, r.target))
    }
    for release in releases:
        verdict = assess(release, recoveries)
        if verdict is not None and since <= verdict.swapped <= now:
            groups[(release.application, release.target)].append(verdict)
    return [
        Keys(
            application,
            target,
            days,
            (frequency(v, days), lead_time(v), failure_rate(v), recovery_time(v)),
        )
        for (application, target), v in groups.items()
    ]

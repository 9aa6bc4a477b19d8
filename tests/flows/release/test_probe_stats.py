"""The probe's pure statistics: phases around the swap, percentiles, the chart's slices."""

from __future__ import annotations

import pytest

from flows.release.probe_stats import (
    AFTER,
    BEFORE,
    DURING,
    Sample,
    SwapMark,
    buckets,
    percentile,
    phase_of,
    summarize,
)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0)


def test_phase_counts_requests_overlapping_the_swap_window_with_margin() -> None:
    swap = SwapMark(start=10.0, end=10.5)
    assert phase_of(Sample(start=5.0, latency=0.01, ok=True), swap) == BEFORE
    assert phase_of(Sample(start=8.95, latency=0.1, ok=True), swap) == DURING  # ends 0.95 s before
    assert phase_of(Sample(start=10.2, latency=0.01, ok=True), swap) == DURING
    assert phase_of(Sample(start=11.4, latency=0.01, ok=True), swap) == DURING  # within 1 s after
    assert phase_of(Sample(start=11.6, latency=0.01, ok=True), swap) == AFTER
    assert phase_of(Sample(start=99.0, latency=0.01, ok=True), None) == BEFORE


def test_summary_splits_phases_and_lists_failures() -> None:
    samples = [Sample(start=float(t), latency=0.002, ok=True) for t in range(0, 10)]
    samples += [
        Sample(start=10.1, latency=0.050, ok=True),
        Sample(start=10.2, latency=0.3, ok=False, detail="reset"),
    ]
    samples += [Sample(start=float(t), latency=0.004, ok=True) for t in range(13, 20)]
    summary = summarize("http://127.0.0.1:1", samples, SwapMark(10.0, 10.3))
    assert summary.requests == 19
    assert summary.failures == 1
    assert summary.violation
    assert summary.swap_failures == 1
    before, during, after = (summary.phase(p) for p in (BEFORE, DURING, AFTER))
    assert (before.requests, during.requests, after.requests) == (9, 3, 7)  # t=9 ends within the margin
    assert before.p50_ms == 2.0 and after.p99_ms == 4.0
    assert during.p99_ms == 50.0  # failed requests do not count in latency
    assert summary.failed[0].detail == "reset"


def test_a_stretch_overlaps_the_swap_when_they_share_a_moment() -> None:
    swap = SwapMark(2.0, 3.0)
    assert swap.overlaps(1.0, 2.0) and swap.overlaps(2.5, 2.6) and swap.overlaps(3.0, 9.0)
    assert not swap.overlaps(0.0, 1.9) and not swap.overlaps(3.1, 4.0)


def test_no_failures_is_no_violation() -> None:
    summary = summarize("u", [Sample(0.0, 0.001, True)], None)
    assert not summary.violation
    assert summary.phase(BEFORE).requests == 1
    assert summary.phase(DURING).requests == 0 and summary.phase(DURING).p50_ms is None


def test_buckets_mark_the_swap_and_failures() -> None:
    samples = [Sample(start=t / 10, latency=0.001 * (1 + t % 3), ok=t != 55) for t in range(100)]
    slices = buckets(samples, SwapMark(5.0, 5.2), count=10)
    assert len(slices) == 10
    assert sum(s.requests for s in slices) == 100
    assert [i for i, s in enumerate(slices) if s.swap] == [5]  # slices ~0.99 s wide
    assert slices[5].failures == 1
    slices = buckets(samples, SwapMark(2.0, 3.5), count=10)
    assert [i for i, s in enumerate(slices) if s.swap] == [2, 3]
    assert buckets([], None) == []

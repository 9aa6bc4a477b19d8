"""Pure statistics of a zero-downtime probe: phases around the swap, percentiles, the chart's slices.

The probe (`flows.release.probe`) only records samples; everything judged or drawn from them lives
here, so the rules (what counts as "during the swap", what is a violation) are tested
without HTTP or threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

BEFORE = "before"
DURING = "during"
AFTER = "after"
PHASES = (BEFORE, DURING, AFTER)

# Requests started this long before the swap began, or ended this long after it finished,
# still count as "during": a keep-alive connection opened just before a switch is the one
# most likely to break.
SWAP_MARGIN_S = 1.0


@dataclass(frozen=True)
class Sample:
    """One probe request: when it started (seconds since the probe began), how long it took."""

    start: float
    latency: float
    ok: bool
    detail: str = ""  # the status or error of a failed request
    path: str = ""  # the user path asked, e.g. "/ (text/html)"

    @property
    def end(self) -> float:
        """When the request finished, on the probe's time scale."""
        return self.start + self.latency


@dataclass(frozen=True)
class SwapMark:
    """When the swap ran, on the probe's time scale."""

    start: float
    end: float

    def overlaps(self, start: float, end: float) -> bool:
        """Whether the stretch of time from `start` to `end` shares a moment with the swap."""
        return start <= self.end and end >= self.start


@dataclass(frozen=True)
class PhaseStats:
    """Counts and latency percentiles of the requests in one phase."""

    phase: str
    requests: int
    failures: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class PathStats:
    """One user path's requests and failures, and its latency before the swap (old) and after (new)."""

    path: str
    requests: int
    failures: int
    before: PhaseStats
    after: PhaseStats


@dataclass(frozen=True)
class Bucket:
    """One slice of time in the latency chart."""

    start: float
    end: float
    requests: int
    failures: int
    p50_ms: float | None
    max_ms: float | None
    swap: bool  # the slice overlaps the swap


@dataclass(frozen=True)
class ProbeSummary:
    """What the probe proved: totals, per-phase figures, and every failed request."""

    url: str
    requests: int
    failures: int
    duration_s: float
    swap: SwapMark | None
    phases: tuple[PhaseStats, ...]
    failed: tuple[Sample, ...] = ()
    paths: tuple[PathStats, ...] = ()  # per user path

    @property
    def violation(self) -> bool:
        """Zero downtime means zero failed requests, before, during and after the swap."""
        return self.failures > 0

    @property
    def swap_failures(self) -> int:
        """Failed requests in the swap window."""
        return next((p.failures for p in self.phases if p.phase == DURING), 0)

    def phase(self, name: str) -> PhaseStats:
        """The figures of one phase (`before`, `during`, `after`)."""
        return next(p for p in self.phases if p.phase == name)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`; None when empty."""
    if not values:
        return None
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def phase_of(sample: Sample, swap: SwapMark | None, margin: float = SWAP_MARGIN_S) -> str:
    """Which phase a request belongs to; without a swap mark every request is `before`."""
    if swap is None:
        return BEFORE
    if sample.end < swap.start - margin:
        return BEFORE
    if sample.start > swap.end + margin:
        return AFTER
    return DURING


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def phase_stats(phase: str, samples: Sequence[Sample]) -> PhaseStats:
    """Counts and p50/p99 latency (successful requests only) of one phase's samples."""
    latencies = [s.latency for s in samples if s.ok]
    return PhaseStats(
        phase=phase,
        requests=len(samples),
        failures=sum(1 for s in samples if not s.ok),
        p50_ms=_ms(percentile(latencies, 50)),
        p99_ms=_ms(percentile(latencies, 99)),
    )


def path_stats(path: str, samples: Sequence[Sample], swap: SwapMark | None, margin: float) -> PathStats:
    """One path's totals, and its figures before the swap (the old version) and after (the new)."""
    before = [s for s in samples if phase_of(s, swap, margin) == BEFORE]
    after = [s for s in samples if phase_of(s, swap, margin) == AFTER]
    return PathStats(
        path,
        len(samples),
        sum(1 for s in samples if not s.ok),
        phase_stats(BEFORE, before),
        phase_stats(AFTER, after),
    )


def summarize(
    url: str, samples: Sequence[Sample], swap: SwapMark | None, margin: float = SWAP_MARGIN_S
) -> ProbeSummary:
    """Split samples into phases around the swap and total them."""
    grouped: dict[str, list[Sample]] = {phase: [] for phase in PHASES}
    for sample in samples:
        grouped[phase_of(sample, swap, margin)].append(sample)
    duration = max((s.end for s in samples), default=0.0)
    failed = tuple(sorted((s for s in samples if not s.ok), key=lambda s: s.start))
    by_path: dict[str, list[Sample]] = {}
    for sample in samples:
        by_path.setdefault(sample.path, []).append(sample)
    return ProbeSummary(
        url=url,
        requests=len(samples),
        failures=len(failed),
        duration_s=round(duration, 3),
        swap=swap,
        phases=tuple(phase_stats(phase, grouped[phase]) for phase in PHASES),
        failed=failed,
        paths=tuple(path_stats(path, by_path[path], swap, margin) for path in sorted(by_path) if path),
    )


def buckets(samples: Sequence[Sample], swap: SwapMark | None, count: int = 40) -> list[Bucket]:
    """`count` equal slices of the probe's duration with their latency, for the chart."""
    if not samples or count <= 0:
        return []
    duration = max(s.end for s in samples)
    width = max(duration / count, 1e-6)
    slots: list[list[Sample]] = [[] for _ in range(count)]
    for sample in samples:
        slots[min(int(sample.start / width), count - 1)].append(sample)
    result = []
    for index, slot in enumerate(slots):
        start, end = index * width, (index + 1) * width
        ok = [s.latency for s in slot if s.ok]
        result.append(
            Bucket(
                start=round(start, 3),
                end=round(end, 3),
                requests=len(slot),
                failures=sum(1 for s in slot if not s.ok),
                p50_ms=_ms(percentile(ok, 50)),
                max_ms=_ms(max(ok) if ok else None),
                swap=swap is not None and swap.overlaps(start, end),
            )
        )
    return result

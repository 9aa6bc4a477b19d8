"""Watching prod while a release changes it: the zero-downtime probe and the previous prod's figures.

`watching_prod` runs for the risky part of a release (deploy to swap and its analysis): it starts
the probe, which sends bounded traffic over the user paths to the prod address and marks the swap
(when the release waits for a person first, the probe is held until just before the swap: a
person may take longer than the probe's time cap); the previous prod's traffic counters are read
at the start, so the swap can measure how it served (the baseline the new prod is judged
against). The judged windows and, when the block ends, the probe's summary go into the run's
`Findings` (the run report, handed in by the flow); the probe's artifact is published.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from prefect import get_run_logger

from flows.config import PipelineConfig
from flows.release.analyse import baseline, read_traffic
from flows.release.analysis import AnalysisRow, Verdict, WindowFigures, analysis_row
from flows.release.decisions import Roles, describe, prod_serving
from flows.release.probe import Probe
from flows.release.probe_artifact import publish_probe
from flows.release.probe_stats import ProbeSummary, buckets
from flows.targets.base import Target, TrafficCounters

PROBE_THREADS = 8
PROBE_PAUSE_S = 0.02  # per thread between requests: ~8 x 50 req/s at most, light on 2 cores
PROBE_MAX_REQUESTS = 100_000
PROBE_TAIL_S = 1.5  # after the swap, the probe runs at least this long (past the swap margin)
PROBE_LEAD_S = 1.5  # with approval, probing starts this long before the swap


class Findings(Protocol):
    """Where the watch puts what it found (the run report has these)."""

    analysis: list[AnalysisRow]
    probe: ProbeSummary | None


@dataclass
class ProdWatch:
    """The probe on prod (None when prod serves nothing yet) and the previous prod's figures."""

    target: Target
    roles: Roles
    findings: Findings
    probe: Probe | None
    prod_reading: TrafficCounters | None
    read_at: float = field(default_factory=time.monotonic)
    previous: WindowFigures | None = None
    # The new prod's counters just before the swap, and when (time.monotonic): the analysis
    # window starts at the swap, so every request the new prod serves from then on is judged.
    swap_reading: tuple[TrafficCounters, float] | None = None

    def measure_previous(self) -> WindowFigures | None:
        """Just before the swap (or the canary): how the previous prod served since the watch began.

        A probe held while the release waited for a person starts now, a little ahead of the swap.
        """
        if self.probe is not None and not self.probe.started:
            get_run_logger().info("the zero-downtime probe starts now, ahead of the swap")
            self.probe.start()
            time.sleep(PROBE_LEAD_S)  # the "before the swap" phase needs requests too
        self.previous = baseline(
            self.target,
            self.roles.prod.name,
            self.prod_reading,
            time.monotonic() - self.read_at,
            get_run_logger().info,
        )
        return self.previous

    def mark_swap_start(self) -> None:
        """Record that the swap starts: the new prod's counters, and the mark on the probe."""
        reading = read_traffic(self.target, self.roles.preprod.name, get_run_logger().info)
        self.swap_reading = None if reading is None else (reading, time.monotonic())
        if self.probe is not None and self.probe.started:
            self.probe.mark_swap_start()

    def mark_swap_end(self) -> None:
        """Record on the probe that the swap returned."""
        if self.probe is not None and self.probe.started:
            self.probe.mark_swap_end()

    def add_window(self, step: str, share: int, verdict: Verdict) -> None:
        """Put one judged window (a canary step, after the swap) into the findings."""
        self.findings.analysis.append(analysis_row(step, share, verdict, self.previous))


def probe_for(target: Target, config: PipelineConfig) -> Probe:
    """The zero-downtime probe of the prod address, over the configured user paths."""
    deadlines = config.deadlines
    return Probe(
        target.url(config.prod_address),
        paths=config.verification.user_paths,
        threads=PROBE_THREADS,
        pause_s=PROBE_PAUSE_S,
        max_requests=PROBE_MAX_REQUESTS,
        max_seconds=deadlines.ready
        + deadlines.swap
        + 2 * deadlines.verify
        + 2 * config.analysis.window_s
        + 60 * len(config.traffic_steps),
    )


@contextmanager
def watching_prod(
    target: Target, roles: Roles, config: PipelineConfig, findings: Findings, require_approval: bool
) -> Iterator[ProdWatch]:
    """Watch prod for the block, the probe started here (held until the swap when a person approves
    first); what it found goes into `findings`, the probe's artifact is published at the end."""
    logger = get_run_logger()
    probe = probe_for(target, config) if prod_serving(roles) else None
    watch = ProdWatch(target, roles, findings, probe, read_traffic(target, roles.prod.name, logger.info))
    if probe is None and roles.prod.version is not None:
        logger.warning(
            "prod is down before this release (%s): no zero-downtime probe; the release replaces it",
            describe(roles.prod),
        )
    elif probe is None:
        logger.info("prod serves nothing yet: no zero-downtime probe for this first release")
    elif require_approval:
        logger.info("the zero-downtime probe starts once the release is approved, ahead of the swap")
    else:
        probe.start()
    completed = False
    try:
        yield watch
        completed = True
    finally:
        if probe is not None and probe.started:
            swap = probe.swap
            since_swap = probe.now() - swap.end if swap is not None else 0.0
            if completed and since_swap < PROBE_TAIL_S:  # the analysis window usually covered it
                time.sleep(PROBE_TAIL_S - since_swap)  # the "after the swap" phase needs requests too
            summary = probe.stop()
            findings.probe = summary
            publish_probe(summary, buckets(probe.samples(), summary.swap))

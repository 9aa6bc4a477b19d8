"""Waves: prod moves to the new version node by node at the edge, each wave judged before the next.

With `swarm.waves` (e.g. `[1, "50%", "100%"]`), the swap first re-points the prod servers of the
first wave's nodes at the new environment, judges the traffic those servers carry for a share of
the analysis window (the same judgement as the release's analysis, `flows.release.analysis`),
then moves the next wave, and so on; the last wave is the swap itself (both backends at once).
A rejected wave puts every node moved so far back on the previous version and fails the swap
with the figures: prod never stays half moved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flows.clock import Clock, Deadline, GaveUp, poll_until
from flows.release.analysis import Verdict, judge, window
from flows.release.settings import AnalysisSettings
from flows.targets.base import TrafficCounters
from flows.targets.swarm import edge_plans
from flows.targets.swarm.edge_plans import EdgeNode
from flows.targets.swarm.engine import SwarmError
from flows.targets.swarm.waves import wave_nodes


class WaveRejected(SwarmError):
    """A wave's traffic failed the analysis; every node moved so far is back on the previous version."""


@dataclass(frozen=True)
class Waves:
    """How to move prod: the nodes of each wave but the last, the ports, the judgement."""

    batches: list[list[EdgeNode]]  # every wave's nodes; the last one is the swap itself
    new_port: int
    old_port: int
    analysis: AnalysisSettings
    poll_s: float


def plan_waves(
    nodes: Sequence[EdgeNode],
    sizes: Sequence[int],
    new_port: int,
    old_port: int,
    analysis: AnalysisSettings,
    poll_s: float,
) -> Waves:
    """The waves for `nodes` (in the order they move) and cumulative `sizes` (`waves.wave_sizes`)."""
    return Waves(wave_nodes(list(nodes), sizes), new_port, old_port, analysis, poll_s)


def move_in_waves(
    waves: Waves,
    counters: Callable[[], TrafficCounters],
    send: Callable[[list[str]], None],
    log: Callable[[str], None],
    clock: Clock,
) -> None:
    """Move and judge every wave but the last; on a rejection, put back what moved and raise.

    `counters` reads the new environment's cumulative counters, `send` re-points servers
    (banking counters first), `log` says what happens (the target's event log).
    """
    moved: list[EdgeNode] = []
    count = len(waves.batches)
    share = waves.analysis.window_s / count
    for number, batch in enumerate(waves.batches[:-1], start=1):
        before = counters()
        send(edge_plans.wave_commands(batch, waves.new_port))
        moved += batch
        names = ", ".join(node.name for node in batch)
        log(f"wave {number} of {count}: prod on {names} moved to the new version; judging {share:g} s")
        verdict = _judge(waves, before, counters, share, clock)
        if not verdict.passed:
            send(edge_plans.wave_commands(moved, waves.old_port))
            back = ", ".join(node.name for node in moved)
            raise WaveRejected(
                f"wave {number} of {count} ({names}) rejected: {verdict.summary()}; prod on {back} "
                "is back on the previous version, nothing else moved"
            )
        log(f"wave {number} of {count}: {verdict.summary()}")


def _judge(
    waves: Waves,
    before: TrafficCounters,
    counters: Callable[[], TrafficCounters],
    seconds: float,
    clock: Clock,
) -> Verdict:
    def look(deadline: Deadline) -> Verdict | None:
        verdict = judge(window(before, counters(), deadline.elapsed), None, waves.analysis, final=False)
        return verdict if verdict.decided else None

    early = poll_until(look, seconds, waves.poll_s, clock=clock)
    if not isinstance(early, GaveUp):
        return early
    return judge(window(before, counters(), seconds), None, waves.analysis, final=True)

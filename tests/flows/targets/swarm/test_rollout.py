"""Waves at the edge: each moved and judged before the next; a rejected one puts every moved node back."""

from __future__ import annotations

import pytest

from flows.release.settings import AnalysisSettings
from flows.targets.base import TrafficCounters
from flows.targets.swarm.edge_plans import EdgeNode
from flows.targets.swarm.rollout import WaveRejected, move_in_waves, plan_waves
from tests.flows.fakes import FakeClock

NODES = [EdgeNode(f"node-{n}", f"10.0.0.{10 + n}") for n in (1, 2, 3, 4)]
ANALYSIS = AnalysisSettings(window=30, min_requests=20)


class Traffic:
    """Counters that grow by `per_look` requests (and 5xx) at every reading."""

    def __init__(self, errors_per_look: int = 0) -> None:
        self.requests = 0
        self.errors = 0
        self.errors_per_look = errors_per_look

    def __call__(self) -> TrafficCounters:
        self.requests += 10
        self.errors += self.errors_per_look
        return TrafficCounters(self.requests, self.errors, 0)


def test_every_wave_but_the_last_moves_and_passes() -> None:
    sent: list[list[str]] = []
    lines: list[str] = []
    waves = plan_waves(NODES, [1, 2, 4], 9082, 9081, ANALYSIS, 1.0)
    move_in_waves(waves, Traffic(), sent.append, lines.append, FakeClock())
    assert sent == [
        ["set server prod/node-1 addr 10.0.0.11 port 9082", "set server prod/node-1 state ready"],
        ["set server prod/node-2 addr 10.0.0.12 port 9082", "set server prod/node-2 state ready"],
    ]
    assert lines[0] == "wave 1 of 3: prod on node-1 moved to the new version; judging 10 s"
    assert lines[1].startswith("wave 1 of 3: passed")


def test_a_rejected_wave_puts_back_every_node_moved_so_far() -> None:
    sent: list[list[str]] = []
    traffic = Traffic()
    waves = plan_waves(NODES, [1, 3, 4], 9082, 9081, ANALYSIS, 1.0)

    def send(commands: list[str]) -> None:
        sent.append(commands)
        if len(sent) == 2:  # the second wave brings errors
            traffic.errors_per_look = 5

    with pytest.raises(WaveRejected, match=r"wave 2 of 3 \(node-2, node-3\) rejected: FAILED: 5xx share"):
        move_in_waves(waves, traffic, send, lambda _: None, FakeClock())
    assert sent[-1] == [
        "set server prod/node-1 addr 10.0.0.11 port 9081",
        "set server prod/node-2 addr 10.0.0.12 port 9081",
        "set server prod/node-3 addr 10.0.0.13 port 9081",
        "set server prod/node-1 state ready",
        "set server prod/node-2 state ready",
        "set server prod/node-3 state ready",
    ]


def test_one_wave_moves_nothing_before_the_swap() -> None:
    sent: list[list[str]] = []
    move_in_waves(
        plan_waves(NODES, [4], 9082, 9081, ANALYSIS, 1.0), Traffic(), sent.append, print, FakeClock()
    )
    assert sent == []

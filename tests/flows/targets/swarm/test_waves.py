"""Wave arithmetic: cumulative node counts from counts and shares, and waves that do not add up."""

from __future__ import annotations

import pytest

from flows.targets.swarm.waves import WavesError, validate_waves, wave_nodes, wave_sizes


@pytest.mark.parametrize(
    ("waves", "nodes", "sizes"),
    [
        ([], 3, [3]),
        ([1, "50%", "100%"], 3, [1, 2, 3]),
        ([1, "50%", "100%"], 4, [1, 2, 4]),
        (["34%", "100%"], 3, [2, 3]),
        ([1, 3], 3, [1, 3]),
        (["100%"], 1, [1]),
    ],
)
def test_wave_sizes(waves: list[int | str], nodes: int, sizes: list[int]) -> None:
    assert wave_sizes(waves, nodes) == sizes


@pytest.mark.parametrize(
    ("waves", "nodes", "message"),
    [
        ([1, "50%", "100%"], 2, "moves no node"),  # 50% of 2 is 1, after 1
        ([1, 2], 3, "end at 2 of 3 nodes"),
        ([4], 3, "asks for 4 nodes but the swarm has 3"),
        ([2, 1, 3], 3, "make each wave larger"),
        ([1], 0, "no node"),
    ],
)
def test_waves_that_do_not_add_up(waves: list[int | str], nodes: int, message: str) -> None:
    with pytest.raises(WavesError, match=message):
        wave_sizes(waves, nodes)


@pytest.mark.parametrize(
    ("waves", "message"),
    [
        ([0], "moves no node"),
        (["0%"], "more than 0%"),
        (["150%"], "at most 100%"),
        (["half"], "neither a node count"),
        ([True], "neither a node count"),
        ([1, "50%"], "must end with '100%'"),
    ],
)
def test_validate_waves_refuses_at_config_time(waves: list[int | str], message: str) -> None:
    with pytest.raises(WavesError, match=message):
        validate_waves(waves)


def test_wave_nodes_splits_the_order() -> None:
    assert wave_nodes(["a", "b", "c"], [1, 3]) == [["a"], ["b", "c"]]

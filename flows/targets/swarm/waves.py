"""Pure wave arithmetic: how many nodes each wave of a release moves, from `swarm.waves`.

A wave is a node count (`1`) or a share of the nodes (`"50%"`), each meaning *how many nodes
run the new version once the wave is done* (cumulative, as Kamal's `boot.limit` and rollout
steps read). The last wave must reach every node: `[1, "50%", "100%"]` on 4 nodes is 1, 2, 4.
Shares round up, so a wave never moves zero nodes; waves that do not grow, or end short of
every node, are refused before anything changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

Wave = int | str
T = TypeVar("T")


class WavesError(ValueError):
    """`swarm.waves` does not add up; the message says which wave and why."""


def parse_wave(wave: Wave) -> tuple[str, float]:
    """`3` -> ("count", 3); `"50%"` -> ("share", 50.0); anything else is a `WavesError`."""
    if isinstance(wave, bool):
        raise WavesError(f"wave {wave!r} is neither a node count nor a share like '50%'")
    if isinstance(wave, int):
        if wave < 1:
            raise WavesError(f"wave {wave} moves no node: a count is 1 or more")
        return "count", float(wave)
    text = wave.strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1])
        except ValueError:
            raise WavesError(f"wave {wave!r} is not a share like '50%'") from None
        if not 0 < share <= 100:
            raise WavesError(f"wave {wave!r}: a share is more than 0% and at most 100%")
        return "share", share
    if text.isdigit():
        return parse_wave(int(text))
    raise WavesError(f"wave {wave!r} is neither a node count nor a share like '50%'")


def validate_waves(waves: Sequence[Wave]) -> list[Wave]:
    """The waves as given, after checking each one parses and shares end at 100% (config time)."""
    parsed = [parse_wave(wave) for wave in waves]
    shares = [value for kind, value in parsed if kind == "share"]
    if shares and parsed[-1] != ("share", 100.0):
        raise WavesError(f"waves {list(waves)} must end with '100%' so that every node is moved")
    return list(waves)


def wave_sizes(waves: Sequence[Wave], nodes: int) -> list[int]:
    """Cumulative node counts per wave for `nodes` nodes; empty waves mean one wave of all nodes.

    `[1, "50%", "100%"]` on 3 nodes -> [1, 2, 3]. Raises `WavesError` when a wave does not grow,
    asks for more nodes than there are, or the last wave leaves nodes behind.
    """
    if nodes < 1:
        raise WavesError("no node to release to")
    if not waves:
        return [nodes]
    sizes: list[int] = []
    for wave in waves:
        kind, value = parse_wave(wave)
        size = math.ceil(nodes * value / 100) if kind == "share" else int(value)
        if size > nodes:
            raise WavesError(f"wave {wave!r} asks for {size} nodes but the swarm has {nodes}")
        if sizes and size <= sizes[-1]:
            raise WavesError(
                f"waves {list(waves)} on {nodes} nodes: wave {wave!r} moves {size} "
                f"after {sizes[-1]}, so it moves no node; make each wave larger than the one before"
            )
        sizes.append(size)
    if sizes[-1] != nodes:
        raise WavesError(
            f"waves {list(waves)} end at {sizes[-1]} of {nodes} nodes; end with '100%' (or {nodes})"
        )
    return sizes


def wave_nodes(order: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """The nodes each wave moves, in `order` (the nodes' stable order): [1, 3] -> [[a], [b, c]]."""
    batches: list[list[T]] = []
    done = 0
    for size in sizes:
        batches.append(list(order[done:size]))
        done = size
    return batches

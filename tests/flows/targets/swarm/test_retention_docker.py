"""Image retention on a real swarm: old versions' images leave every node, prod's and preprod's stay.

On the folder's three-node lab with `keep_releases` 2: c1, c2, c3 are deployed, a swap after
each as releases do, then c2 again (the last two releases: c3 and c2). After that deploy's
background retention, c1's image is on no node any more, c2 and c3 (prod and preprod) are on
every node, and the book forgot c1. (At the third deploy c1 still ran: a replaced version's
image goes at a later release.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from docker.errors import ImageNotFound

from flows.targets.swarm.lab_executor import _sdk_client
from flows.targets.swarm.lab_plans import LabLayout
from flows.targets.swarm.target import SwarmTarget
from tests.flows.targets.swarm.conftest import bundle_of, ready, target_in

pytestmark = pytest.mark.docker


@pytest.fixture
def target(lab: LabLayout) -> Iterator[SwarmTarget]:
    with target_in(lab, "dpswr-", keep_releases=2) as made:
        yield made


def on_node(lab: LabLayout, number: int, image: str) -> bool:
    """Whether node `number`'s own engine has `image`."""
    with contextlib.closing(_sdk_client(lab.node(number).socket)) as engine:
        try:
            engine.images.get(image)
        except ImageNotFound:
            return False
    return True


def test_images_beyond_keep_releases_leave_every_node_never_prods_or_preprods(
    lab: LabLayout, swarm_image: str, target: SwarmTarget
) -> None:
    started = datetime.now(UTC)
    bundle = bundle_of(swarm_image)
    for version in ("c1", "c2", "c3"):
        target.register_version(version, bundle(version))
    pinned = target.versions.read()
    first, second = target.environment_names
    for environment, version in ((second, "c1"), (first, "c2"), (second, "c3"), (first, "c2")):
        target.deploy(environment, version)
        ready(target, environment, version, 120)
        target.swap(first, second)
    assert target.settle(120)
    numbers = range(1, lab.nodes + 1)
    assert [on_node(lab, n, pinned["c1"]) for n in numbers] == [False] * lab.nodes
    assert all(on_node(lab, n, pinned[v]) for n in numbers for v in ("c2", "c3"))
    assert (target.versions.releases(), sorted(target.versions.read())) == (["c3", "c2"], ["c2", "c3"])
    said = [event.message for event in target.events(first, started)]
    assert any("pruned the images of c1 from every node" in line for line in said), said

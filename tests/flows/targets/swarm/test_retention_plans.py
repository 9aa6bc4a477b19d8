"""Which images leave the nodes: the local target's rules, node by node (pure, no engine)."""

from __future__ import annotations

from flows.targets.swarm.retention_plans import fully_pruned, node_removals, versions_to_prune

PINNED = {f"v{n}": f"reg/app@sha256:{n}" for n in range(1, 7)}


def test_versions_beyond_the_last_releases_go_oldest_first() -> None:
    history = ["v1", "v2", "v3", "v4", "v5"]
    assert versions_to_prune(history, PINNED, running={"v5", "v4"}, keep=2) == ["v1", "v2", "v3"]


def test_a_running_version_stays_however_old() -> None:
    history = ["v1", "v2", "v3", "v4", "v5"]
    assert versions_to_prune(history, PINNED, running={"v1", "v5"}, keep=2) == ["v2", "v3"]


def test_a_version_registered_but_never_deployed_is_never_a_candidate() -> None:
    assert versions_to_prune(["v1", "v2", "v3"], PINNED, running={"v3"}, keep=2) == ["v1"]
    assert "v6" not in versions_to_prune(["v1", "v2", "v3"], PINNED, running=set(), keep=2)


def test_an_image_a_kept_version_shares_is_never_pruned() -> None:
    pinned = {**PINNED, "v3": PINNED["v1"]}  # v3 was built from the same bits as v1
    assert versions_to_prune(["v1", "v2", "v3", "v4"], pinned, running={"v4"}, keep=2) == ["v2"]


def test_a_version_unknown_to_the_book_is_skipped() -> None:
    assert versions_to_prune(["gone", "v1", "v2", "v3"], PINNED, running=set(), keep=2) == ["v1"]


def test_on_a_node_only_present_images_no_running_container_uses_are_removed() -> None:
    doomed = {"v1": "r1", "v2": "r2", "v3": "r3"}
    present = {"r1": "id1", "r2": "id2"}  # r3 never pulled here
    assert node_removals(doomed, present, in_use={"id2", "id9"}) == (["v1"], ["v2"])


def test_a_version_leaves_the_book_once_no_node_holds_it() -> None:
    left = {"node-1": [], "node-2": ["v2"], "node-3": []}
    assert fully_pruned(["v1", "v2"], left) == ["v1"]
    assert fully_pruned(["v1"], {"node-1": ["v1"]}) == []

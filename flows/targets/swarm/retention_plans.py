"""Pure decisions of the swarm's image retention: which versions' images leave every node.

The local target's rules (`flows.targets.local.retention`): beyond the last `keep_releases`
deployed versions, never one that runs (the versions prod's and preprod's services ask for, and
any version a task still runs on some node), never a version registered but not deployed yet
(its release may be under way), never an image a kept version shares. On each node, an image is
removed only when the node has it and no running container there uses it. A version leaves the
book once no node has its image any more: a node that could not be reached keeps it for the
next release to try again. Nothing here talks to an engine (`retention` carries these out).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence


def versions_to_prune(
    releases: Sequence[str], pinned: Mapping[str, str], running: Collection[str], keep: int
) -> list[str]:
    """Deployed versions whose images go: all but the last `keep` releases and the running ones.

    `releases` is the deploy history (most recently deployed last), `pinned` version -> image.
    Order: oldest first.
    """
    known = [v for v in releases if v in pinned]
    kept = (set(known[-keep:]) if keep > 0 else set()) | set(running)
    kept_images = {pinned[v] for v in pinned if v in kept or v not in known}
    return [v for v in known if v not in kept and pinned[v] not in kept_images]


def node_removals(
    doomed: Mapping[str, str], present: Mapping[str, str], in_use: Collection[str]
) -> tuple[list[str], list[str]]:
    """On one node: (the versions whose image to remove, those whose image a running container uses).

    `doomed` maps version -> image reference, `present` image reference -> image id for the
    doomed images the node has, `in_use` the image ids of the node's running containers.
    """
    remove = [v for v, ref in doomed.items() if ref in present and present[ref] not in in_use]
    busy = [v for v, ref in doomed.items() if ref in present and present[ref] in in_use]
    return remove, busy


def fully_pruned(doomed: Collection[str], left: Mapping[str, Collection[str]]) -> list[str]:
    """The doomed versions no node still holds; `left` maps each node to the versions it kept.

    A node that could not be reached is in `left` with every doomed version.
    """
    return [v for v in doomed if not any(v in kept for kept in left.values())]

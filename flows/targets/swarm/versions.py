"""The versions a swarm target can deploy: each pinned by digest at the address the nodes pull from.

`register_version` asks the registry the pipeline pushed to for the image's manifest digest and
keeps `<swarm.registry>/<repository>@<digest>` (the nodes reach the same storage at another
address), so every node runs the same bits whatever happens to the tag.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flows.registry.client import manifest_digest
from flows.registry.names import split_image
from flows.targets.swarm import services
from flows.targets.swarm.engine import SwarmError


class VersionBook:
    """Version -> pinned image, in one JSON file."""

    def __init__(self, path: Path, node_registry: str) -> None:
        """Kept in `path`; `node_registry` is the registry address the nodes pull from."""
        self.path = path
        self.node_registry = node_registry

    def read(self) -> dict[str, str]:
        """Every registered version and its pinned image."""
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def pinned(self, version: str) -> str | None:
        """The pinned image of `version`, None if it was never registered."""
        return self.read().get(version)

    def register(self, version: str, bundle: dict[str, Any]) -> str:
        """Pin the bundle's `Image.Name` by its digest and keep it; the pinned reference."""
        try:
            image = bundle["Image"]["Name"]
        except (KeyError, TypeError):
            raise SwarmError(f"version {version}: Dockerrun.aws.json has no Image.Name") from None
        parts = split_image(str(image))
        if parts is None:
            raise SwarmError(
                f"version {version}: image {image!r} names no registry the nodes could pull from"
            )
        digest = manifest_digest(*parts)
        if digest is None:
            raise SwarmError(f"version {version}: {image} is not in its registry; push it first")
        pinned = services.pinned(self.node_registry, parts.repository.partition("/")[2], digest)
        versions = {**self.read(), version: pinned}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(versions, indent=2, sort_keys=True))
        os.replace(tmp, self.path)
        return pinned

"""The versions a swarm target can deploy: each pinned by digest at the address the nodes pull from.

`register_version` asks the registry the pipeline pushed to for the image's manifest digest and
keeps `<swarm.registry>/<repository>@<digest>` (the nodes reach the same storage at another
address), so every node runs the same bits whatever happens to the tag. The book also keeps the
deploy history (most recently deployed last), which retention reads; both live in one JSON file
(`{"versions": {...}, "releases": [...]}`; a file holding only the versions map still reads),
changed under a file lock (a deploy's background retention writes it too).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from flows.registry.client import manifest_digest
from flows.registry.names import split_image
from flows.targets.local.state import file_lock
from flows.targets.swarm import services
from flows.targets.swarm.engine import SwarmError


class VersionBook:
    """Version -> pinned image, and the deploy history, in one JSON file."""

    def __init__(self, path: Path, node_registry: str) -> None:
        """Kept in `path`; `node_registry` is the registry address the nodes pull from."""
        self.path = path
        self.node_registry = node_registry

    def _load(self) -> dict[str, Any]:
        """The file's content as `{"versions": {version: image}, "releases": [version, ...]}`."""
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        if not isinstance(data, dict):
            data = {}
        nested = isinstance(data.get("versions"), dict)
        versions = data["versions"] if nested else {k: v for k, v in data.items() if isinstance(v, str)}
        releases = data.get("releases") if nested else None
        return {
            "versions": {str(k): str(v) for k, v in versions.items()},
            "releases": [str(v) for v in releases] if isinstance(releases, list) else [],
        }

    @contextlib.contextmanager
    def _changing(self) -> Iterator[dict[str, Any]]:
        """The content, under the book's lock, written back atomically after the block."""
        with file_lock(self.path.with_suffix(".lock")):
            data = self._load()
            yield data
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
            os.replace(tmp, self.path)

    def read(self) -> dict[str, str]:
        """Every registered version and its pinned image."""
        return dict(self._load()["versions"])

    def releases(self) -> list[str]:
        """The deploy history: each version once, most recently deployed last."""
        return list(self._load()["releases"])

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
        with self._changing() as data:
            data["versions"][version] = pinned
        return pinned

    def deployed(self, version: str) -> None:
        """Record that `version` was just deployed (moved to the end of the history)."""
        with self._changing() as data:
            data["releases"] = [*(v for v in data["releases"] if v != version), version]

    def forget(self, pruned: Mapping[str, str]) -> None:
        """Drop pruned versions (version -> the image pruned) from the book and the history; a
        version registered again since, with another image, stays (a new release registers it)."""
        with self._changing() as data:
            gone = {v for v, image in pruned.items() if data["versions"].get(v, image) == image}
            data["versions"] = {v: image for v, image in data["versions"].items() if v not in gone}
            data["releases"] = [v for v in data["releases"] if v not in gone]

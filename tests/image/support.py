"""Shared by the Docker-marked build and image tests: build the repo's image once per module set.

Images are tagged with the test process id and labelled `deliverypipeline.test=<pid>`, so
concurrent test runs never touch each other's images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flows.image.build import BuiltImage
from flows.image.cli import build_release
from flows.source.version import VersionInfo

REPO = Path(__file__).resolve().parents[2]
REGISTRY = "127.0.0.1:5000"
TEST_LABEL = "deliverypipeline.test"


def labels_for_test() -> dict[str, str]:
    """The label every Docker object made by this test process carries."""
    return {TEST_LABEL: str(os.getpid())}


def repository_for_test(name: str) -> str:
    """A repository name in the local registry unique to this test process."""
    return f"{REGISTRY}/deliverypipeline-test-{name}-{os.getpid()}"


def build_repo_image(client: Any, repository: str) -> tuple[VersionInfo, BuiltImage]:
    """The real image of this checkout, built through flows.image like the pipeline does."""
    lines: list[str] = []
    try:
        return build_release(client, REPO, repository, log=lines.append, extra_labels=labels_for_test())
    except Exception as exc:
        raise AssertionError(f"{exc}\n--- build log tail ---\n" + "\n".join(lines[-30:])) from exc


def remove_image(client: Any, tag: str) -> None:
    """Untag a test image, keeping its parent layers as build cache for the next run."""
    try:
        client.images.remove(tag, noprune=True)
    except Exception as exc:
        if type(exc).__name__ != "ImageNotFound":
            raise

"""Pure naming rules: flow-run names and the cache keys that let a re-run reuse earlier work.

A cache key says exactly which inputs a step's result depends on. Same commit and same
build inputs give the same key, so a re-run (or a retried run) skips the step and reuses
its persisted result; any change in an input gives a new key and the step runs again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.@-]+")
SHORT = 8  # one length everywhere: run names, work directories, and the version (`--abbrev`)


def short(commit: str) -> str:
    """A commit id shortened for names, as long as in the version (`flows.source.version`)."""
    return commit[:SHORT]


def digest(parts: Iterable[str]) -> str:
    """A stable hex digest of ordered parts (separated so ("ab","c") != ("a","bc"))."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def run_name(application: str, version: str, commit: str) -> str:
    """The flow run's name once the version is known: `<app>-<version>`, plus the commit if the
    version does not already carry it (an exact tag like `v1.4.0`)."""
    name = f"{application}-{version}"
    if short(commit) not in version:
        name = f"{name}@{short(commit)}"
    return _NAME_BAD.sub("-", name)


def initial_run_name(application: str, ref: str, commit: str | None) -> str:
    """The flow run's name before checkout: the resolved commit when known, else the ref."""
    label = short(commit) if commit else ref
    return _NAME_BAD.sub("-", f"{application}-{label}")


def unit_tests_key(tree: str, python: str) -> str:
    """The unit-test result depends on the source tree and the interpreter, not on the commit
    message: a re-run of the same tree does not re-run the tests."""
    return f"unit-tests-{digest([tree, python])}"


def build_key(commit: str, version: str, build_inputs: str, image: str) -> str:
    """The image depends on the commit (its version labels) and the build inputs' hash."""
    return f"build-{short(commit)}-{digest([commit, version, build_inputs, image])}"


def build_inputs_hash(tree: str, base_image: str, base_image_id: str | None) -> str:
    """What goes into an image besides the version: the source tree and the exact base image."""
    return digest([tree, base_image, base_image_id or "-"])


def smoke_key(image_id: str, version: str) -> str:
    """A smoke test proves one image (by content id) serves one version."""
    return f"smoke-{digest([image_id, version])}"


def push_key(image_ref: str, image_id: str) -> str:
    """A push puts one image (by content id) at one registry reference."""
    return f"push-{digest([image_ref, image_id])}"

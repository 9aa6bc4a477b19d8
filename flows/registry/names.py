"""Pure naming of registries and image references: base URLs, repository paths, registry hosts.

Nothing here does I/O: `client` and the targets use these to decide what to ask, and whether an
image reference names a registry at all (pulling then never reaches a public hub).
"""

from __future__ import annotations

from typing import NamedTuple

DOCKER_HUB_NAMES = frozenset({"", "docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "https://registry-1.docker.io"  # Docker Hub's v2 API is not served on docker.io


class ImageRef(NamedTuple):
    """An image reference split for the registry API: `127.0.0.1:5000/app:1.0`."""

    registry: str  # "127.0.0.1:5000"
    repository: str  # "127.0.0.1:5000/app"
    tag: str  # "1.0"


def names_registry(image: str) -> bool:
    """Whether an image reference names a registry host (`host.domain/`, `host:port/`, `localhost/`)."""
    first, sep, _ = image.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def split_image(image: str) -> ImageRef | None:
    """`127.0.0.1:5000/app:1.0` -> `ImageRef("127.0.0.1:5000", "127.0.0.1:5000/app", "1.0")`.

    None when the reference names no registry host or no tag (nothing to ask a registry about).
    """
    if not names_registry(image):
        return None
    repository, colon, tag = image.rpartition(":")
    if not colon or "/" in tag or not repository or "@" in image:
        return None
    return ImageRef(image.partition("/")[0], repository, tag)


def registry_base_url(registry: str) -> str:
    """The registry's v2 API base: http:// for a loopback registry (as the engine treats it:
    insecure), Docker Hub's API host for Docker Hub, https:// otherwise."""
    if "://" in registry:
        return registry.rstrip("/")
    if registry in DOCKER_HUB_NAMES:
        return DOCKER_HUB_API
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0] + "]"
    loopback = host in ("localhost", "[::1]") or host.startswith("127.")
    return f"{'http' if loopback else 'https'}://{registry}"


def repository_path(registry: str, repository: str) -> str:
    """`repository` without a leading `<registry>/`: the name in the registry's v2 API."""
    prefix = registry.split("://", 1)[-1].rstrip("/") + "/"
    path = repository[len(prefix) :] if registry and repository.startswith(prefix) else repository
    if registry in DOCKER_HUB_NAMES and "/" not in path:
        return f"library/{path}"  # Docker Hub's official images live under library/
    return path


def manifest_url(registry: str, repository: str, reference: str) -> str:
    """`<base>/v2/<name>/manifests/<tag or digest>`."""
    return f"{registry_base_url(registry)}/v2/{repository_path(registry, repository)}/manifests/{reference}"

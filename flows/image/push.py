"""Push the release image to its registry, and ask a registry whether it already has it.

`client.images.push(stream=True, decode=True)` does not raise when a push fails: the error
is a line of the stream. `read_push_stream` raises `PushError` for it, or
`RegistryUnreachable` (a subclass, the one worth retrying) when the engine could not reach
the registry. `image_in_registry` uses the registry's v2 HTTP API so a re-run can skip a
push that already happened.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flows import http
from flows.image.errors import PushError, RegistryUnreachable

# What the engine says when it cannot talk to the registry at all (Go net/http errors).
UNREACHABLE_MARKERS = (
    "connection refused",
    "i/o timeout",
    "no such host",
    "connection reset",
    "network is unreachable",
    "no route to host",
    "tls handshake timeout",
    "context deadline exceeded",
    "timeout exceeded while awaiting headers",
    "server misbehaving",
)
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
_DIGEST_IN_STATUS = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def classify_push_error(message: str) -> PushError:
    """The exception for an engine's push error message: unreachable registry or not."""
    lowered = message.lower()
    if any(marker in lowered for marker in UNREACHABLE_MARKERS):
        return RegistryUnreachable(f"registry unreachable during push: {message}")
    return PushError(f"push refused: {message}")


def read_push_stream(chunks: Iterable[Mapping[str, Any]], log: Callable[[str], None]) -> str | None:
    """Log a push stream's progress; return the pushed manifest's digest, or raise PushError."""
    digest: str | None = None
    last_logged: dict[str, str] = {}
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown push error").strip()
            log(f"ERROR: {message}")
            raise classify_push_error(message)
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("Digest"), str):
            digest = aux["Digest"]
        status = chunk.get("status")
        if isinstance(status, str):
            found = _DIGEST_IN_STATUS.search(status)
            if found and digest is None:
                digest = found.group(1)
            layer = str(chunk.get("id") or "")
            if last_logged.get(layer) != status:  # one line per layer state, not per progress tick
                last_logged[layer] = status
                log(f"{layer}: {status}" if layer else status)
    return digest


def push_image(
    client: Any,
    repository: str,
    tag: str,
    *,
    log: Callable[[str], None] = print,
    auth_config: Mapping[str, str] | None = None,
) -> str:
    """Push `<repository>:<tag>` (repository includes the registry host); return its digest."""
    ref = f"{repository}:{tag}"
    log(f"pushing {ref}")
    try:
        auth = dict(auth_config) if auth_config else None
        stream = client.images.push(repository, tag=tag, stream=True, decode=True, auth_config=auth)
        digest = read_push_stream(stream, log)
    except PushError:
        raise
    except Exception as exc:  # the SDK's APIError (image not found locally, ...), engine gone
        raise PushError(f"push of {ref} failed: {exc}") from exc
    if not digest:
        raise PushError(f"push of {ref} ended without reporting a digest; check the registry's log")
    log(f"pushed {ref} ({digest})")
    return digest


DOCKER_HUB_NAMES = frozenset({"", "docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "https://registry-1.docker.io"  # Docker Hub's v2 API is not served on docker.io


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


def _basic(auth: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


def _bearer_token(challenge: str, auth: tuple[str, str] | None, timeout: float) -> str | None:
    """A token for a `Bearer realm=...` challenge (None for another challenge); ValueError if none came."""
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if not challenge.lower().startswith("bearer") or "realm" not in params:
        return None
    query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
    answer = http.get(
        f"{params['realm']}?{query}",
        timeout=timeout,
        headers={"Authorization": _basic(auth)} if auth else None,
    )
    if answer.error is not None:
        raise ValueError(answer.error)
    if answer.status is None or not 200 <= answer.status < 300:
        raise ValueError(f"HTTP {answer.status} from {params['realm']}")
    body = answer.json()
    if not isinstance(body, dict):
        raise ValueError(f"no JSON object from {params['realm']}")
    token = body.get("token") or body.get("access_token")
    return str(token) if token else None


def _unreachable(registry: str, url: str, answer: http.Answer) -> RegistryUnreachable:
    return RegistryUnreachable(f"registry {registry} unreachable at {url}: {answer.error}")


def _ok(answer: http.Answer) -> bool:
    """A 2xx status (what urllib did not turn into an HTTPError)."""
    return answer.status is not None and 200 <= answer.status < 300


def image_in_registry(
    registry: str,
    repository: str,
    tag: str,
    *,
    auth: tuple[str, str] | None = None,
    timeout: float = 10,
) -> bool:
    """Whether `registry` has a manifest for `<repository>:<tag>` (HEAD /v2/<name>/manifests/<tag>).

    Raises RegistryUnreachable when the registry does not answer, PushError on an answer
    other than 200/404 (e.g. refused credentials).
    """
    url = f"{registry_base_url(registry)}/v2/{repository_path(registry, repository)}/manifests/{tag}"
    headers = {"Accept": MANIFEST_TYPES}
    if auth:
        headers["Authorization"] = _basic(auth)
    for _attempt in range(2):  # the second only after a bearer-token challenge
        answer = http.request("HEAD", url, timeout=timeout, headers=headers)
        if answer.error is not None:
            raise _unreachable(registry, url, answer)
        if _ok(answer):
            return answer.status == 200
        if answer.status == 404:
            return False
        challenge = answer.header("WWW-Authenticate") or ""
        if answer.status == 401 and "Bearer" not in headers.get("Authorization", ""):
            try:
                token = _bearer_token(challenge, auth, timeout)
            except ValueError as token_exc:
                raise PushError(f"{registry} gave no token for {repository}: {token_exc}") from token_exc
            if token:
                headers["Authorization"] = f"Bearer {token}"
                continue
        raise PushError(f"registry {registry} answered HTTP {answer.status} for {url}")
    raise PushError(f"registry {registry} refused access to {repository} (HTTP 401 with a token)")


def delete_from_registry(registry: str, repository: str, digest: str, *, timeout: float = 10) -> None:
    """Delete a manifest by digest (the registry must allow deletes): test clean-up and retention."""
    url = f"{registry_base_url(registry)}/v2/{repository_path(registry, repository)}/manifests/{digest}"
    answer = http.request("DELETE", url, timeout=timeout, headers={"Accept": MANIFEST_TYPES})
    if answer.error is not None:
        raise _unreachable(registry, url, answer)
    if not _ok(answer):
        raise PushError(f"{registry} refused deleting {repository}@{digest}: HTTP {answer.status}")


def manifest_digest(registry: str, repository: str, tag: str, *, timeout: float = 10) -> str | None:
    """The digest of `<repository>:<tag>` in the registry (HEAD, `Docker-Content-Digest`); None if absent.

    Used to delete a tag's manifest (`delete_from_registry` takes a digest). Raises
    RegistryUnreachable when the registry does not answer, PushError on another refusal.
    """
    url = f"{registry_base_url(registry)}/v2/{repository_path(registry, repository)}/manifests/{tag}"
    answer = http.request("HEAD", url, timeout=timeout, headers={"Accept": MANIFEST_TYPES})
    if answer.error is not None:
        raise _unreachable(registry, url, answer)
    if answer.status == 404:
        return None
    if not _ok(answer):
        raise PushError(f"registry {registry} answered HTTP {answer.status} for {url}")
    digest = answer.header("Docker-Content-Digest")
    if not digest:
        raise PushError(f"registry {registry} gave no Docker-Content-Digest for {repository}:{tag}")
    return str(digest)

"""Ask a registry's v2 HTTP API about manifests: is a tag there, its digest, delete a manifest.

Through the one HTTP client (`flows.http`). Basic credentials, or a bearer token from the
registry's `WWW-Authenticate` challenge; 404 means absent; no answer at all is
`RegistryUnreachable`, any other refusal `RegistryError`.
"""

from __future__ import annotations

import base64
import re
import urllib.parse

from flows import http
from flows.registry.errors import RegistryError, RegistryUnreachable
from flows.registry.names import manifest_url

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


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

    Raises RegistryUnreachable when the registry does not answer, RegistryError on an answer
    other than 200/404 (e.g. refused credentials).
    """
    url = manifest_url(registry, repository, tag)
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
                raise RegistryError(f"{registry} gave no token for {repository}: {token_exc}") from token_exc
            if token:
                headers["Authorization"] = f"Bearer {token}"
                continue
        raise RegistryError(f"registry {registry} answered HTTP {answer.status} for {url}")
    raise RegistryError(f"registry {registry} refused access to {repository} (HTTP 401 with a token)")


def delete_from_registry(registry: str, repository: str, digest: str, *, timeout: float = 10) -> None:
    """Delete a manifest by digest (the registry must allow deletes): test clean-up and retention."""
    url = manifest_url(registry, repository, digest)
    answer = http.request("DELETE", url, timeout=timeout, headers={"Accept": MANIFEST_TYPES})
    if answer.error is not None:
        raise _unreachable(registry, url, answer)
    if not _ok(answer):
        raise RegistryError(f"{registry} refused deleting {repository}@{digest}: HTTP {answer.status}")


def manifest_digest(registry: str, repository: str, tag: str, *, timeout: float = 10) -> str | None:
    """The digest of `<repository>:<tag>` in the registry (HEAD, `Docker-Content-Digest`); None if absent.

    Used to delete a tag's manifest (`delete_from_registry` takes a digest). Raises
    RegistryUnreachable when the registry does not answer, RegistryError on another refusal.
    """
    url = manifest_url(registry, repository, tag)
    answer = http.request("HEAD", url, timeout=timeout, headers={"Accept": MANIFEST_TYPES})
    if answer.error is not None:
        raise _unreachable(registry, url, answer)
    if answer.status == 404:
        return None
    if not _ok(answer):
        raise RegistryError(f"registry {registry} answered HTTP {answer.status} for {url}")
    digest = answer.header("Docker-Content-Digest")
    if not digest:
        raise RegistryError(f"registry {registry} gave no Docker-Content-Digest for {repository}:{tag}")
    return str(digest)

"""Push the release image to its registry, and ask a registry whether it already has it.

`client.images.push(stream=True, decode=True)` does not raise when a push fails: the error
is a line of the stream. `read_push_stream` raises `PushError` for it, or
`RegistryUnreachable` (a subclass, the one worth retrying) when the engine could not reach
the registry. `image_in_registry` asks the registry's v2 HTTP API (through `flows.registry`)
so a re-run can skip a push that already happened.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

from flows.image.errors import PushError, RegistryUnreachable
from flows.registry import client
from flows.registry import errors as registry_errors
from flows.registry.client import MANIFEST_TYPES
from flows.registry.errors import RegistryError
from flows.registry.names import registry_base_url, repository_path

__all__ = [
    "MANIFEST_TYPES",
    "classify_push_error",
    "delete_from_registry",
    "image_in_registry",
    "manifest_digest",
    "push_image",
    "read_push_stream",
    "registry_base_url",
    "repository_path",
]

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
P = ParamSpec("P")
T = TypeVar("T")
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


def _as_push_error(exc: RegistryError) -> PushError:
    """The image stage's exception for a registry client's: unreachable stays the retried kind."""
    kind = RegistryUnreachable if isinstance(exc, registry_errors.RegistryUnreachable) else PushError
    return kind(str(exc))


def _in_push_errors(call: Callable[P, T]) -> Callable[P, T]:
    """`call` of `flows.registry.client`, raising the image stage's `RegistryUnreachable` (retried)
    or `PushError` instead of the client's own errors."""

    @functools.wraps(call)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return call(*args, **kwargs)
        except RegistryError as exc:
            raise _as_push_error(exc) from exc

    return wrapped


image_in_registry = _in_push_errors(client.image_in_registry)
manifest_digest = _in_push_errors(client.manifest_digest)
delete_from_registry = _in_push_errors(client.delete_from_registry)

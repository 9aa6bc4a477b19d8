"""Smoke-test a built image: run it as the seed's CI did, before anything is pushed.

The container runs detached with its default store (LevelDB inside the container, no
DELIVERY_CONF), its port published on 127.0.0.1 at a port the engine picks. `/health` must
answer 200 within the deadline and `/` (asked for JSON) must report the built version.
The container is always removed; a failure carries the container's last log lines.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from flows.image.errors import SmokeTestFailed

CONTAINER_PORT = "8080/tcp"
LOG_TAIL = 40


@dataclass(frozen=True)
class SmokeResult:
    """A passed smoke test: what answered, where, and how fast it got healthy."""

    image: str
    version: str
    url: str
    seconds_to_healthy: float


def published_port(attrs: Mapping[str, Any], container_port: str = CONTAINER_PORT) -> int | None:
    """The host port the engine bound for `container_port`, from a container's attrs."""
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in ports.get(container_port) or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def reported_version(payload: Any) -> str | None:
    """The version a JSON answer of `/` reports: `version`, or `build.version`."""
    if not isinstance(payload, dict):
        return None
    version = payload.get("version")
    if isinstance(version, str):
        return version
    build = payload.get("build")
    if isinstance(build, dict) and isinstance(build.get("version"), str):
        return str(build["version"])
    return None


def http_get(url: str, timeout: float, accept: str = "*/*") -> tuple[int, bytes]:
    """GET `url`; (status, body) for any HTTP answer, OSError/HTTPException if none."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read() or b"")


def _log_tail(container: Any, lines: int = LOG_TAIL) -> str:
    try:
        return bytes(container.logs(tail=lines)).decode("utf-8", "replace").rstrip()
    except Exception as exc:  # the container may already be gone
        return f"(logs unavailable: {exc})"


def _fail(container: Any, image: str, reason: str) -> SmokeTestFailed:
    return SmokeTestFailed(
        f"smoke test of {image} failed: {reason}\n--- last {LOG_TAIL} log lines ---\n{_log_tail(container)}"
    )


def _raise_if_stopped(container: Any, image: str) -> None:
    if container.status in ("exited", "dead"):
        code = container.attrs.get("State", {}).get("ExitCode")
        raise _fail(container, image, f"the container stopped (exit code {code}) before /health answered")


def _wait_healthy(container: Any, image: str, base_url: str, deadline: float) -> None:
    last_problem = "no answer yet"
    while True:
        container.reload()
        _raise_if_stopped(container, image)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _fail(container, image, f"/health did not answer 200 within the deadline ({last_problem})")
        try:
            status, _body = http_get(f"{base_url}/health", timeout=max(0.2, min(2.0, remaining)))
            if status == 200:
                return
            last_problem = f"last answer: HTTP {status}"
        except (OSError, HTTPException) as exc:
            last_problem = f"last error: {exc}"
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


def smoke_test(
    client: Any,
    image: str,
    expected_version: str,
    deadline_s: float,
    *,
    labels: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> SmokeResult:
    """Run `image`, check `/health` and the version on `/`, and always remove the container."""
    started = time.monotonic()
    deadline = started + deadline_s
    name = f"deliverypipeline-smoke-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    container = None
    try:
        # create, then start: a failed start still leaves a handle to remove.
        container = client.containers.create(
            image,
            name=name,
            detach=True,
            ports={CONTAINER_PORT: ("127.0.0.1",)},
            labels=dict(labels or {}),
        )
        container.start()
        container.reload()
        port = published_port(container.attrs)
        if port is None:
            _raise_if_stopped(container, image)  # an exited container has no ports left
            raise _fail(container, image, f"the engine published no host port for {CONTAINER_PORT}")
        base_url = f"http://127.0.0.1:{port}"
        log(f"smoke test: {image} as {name} on {base_url}")
        _wait_healthy(container, image, base_url, deadline)
        healthy_after = time.monotonic() - started
        try:
            status, body = http_get(
                f"{base_url}/", timeout=max(1.0, deadline - time.monotonic()), accept="application/json"
            )
        except (OSError, HTTPException) as exc:
            raise _fail(container, image, f"GET / failed after /health passed: {exc}") from exc
        if status != 200:
            raise _fail(container, image, f"GET / answered HTTP {status}: {body[:300]!r}")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise _fail(container, image, f"GET / (JSON asked) gave no JSON: {body[:300]!r}") from exc
        version = reported_version(payload)
        if version != expected_version:
            raise _fail(container, image, f"GET / reports version {version!r}, expected {expected_version!r}")
        log(f"smoke test passed: {image} healthy after {healthy_after:.1f}s, version {version}")
        return SmokeResult(image=image, version=version, url=base_url, seconds_to_healthy=healthy_after)
    except SmokeTestFailed:
        raise
    except Exception as exc:  # engine errors: image missing, port clash, ...
        if container is None:
            raise SmokeTestFailed(f"smoke test of {image} could not start a container: {exc}") from exc
        raise _fail(container, image, f"{type(exc).__name__}: {exc}") from exc
    finally:
        if container is not None:
            try:
                container.remove(force=True, v=True)
            except Exception as exc:
                log(f"smoke test: could not remove container {name}: {exc}")

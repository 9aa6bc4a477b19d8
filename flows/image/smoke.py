"""Smoke-test a built image: run it as the seed's CI did, before anything is pushed.

The container runs detached with its default store (LevelDB inside the container, no
DELIVERY_CONF), its port published on 127.0.0.1 at a port the engine picks. `/health` must
answer 200 within the deadline and `/` (asked for JSON) must report the built version.
The container is always removed; a failure carries the container's last log lines.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flows import http
from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
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


def _wait_healthy(container: Any, image: str, base_url: str, seconds: float, clock: Clock) -> None:
    """Wait up to `seconds` for `/health` to answer 200; fail at once if the container stops."""
    last_problem = ["no answer yet"]

    def healthy(deadline: Deadline) -> bool | None:
        container.reload()
        _raise_if_stopped(container, image)
        remaining = deadline.seconds - deadline.elapsed
        answer = http.get(f"{base_url}/health", timeout=max(0.2, min(2.0, remaining)))
        if answer.status == 200:
            return True
        last_problem[0] = (
            f"last error: {answer.error}" if answer.error else f"last answer: HTTP {answer.status}"
        )
        return None

    def overdue(_: Deadline) -> SmokeTestFailed:
        return _fail(container, image, f"/health did not answer 200 within the deadline ({last_problem[0]})")

    started = clock.now()
    poll_until(
        healthy,
        seconds,
        lambda: min(0.25, max(0.0, seconds - (clock.now() - started))),
        overdue,
        clock=clock,
    )


def smoke_test(
    client: Any,
    image: str,
    expected_version: str,
    deadline_s: float,
    *,
    labels: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
    clock: Clock = SYSTEM_CLOCK,
) -> SmokeResult:
    """Run `image`, check `/health` and the version on `/`, and always remove the container."""
    started = clock.now()
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
        _wait_healthy(container, image, base_url, deadline - clock.now(), clock)
        healthy_after = clock.now() - started
        answer = http.get(
            f"{base_url}/", timeout=max(1.0, deadline - clock.now()), headers={"Accept": "application/json"}
        )
        if answer.error is not None:
            raise _fail(container, image, f"GET / failed after /health passed: {answer.error}")
        status, body = answer.status, answer.body
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

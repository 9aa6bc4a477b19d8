"""The image tasks' pure parts: retried failures, the push deadline, cache keys; and step decisions.

No Docker, registry or Prefect server: retry conditions are judged on hand-made states.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import requests
from prefect.states import Completed, Failed

from flows.config import PipelineConfig
from flows.image.build import BuiltImage
from flows.image.errors import ImageBuildError, PushError, RegistryUnreachable, SmokeTestFailed
from flows.image.tasks import (
    PushTimedOut,
    _engine_connection_lost,
    _push_cache_key,
    push_missing,
    registry_unreachable,
    split_tag,
    within_deadline,
)
from flows.release.decisions import Roles, preprod_already_on, prod_serving
from flows.targets.base import GREEN, GREY, MISSING, READY, RED, UPDATING, Environment

NO_TASK: Any = None  # the retry conditions look only at the state


def failed_with(exc: BaseException) -> Any:
    return Failed(data=exc)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (RegistryUnreachable("registry unreachable during push: connection refused"), True),
        (PushError("push refused: denied"), False),
        (PushTimedOut("push did not finish within 300s"), False),
        (ValueError("anything else"), False),
    ],
)
def test_only_an_unreachable_registry_retries_the_push(error: BaseException, retried: bool) -> None:
    assert registry_unreachable(NO_TASK, NO_TASK, failed_with(error)) is retried
    assert registry_unreachable(NO_TASK, NO_TASK, Completed(data=None)) is False


def _wrapped_connection_error() -> Exception:
    try:
        try:
            raise requests.exceptions.ConnectionError("engine socket refused")
        except requests.exceptions.ConnectionError as cause:
            raise RuntimeError("Error while fetching server API version") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (requests.exceptions.ConnectionError("engine socket refused"), True),
        (_wrapped_connection_error(), True),  # as the Docker SDK raises it
        (ImageBuildError("step 3/9 failed"), False),
        (SmokeTestFailed("no /health"), False),
    ],
)
def test_build_retries_only_a_lost_engine_connection(error: BaseException, retried: bool) -> None:
    assert _engine_connection_lost(NO_TASK, NO_TASK, failed_with(error)) is retried


def test_within_deadline_returns_the_result_or_raises_the_call_s_error() -> None:
    assert within_deadline(5, lambda: "sha256:abc", lambda: PushTimedOut("late")) == "sha256:abc"

    def refuse() -> str:
        raise PushError("push refused: denied")

    with pytest.raises(PushError, match="denied"):
        within_deadline(5, refuse, lambda: PushTimedOut("late"))


def test_within_deadline_stops_waiting_for_a_hung_call() -> None:
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(PushTimedOut, match=r"deadlines\.push"):
        within_deadline(0.02, lambda: release.wait(10), lambda: PushTimedOut("over 0s (deadlines.push)"))
    release.set()
    assert time.monotonic() - started < 5


def test_split_tag_keeps_the_registry_port() -> None:
    assert split_tag("127.0.0.1:5000/app:v1.0.0-2-gabc") == ("127.0.0.1:5000/app", "v1.0.0-2-gabc")


def env(
    name: str, address: str, version: str | None, status: str = READY, health: str = GREEN
) -> Environment:
    return Environment(name, address, version, status, health)


def test_preprod_already_on_the_version_skips_the_deploy_only_when_healthy() -> None:
    config = PipelineConfig()
    prod = env("node-1", "127.0.0.1:8080", "v1")
    accepted = config.accepted_health
    assert preprod_already_on(Roles(prod, env("node-2", "127.0.0.1:8081", "v2")), "v2", accepted)
    assert not preprod_already_on(Roles(prod, env("node-2", "127.0.0.1:8081", "v1")), "v2", accepted)
    unhealthy = env("node-2", "127.0.0.1:8081", "v2", health=RED)
    assert not preprod_already_on(Roles(prod, unhealthy), "v2", accepted)


def test_the_probe_runs_only_when_prod_serves_something() -> None:
    preprod = env("node-2", "127.0.0.1:8081", None, MISSING, GREY)
    assert prod_serving(Roles(env("node-1", "127.0.0.1:8080", "v1"), preprod))
    assert not prod_serving(Roles(env("node-1", "127.0.0.1:8080", None, MISSING, GREY), preprod))
    assert not prod_serving(Roles(env("node-1", "127.0.0.1:8080", "v1", UPDATING), preprod))


def test_the_push_cache_key_does_not_depend_on_the_registry() -> None:
    image = BuiltImage("127.0.0.1:5000/app:v1", "sha256:abc")
    other = BuiltImage("127.0.0.1:5000/app:v1", "sha256:def")
    key = _push_cache_key(NO_TASK, {"image": image, "config": PipelineConfig()})
    assert key == _push_cache_key(NO_TASK, {"image": image, "config": PipelineConfig()})
    assert key != _push_cache_key(NO_TASK, {"image": other, "config": PipelineConfig()})


def test_a_push_the_registry_cannot_confirm_refreshes_its_cache() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    config = PipelineConfig(registry=f"127.0.0.1:{port}")
    image = BuiltImage(f"{config.image}:v1", "sha256:abc")
    assert push_missing(image, config)

"""Steps 3-5 as Prefect tasks: build the image, smoke-test it, push it.

Each is cached across runs by what its result depends on (see `flows.keys`); `build_missing`
and `push_missing` are the liveness checks the flow gives the build and the push (its `Step`'s
`refresh`): a cached build counts only while the image is still in the engine, a cached push only
while the registry still has the tag (else the cache is refreshed). A re-run of the same commit
thus gets all three back as Cached. Only an unreachable registry or a lost engine connection is
retried.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from prefect import Task, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext

from flows import steps
from flows.config import PipelineConfig
from flows.image.build import BuiltImage
from flows.image.build import build_image as build_from_context
from flows.image.errors import PushError, RegistryUnreachable
from flows.image.push import image_in_registry, push_image, registry_base_url
from flows.image.smoke import SmokeResult
from flows.image.smoke import smoke_test as run_smoke_test
from flows.image.wheelhouse import ensure_wheelhouse
from flows.keys import build_inputs_hash, build_key, push_key, smoke_key
from flows.source.tasks import Checkout
from flows.source.version import VersionInfo

BUILD_KEY_LABEL = "deliverypipeline.build-key"
PUSH_RETRY_DELAYS: list[float] = [1.0, 2.0, 4.0]

R = TypeVar("R")


class PushTimedOut(PushError):
    """The push did not finish within `deadlines.push` (not retried: the deadline is spent)."""


def within_deadline(deadline_s: float, call: Callable[[], R], timed_out: Callable[[], Exception]) -> R:
    """`call()`'s result or exception, or `timed_out()` raised once `deadline_s` passes.

    The call runs in a daemon thread: a push blocked on a silent registry cannot be
    interrupted, but the step stops waiting for it.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="deadline-call", daemon=True)
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        raise timed_out()
    if "error" in outcome:
        raise outcome["error"]
    result: R = outcome["value"]
    return result


@dataclass(frozen=True)
class PushedImage:
    """An image in the registry: the reference the release bundle names."""

    ref: str  # registry/repository:tag
    image_id: str
    digest: str | None  # None when the registry already had it


def docker_client() -> Any:
    """A Docker SDK client from the environment (DOCKER_HOST or the local socket)."""
    import docker

    return docker.from_env()


def _unique() -> str:
    return f"miss-{uuid.uuid4().hex}"


def base_image_id(client: Any, base_image: str) -> str | None:
    """The local id of the base image, None if it is not there (the build then says so)."""
    try:
        return str(client.images.get(base_image).id)
    except Exception:  # ImageNotFound, engine errors: the build reports them properly
        return None


def image_build_key(source: Checkout, config: PipelineConfig, client: Any) -> str:
    """The build's cache key: commit, version and the hash of the build inputs."""
    inputs = build_inputs_hash(source.tree, config.base_image, base_image_id(client, config.base_image))
    return build_key(source.commit, source.version, inputs, config.image)


def _existing_image(client: Any, tag: str, key: str) -> Any | None:
    try:
        image = client.images.get(tag)
    except Exception:
        return None
    return image if (image.labels or {}).get(BUILD_KEY_LABEL) == key else None


def _build_cache_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    source: Checkout = parameters["source"]
    config: PipelineConfig = parameters["config"]
    try:
        return image_build_key(source, config, docker_client())
    except Exception:
        return _unique()


def build_missing(source: Checkout, config: PipelineConfig) -> bool:
    """Whether a cached build must be refreshed: the engine no longer has its image.

    The cache key must not depend on whether the image exists (it would change once built and a
    re-run would miss); this liveness check decides `refresh_cache` instead. The image counts
    by its build-key label.
    """
    try:
        client = docker_client()
        key = image_build_key(source, config, client)
        return _existing_image(client, f"{config.image}:{source.version}", key) is None
    except Exception:  # no engine: build (and let the build report it)
        return True


def _engine_connection_lost(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only when the Docker engine could not be reached (not on a failed build)."""
    try:
        state.result()
    except requests.exceptions.ConnectionError:
        return True
    except Exception as exc:
        return isinstance(exc.__cause__, requests.exceptions.ConnectionError)
    return False


@task(
    name=steps.BUILD_IMAGE,
    cache_key_fn=_build_cache_key,
    persist_result=True,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_engine_connection_lost,
)
def build_image(source: Checkout, config: PipelineConfig) -> BuiltImage:
    """Step "build image": `<registry>/<repository>:<version>`, labelled, the build log streamed here.

    An image already built from the same inputs (same build-key label) is reused as is.
    """
    logger = get_run_logger()
    client = docker_client()
    key = image_build_key(source, config, client)
    tag = f"{config.image}:{source.version}"
    existing = _existing_image(client, tag, key)
    if existing is not None:
        logger.info("reusing %s (%s): built earlier from the same inputs", tag, existing.id)
        return BuiltImage(tag=tag, image_id=str(existing.id))
    context = Path(source.path)
    ensure_wheelhouse(context, log=logger.info)
    info = VersionInfo(version=source.version, revision=source.commit, build_time=source.build_time)
    return build_from_context(
        client,
        context,
        config.image,
        info,
        config.base_image,
        logger.info,
        extra_labels={BUILD_KEY_LABEL: key, "deliverypipeline.application": config.application},
        timeout_s=config.deadlines.build,
    )


def _smoke_cache_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    image: BuiltImage = parameters["image"]
    return smoke_key(image.image_id, parameters["version"])


@task(name=steps.SMOKE_TEST, cache_key_fn=_smoke_cache_key, persist_result=True, retries=0)
def smoke_test(image: BuiltImage, version: str, deadline_s: float) -> SmokeResult:
    """Step "smoke test": run the image once, check /health and the version; always removed after."""
    logger = get_run_logger()
    return run_smoke_test(docker_client(), image.tag, version, deadline_s, log=logger.info)


def split_tag(ref: str) -> tuple[str, str]:
    """`"reg:5000/app:v1"` -> `("reg:5000/app", "v1")`."""
    repository, _, tag = ref.rpartition(":")
    return repository, tag


def _push_cache_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    image: BuiltImage = parameters["image"]
    return push_key(image.tag, image.image_id)


def push_missing(image: BuiltImage, config: PipelineConfig) -> bool:
    """Whether a cached push must be refreshed: the registry no longer has the tag, or cannot confirm
    it (a quick anonymous look)."""
    repository, tag = split_tag(image.tag)
    try:
        return not image_in_registry(config.registry, repository, tag, timeout=3)
    except Exception:  # unreachable or needs credentials: push (which retries and reports)
        return True


def registry_unreachable(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a push only when the registry could not be reached; a refused push fails at once."""
    try:
        state.result()
    except RegistryUnreachable:
        return True
    except Exception:
        return False
    return False


def auth_for(config: PipelineConfig) -> dict[str, str] | None:
    """Registry credentials for the configured registry (ECR token, Secret block, environment), if any."""
    from flows.image.registry_auth import registry_auth

    return registry_auth(config)


@task(
    name=steps.PUSH,
    cache_key_fn=_push_cache_key,
    persist_result=True,
    retries=len(PUSH_RETRY_DELAYS),
    retry_delay_seconds=PUSH_RETRY_DELAYS,
    retry_condition_fn=registry_unreachable,
)
def push(image: BuiltImage, config: PipelineConfig) -> PushedImage:
    """Step "push": the image into the registry, unless the registry already has this tag."""
    logger = get_run_logger()
    repository, tag = split_tag(image.tag)
    auth = auth_for(config)
    credentials = (auth["username"], auth["password"]) if auth else None
    if image_in_registry(config.registry, repository, tag, auth=credentials):
        logger.info("%s is already in the registry: not pushing again", image.tag)
        return PushedImage(image.tag, image.image_id, None)
    client = docker_client()
    deadline = config.deadlines.push
    digest = within_deadline(
        deadline,
        lambda: push_image(client, repository, tag, log=logger.info, auth_config=auth),
        lambda: PushTimedOut(
            f"push of {image.tag} did not finish within {deadline:.0f}s (deadlines.push); check that "
            f"the registry answers (`curl {registry_base_url(config.registry)}/v2/`) and the "
            "Docker engine's log"
        ),
    )
    return PushedImage(image.tag, image.image_id, digest)

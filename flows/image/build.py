"""Build the release image with the Docker engine, streaming the build log.

The low-level `client.api.build(..., decode=True)` streams the engine's output but does not
raise when a step fails: the failure is a line with `error`/`errorDetail`, which
`read_build_stream` turns into `ImageBuildError` carrying the engine's message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.image.errors import ImageBuildError
from flows.image.wheelhouse import REQUIREMENTS_FILE, WHEELHOUSE_DIR
from flows.source.version import VersionInfo

DEFAULT_BASE_IMAGE = "deliverypipeline/base:bookworm-py311"
OCI_VERSION = "org.opencontainers.image.version"
OCI_REVISION = "org.opencontainers.image.revision"
OCI_CREATED = "org.opencontainers.image.created"


@dataclass(frozen=True)
class BuildPlan:
    """Everything passed to the engine for one build; pure data, asserted by tests."""

    context: Path
    tag: str
    buildargs: dict[str, str]
    labels: dict[str, str]


def plan_build(
    context: Path,
    repository: str,
    info: VersionInfo,
    base_image: str = DEFAULT_BASE_IMAGE,
    extra_labels: Mapping[str, str] | None = None,
) -> BuildPlan:
    """What to build: the tag `<repository>:<version>`, the build args and the labels."""
    if not repository or ":" in repository.rsplit("/", 1)[-1]:
        raise ImageBuildError(f"repository {repository!r} must be a name without a tag")
    labels = {OCI_VERSION: info.version, OCI_REVISION: info.revision, OCI_CREATED: info.build_time}
    labels.update(extra_labels or {})
    return BuildPlan(
        context=context,
        tag=f"{repository}:{info.version}",
        buildargs={**info.build_args(), "BASE_IMAGE": base_image},
        labels=labels,
    )


def check_context(context: Path) -> None:
    """Fail early, with the fix, when the context lacks what the Dockerfile copies."""
    if not (context / "Dockerfile").is_file():
        raise ImageBuildError(f"no Dockerfile in the build context {context}")
    if not (context / WHEELHOUSE_DIR / REQUIREMENTS_FILE).is_file():
        raise ImageBuildError(
            f"{context / WHEELHOUSE_DIR} is missing or incomplete: run "
            "flows.image.wheelhouse.ensure_wheelhouse(context) before building"
        )
    if not (context / "webapp" / "__main__.py").is_file():
        raise ImageBuildError(f"{context / 'webapp' / '__main__.py'} is missing: nothing to run in the image")


def check_base_image(client: Any, base_image: str) -> None:
    """Fail early, with the fix, when the base image is not in the local engine.

    Without this the classic builder would try to pull it from Docker Hub and fail with a
    DNS or network error that does not say what is missing.
    """
    try:
        client.images.get(base_image)
    except Exception as exc:  # the SDK's ImageNotFound, or the engine being unreachable
        if type(exc).__name__ == "ImageNotFound":
            raise ImageBuildError(
                f"base image {base_image} is not in the local Docker engine (it is never pulled): "
                "build it with `bash scripts/build-base-image.sh` (`make setup` does)"
            ) from exc
        raise ImageBuildError(f"cannot inspect the base image {base_image}: {exc}") from exc


def _line_text(chunk: Mapping[str, Any]) -> str | None:
    if "stream" in chunk:
        text = str(chunk["stream"]).rstrip("\n")
        return text or None
    if "status" in chunk:
        return " ".join(str(chunk[k]) for k in ("id", "status", "progress") if chunk.get(k))
    return None


def read_build_stream(chunks: Iterable[Mapping[str, Any]], log: Callable[[str], None]) -> str | None:
    """Log each line of a build stream; return the image id, or raise ImageBuildError.

    The id comes from the `aux.ID` line (API >= 1.30) or the classic builder's
    "Successfully built <id>" line; None if the stream named neither.
    """
    image_id: str | None = None
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown build error").strip()
            log(f"ERROR: {message}")
            raise ImageBuildError(f"docker build failed: {message}")
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            image_id = aux["ID"]
        text = _line_text(chunk)
        if text is None:
            continue
        for line in text.splitlines():
            log(line)
            if line.startswith("Successfully built ") and image_id is None:
                image_id = line.split()[-1]
    return image_id


@dataclass(frozen=True)
class BuiltImage:
    """The image a build produced: its reference (repository:tag) and its id."""

    tag: str
    image_id: str


def build_image(
    client: Any,
    context: Path,
    repository: str,
    info: VersionInfo,
    base_image: str = DEFAULT_BASE_IMAGE,
    log: Callable[[str], None] = print,
    *,
    extra_labels: Mapping[str, str] | None = None,
    timeout_s: float = 900,
) -> BuiltImage:
    """Build `context`'s Dockerfile as `<repository>:<version>`; never pulls.

    `timeout_s` bounds each wait for the engine's next output line. Raises ImageBuildError
    with the engine's message on failure.
    """
    check_context(context)
    check_base_image(client, base_image)
    plan = plan_build(context, repository, info, base_image, extra_labels)
    log(f"building {plan.tag} from {context} on {base_image}")
    try:
        stream = client.api.build(
            path=str(plan.context),
            tag=plan.tag,
            buildargs=plan.buildargs,
            labels=plan.labels,
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
            timeout=timeout_s,
        )
        image_id = read_build_stream(stream, log)
        if image_id is None:
            image_id = client.images.get(plan.tag).id
    except ImageBuildError:
        raise
    except Exception as exc:  # the SDK raises APIError, requests' errors, ...
        raise ImageBuildError(f"docker build of {plan.tag} failed: {exc}") from exc
    log(f"built {plan.tag} ({image_id})")
    return BuiltImage(tag=plan.tag, image_id=str(image_id))

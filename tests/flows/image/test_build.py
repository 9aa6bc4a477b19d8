"""The build plan and the reading of the engine's build stream (no engine needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.image.build import (
    OCI_CREATED,
    OCI_REVISION,
    OCI_VERSION,
    check_base_image,
    check_context,
    plan_build,
    read_build_stream,
)
from flows.image.errors import ImageBuildError
from flows.source.version import VersionInfo

INFO = VersionInfo("v1.2.0-3-gabc1234", "abc1234def", "2026-11-27T23:00:00Z")


def test_plan_tags_with_the_version_and_labels_with_oci_keys(tmp_path: Path) -> None:
    plan = plan_build(
        tmp_path, "127.0.0.1:5000/deliverypipeline", INFO, "base:1", {"deliverypipeline.test": "7"}
    )
    assert plan.tag == "127.0.0.1:5000/deliverypipeline:v1.2.0-3-gabc1234"
    assert plan.buildargs == {
        "VERSION": "v1.2.0-3-gabc1234",
        "REVISION": "abc1234def",
        "BUILD_TIME": "2026-11-27T23:00:00Z",
        "BASE_IMAGE": "base:1",
    }
    assert plan.labels[OCI_VERSION] == INFO.version
    assert plan.labels[OCI_REVISION] == INFO.revision
    assert plan.labels[OCI_CREATED] == INFO.build_time
    assert plan.labels["deliverypipeline.test"] == "7"


def test_plan_rejects_a_repository_with_a_tag(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="without a tag"):
        plan_build(tmp_path, "deliverypipeline:latest", INFO)


def test_stream_error_raises_with_the_engine_message() -> None:
    lines: list[str] = []
    chunks: list[dict[str, Any]] = [
        {"stream": "Step 1/3 : FROM base\n"},
        {"stream": " ---> abc\n"},
        {"errorDetail": {"code": 1, "message": "The command '/bin/sh -c false' returned a non-zero code: 1"}},
    ]
    with pytest.raises(ImageBuildError, match="returned a non-zero code: 1"):
        read_build_stream(chunks, lines.append)
    assert lines[:2] == ["Step 1/3 : FROM base", " ---> abc"]
    assert lines[-1].startswith("ERROR:")


def test_stream_image_id_from_aux_or_success_line() -> None:
    aux: list[dict[str, Any]] = [
        {"stream": "Step 1/1 : FROM base\n"},
        {"aux": {"ID": "sha256:1234"}},
        {"stream": "Successfully built 1234\n"},
    ]
    assert read_build_stream(aux, lambda _line: None) == "sha256:1234"
    classic = [{"stream": "Successfully built 5678abcd\n"}, {"stream": "Successfully tagged x:1\n"}]
    assert read_build_stream(classic, lambda _line: None) == "5678abcd"
    assert read_build_stream([{"stream": "\n"}], lambda _line: None) is None


def test_check_context_names_the_missing_wheelhouse(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ImageBuildError, match="ensure_wheelhouse"):
        check_context(tmp_path)
    (tmp_path / ".wheelhouse").mkdir()
    (tmp_path / ".wheelhouse" / "requirements.txt").write_text("x\n")
    with pytest.raises(ImageBuildError, match="__main__"):
        check_context(tmp_path)
    (tmp_path / "webapp").mkdir()
    (tmp_path / "webapp" / "__main__.py").write_text("")
    check_context(tmp_path)


def test_repo_dockerfile_uses_the_contracted_args_and_command() -> None:
    dockerfile = (Path(__file__).parents[3] / "Dockerfile").read_text()
    for needed in (
        "ARG BASE_IMAGE=",
        "ARG VERSION",
        "ARG REVISION",
        "ARG BUILD_TIME",
        "--no-index",
        "HEALTHCHECK",
    ):
        assert needed in dockerfile
    assert dockerfile.rstrip().endswith('CMD ["python", "-m", "webapp"]')
    # Dependencies are installed before the code is copied, so a code change keeps them cached.
    assert dockerfile.index("requirements.txt") < dockerfile.index("COPY webapp/")
    assert dockerfile.index("COPY webapp/") < dockerfile.index("ARG VERSION")


def test_demo_run_wants_host_and_port() -> None:
    from flows.image.cli import run_detached
    from flows.image.errors import BuildStepError

    with pytest.raises(BuildStepError, match="HOST:PORT"):
        run_detached(object(), "img:v1", "8080", "demo")


class _Images:
    """The `client.images` part of a Docker client: `get` raises the given error, if any."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.asked: list[str] = []

    def get(self, name: str) -> object:
        self.asked.append(name)
        if self.error is not None:
            raise self.error
        return object()


class _Client:
    def __init__(self, error: Exception | None = None) -> None:
        self.images = _Images(error)


def test_missing_base_image_names_the_script_that_builds_it() -> None:
    from docker.errors import ImageNotFound

    client = _Client(ImageNotFound("No such image: base:1"))
    with pytest.raises(ImageBuildError, match=r"base image base:1 is not in .*scripts/build-base-image\.sh"):
        check_base_image(client, "base:1")
    assert client.images.asked == ["base:1"]
    check_base_image(_Client(), "base:1")  # present: no error


def test_unreachable_engine_keeps_its_cause_for_the_retry_policy() -> None:
    cause = ConnectionError("engine went away")
    with pytest.raises(ImageBuildError, match="cannot inspect the base image") as info:
        check_base_image(_Client(cause), "base:1")
    assert info.value.__cause__ is cause

"""Push stream reading, error classification and registry addressing (no engine needed)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from flows.image.errors import PushError, RegistryUnreachable
from flows.image.push import (
    classify_push_error,
    image_in_registry,
    read_push_stream,
    registry_base_url,
    repository_path,
)

DIGEST = "sha256:" + "ab" * 32


def test_digest_from_aux_line() -> None:
    lines: list[str] = []
    chunks: list[dict[str, Any]] = [
        {"status": "The push refers to repository [127.0.0.1:5000/app]"},
        {"status": "Pushing", "id": "l1", "progress": "[=>  ]"},
        {"status": "Pushing", "id": "l1", "progress": "[==> ]"},
        {"status": "Pushed", "id": "l1"},
        {"status": f"v1: digest: {DIGEST} size: 1234"},
        {"aux": {"Tag": "v1", "Digest": DIGEST, "Size": 1234}},
    ]
    assert read_push_stream(chunks, lines.append) == DIGEST
    assert lines.count("l1: Pushing") == 1  # progress ticks are not logged one by one


def test_digest_from_status_line_alone() -> None:
    assert read_push_stream([{"status": f"v1: digest: {DIGEST} size: 1"}], lambda _line: None) == DIGEST


@pytest.mark.parametrize(
    "message",
    [
        'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
        'Get "https://reg.example/v2/": net/http: TLS handshake timeout',
        "dial tcp: lookup reg.example: no such host",
    ],
)
def test_unreachable_registry_errors_are_retryable(message: str) -> None:
    with pytest.raises(RegistryUnreachable, match="unreachable"):
        read_push_stream([{"errorDetail": {"message": message}, "error": message}], lambda _line: None)


def test_refusals_are_plain_push_errors() -> None:
    error = classify_push_error("unauthorized: authentication required")
    assert type(error) is PushError
    assert "authentication required" in str(error)


def test_registry_addressing() -> None:
    assert registry_base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert registry_base_url("localhost:5000") == "http://localhost:5000"
    assert registry_base_url("registry.example:443") == "https://registry.example:443"
    assert repository_path("127.0.0.1:5000", "127.0.0.1:5000/deliverypipeline") == "deliverypipeline"
    assert repository_path("127.0.0.1:5000", "team/deliverypipeline") == "team/deliverypipeline"


def test_image_in_registry_on_a_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RegistryUnreachable, match=f"127.0.0.1:{port}"):
        image_in_registry(f"127.0.0.1:{port}", "deliverypipeline", "v1", timeout=2)


@pytest.mark.parametrize("registry", ["", "docker.io", "index.docker.io"])
def test_docker_hub_is_asked_through_its_api_host(registry: str) -> None:
    from flows.image.push import registry_base_url, repository_path

    assert registry_base_url(registry) == "https://registry-1.docker.io"
    assert repository_path(registry, "acme/deliverypipeline") == "acme/deliverypipeline"
    assert repository_path(registry, "deliverypipeline") == "library/deliverypipeline"


def test_other_registries_keep_their_host_and_path() -> None:
    from flows.image.push import registry_base_url, repository_path

    assert registry_base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert (
        registry_base_url("123.dkr.ecr.eu-west-1.amazonaws.com")
        == "https://123.dkr.ecr.eu-west-1.amazonaws.com"
    )
    assert repository_path("127.0.0.1:5000", "127.0.0.1:5000/app") == "app"

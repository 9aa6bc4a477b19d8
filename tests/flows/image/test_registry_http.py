"""The registry's v2 API as `flows.registry.client` asks it, against a tiny registry on 127.0.0.1.

Basic credentials, a bearer-token challenge, the manifest Accept header, 404 as "absent",
other refusals as `RegistryError`, the digest header and deletes; and the image stage's view
of the same calls (`flows.image.push`), whose unreachable registry stays the retried error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.image import errors as image_errors
from flows.image import push
from flows.registry.client import (
    MANIFEST_TYPES,
    delete_from_registry,
    image_in_registry,
    manifest_digest,
)
from flows.registry.errors import RegistryError, RegistryUnreachable
from flows.registry.names import split_image
from tests.support import free_port, serving

DIGEST = "sha256:" + "cd" * 32
TOKEN = "t0ken"
BASIC = "Basic " + base64.b64encode(b"user:secret").decode()


@dataclass
class Registry:
    """What the fake registry holds and saw."""

    url: str = ""
    tags: set[str] = field(default_factory=lambda: {"v1"})
    bearer: bool = False  # ask for a bearer token (as Docker Hub and GHCR do)
    status: int | None = None  # answer every manifest request with this status instead
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


class Handler(BaseHTTPRequestHandler):
    registry: Registry

    def _send(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _manifest(self) -> None:
        registry = self.registry
        registry.seen.append((self.command, self.path, dict(self.headers.items())))
        if self.path.startswith("/token"):
            granted = self.headers.get("Authorization") == BASIC
            self._send(200, body=json.dumps({"token": TOKEN} if granted else {}).encode())
            return
        if registry.bearer and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = f'Bearer realm="{registry.url}/token",service="fake",scope="repository:app:pull"'
            self._send(401, {"WWW-Authenticate": challenge})
            return
        if registry.status is not None:
            self._send(registry.status)
            return
        tag = self.path.rsplit("/", 1)[-1]
        if self.command == "DELETE":
            self._send(202 if tag == DIGEST else 404)
        elif tag in registry.tags:
            self._send(200, {"Docker-Content-Digest": DIGEST})
        else:
            self._send(404)

    do_HEAD = do_GET = do_DELETE = _manifest

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def registry() -> Iterator[Registry]:
    state = Registry()
    handler = type("FakeRegistry", (Handler,), {"registry": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    with serving(httpd):
        yield state


def test_a_present_tag_is_found_and_an_absent_one_is_not(registry: Registry) -> None:
    assert image_in_registry(registry.host, f"{registry.host}/app", "v1", timeout=5)
    assert not image_in_registry(registry.host, f"{registry.host}/app", "v2", timeout=5)
    (method, path, headers), _ = registry.seen
    assert (method, path) == ("HEAD", "/v2/app/manifests/v1")
    assert headers["Accept"] == MANIFEST_TYPES and "Authorization" not in headers


def test_basic_credentials_are_sent(registry: Registry) -> None:
    assert image_in_registry(registry.host, "app", "v1", auth=("user", "secret"), timeout=5)
    assert registry.seen[0][2]["Authorization"] == BASIC


def test_a_bearer_challenge_is_answered_with_a_token_from_its_realm(registry: Registry) -> None:
    registry.bearer = True
    assert image_in_registry(registry.host, "app", "v1", auth=("user", "secret"), timeout=5)
    challenged, token, retried = registry.seen
    assert challenged[2]["Authorization"] == BASIC
    assert token[1] == "/token?service=fake&scope=repository%3Aapp%3Apull"
    assert token[2]["Authorization"] == BASIC
    assert retried[2]["Authorization"] == f"Bearer {TOKEN}" and retried[2]["Accept"] == MANIFEST_TYPES


def test_a_challenge_without_a_granted_token_is_a_refusal(registry: Registry) -> None:
    registry.bearer = True
    with pytest.raises(RegistryError, match="answered HTTP 401") as caught:
        image_in_registry(registry.host, "app", "v1", timeout=5)  # no credentials: no token
    assert not isinstance(caught.value, RegistryUnreachable)


def test_an_unreachable_token_realm_is_a_push_error_naming_it() -> None:
    # the realm is a closed port: the registry answered, its token service did not
    port = free_port()

    class Challenging(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Challenging)
    with serving(httpd):
        with pytest.raises(RegistryError, match="gave no token for app: unreachable") as caught:
            image_in_registry(f"127.0.0.1:{httpd.server_address[1]}", "app", "v1", timeout=5)
        assert not isinstance(caught.value, RegistryUnreachable)


@pytest.mark.parametrize("status", [403, 500])
def test_other_answers_are_push_errors_not_unreachable(registry: Registry, status: int) -> None:
    registry.status = status
    with pytest.raises(RegistryError, match=f"answered HTTP {status} for {registry.url}/v2/app/manifests/v1"):
        image_in_registry(registry.host, "app", "v1", timeout=5)
    with pytest.raises(RegistryError, match=f"answered HTTP {status}") as caught:
        manifest_digest(registry.host, "app", "v1", timeout=5)
    assert not isinstance(caught.value, RegistryUnreachable)


def test_the_digest_of_a_tag_and_deleting_it(registry: Registry) -> None:
    assert manifest_digest(registry.host, "app", "v1", timeout=5) == DIGEST
    assert manifest_digest(registry.host, "app", "v9", timeout=5) is None
    delete_from_registry(registry.host, "app", DIGEST, timeout=5)
    method, path, headers = registry.seen[-1]
    assert (method, path, headers["Accept"]) == ("DELETE", f"/v2/app/manifests/{DIGEST}", MANIFEST_TYPES)
    with pytest.raises(RegistryError, match=r"refused deleting app@sha256:0+: HTTP 404"):
        delete_from_registry(registry.host, "app", "sha256:" + "0" * 64, timeout=5)


def test_a_closed_port_is_unreachable_for_every_call() -> None:
    registry = f"127.0.0.1:{free_port()}"
    with pytest.raises(
        RegistryUnreachable, match=f"registry {registry} unreachable at http://{registry}/v2/"
    ):
        manifest_digest(registry, "app", "v1", timeout=2)
    with pytest.raises(RegistryUnreachable, match="unreachable"):
        delete_from_registry(registry, "app", DIGEST, timeout=2)


def test_the_image_stage_sees_its_own_errors_with_unreachable_still_retried(registry: Registry) -> None:
    closed = f"127.0.0.1:{free_port()}"
    with pytest.raises(image_errors.RegistryUnreachable, match="unreachable"):
        push.image_in_registry(closed, "app", "v1", timeout=2)
    registry.status = 403
    with pytest.raises(image_errors.PushError, match="answered HTTP 403") as caught:
        push.manifest_digest(registry.host, "app", "v1", timeout=5)
    assert not isinstance(caught.value, image_errors.RegistryUnreachable)


def test_split_image_names_the_registry_repository_and_tag() -> None:
    assert split_image("127.0.0.1:5000/app:1.0") == ("127.0.0.1:5000", "127.0.0.1:5000/app", "1.0")
    assert split_image("localhost/team/app:v2") == ("localhost", "localhost/team/app", "v2")
    assert split_image("app:1.0") is None  # no registry host: nothing to ask a registry
    assert split_image("127.0.0.1:5000/app") is None  # no tag
    assert split_image("127.0.0.1:5000/app@sha256:" + "a" * 64) is None

"""HTTP behaviour of every route, through httpx's ASGI transport on a real (temporary) store.

(Starlette's TestClient now warns that it wants httpx2; this small client does the same job:
runs the app's lifespan and sends requests on one event loop in a background thread.)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.applications import Starlette

from webapp.app import NOT_ALLOWED, create_app
from webapp.buildinfo import BuildInfo
from webapp.service import CounterService
from webapp.stores.leveldb import LevelDBStore

INFO = BuildInfo(version="v1.2.3", revision="c" * 40, build_time="2026-11-27T10:00:00Z")
JSON = {"Accept": "application/json"}


class AppClient:
    """Synchronous requests to an ASGI app whose lifespan runs for the client's lifetime."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._portal.call(functools.partial(self._client.request, method, path, headers=headers))

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, headers)


@contextmanager
def serving(app: Starlette) -> Iterator[AppClient]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webapp.test")
        try:
            yield AppClient(portal, client)
        finally:
            portal.call(client.aclose)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AppClient]:
    service = CounterService(LevelDBStore(tmp_path / "db"), INFO, "web-1")
    service.recover()
    service.record_start()
    with serving(create_app(service)) as test_client:
        yield test_client


def test_json_page_counts_each_call(client: AppClient) -> None:
    first = client.get("/", headers=JSON)
    second = client.get("/", headers=JSON)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    doc = first.json()
    assert doc["calls"] == 1 and second.json()["calls"] == 2
    assert doc["version"] == "v1.2.3" and doc["hostname"] == "web-1"
    assert len(doc["deploy_history"]) == 1
    assert doc["deploy_history"][0]["version"] == "v1.2.3"
    assert doc["deploy_history"][0]["host"] == "web-1"
    assert doc["deploy_history"][0]["time"].endswith("Z")


def test_html_page_by_default(client: AppClient) -> None:
    response = client.get("/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for text in ("Deploy history", "Aggregated calls", "Current version", "Host name", '<p id="calls">1</p>'):
        assert text in response.text


def test_health_reports_build_info_and_is_not_counted(client: AppClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": "v1.2.3",
        "revision": "c" * 40,
        "build_time": "2026-11-27T10:00:00Z",
    }
    client.get("/health")
    assert client.get("/", headers=JSON).json()["calls"] == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/health"])
def test_other_methods_are_405_with_allow_get(client: AppClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    if method != "HEAD":
        assert response.content == NOT_ALLOWED == b"HTTP method not allowed, supported methods: GET"
    assert client.get("/", headers=JSON).json()["calls"] == 1  # not counted


@pytest.mark.parametrize("path", ["/nope", "/health/", "/health/x", "/index.html"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_paths_are_404(client: AppClient, path: str, method: str) -> None:
    assert client.request(method, path).status_code == 404
    assert client.get("/", headers=JSON).json()["calls"] == 1  # not counted


def test_count_survives_an_app_restart(tmp_path: Path) -> None:
    for expected in (1, 2):
        service = CounterService(LevelDBStore(tmp_path / "db"), INFO, "web-1")
        service.recover()
        service.record_start()
        with serving(create_app(service)) as client:
            doc = client.get("/", headers=JSON).json()
        assert doc["calls"] == expected
        assert len(doc["deploy_history"]) == expected


def test_module_app_opens_the_store_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DELIVERY_CONF", raising=False)
    monkeypatch.setenv("DELIVERY_DATA_DIR", str(tmp_path))
    with serving(create_app()) as client:
        assert client.get("/", headers=JSON).json()["calls"] == 1
    assert (tmp_path / "leveldb").is_dir()

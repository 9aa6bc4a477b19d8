"""`fetch_health` against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.release.health import fetch_health, fetch_paths
from flows.release.settings import UserPath
from tests.support import free_port, serving

JSON = "application/json"
ANSWERS: dict[str, tuple[int, bytes, str | None]] = {
    "/good/health": (200, json.dumps({"status": "ok", "version": "v7"}).encode(), JSON),
    "/sick/health": (503, json.dumps({"status": "starting"}).encode(), JSON),
    "/html/health": (200, b"<html>not json</html>", "text/html; charset=utf-8"),
    "/lb/health": (502, b"<html><h1>502 Bad Gateway</h1></html>", "text/html"),
    "/bare/health": (200, b"not json either", None),
}


SEEN: list[tuple[str, str | None, str | None]] = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN.append((self.path, self.headers.get("Accept"), self.headers.get("Connection")))
        status, body, content_type = ANSWERS.get(self.path, (404, b"{}", JSON))
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_healthy_address_reports_its_version(base_url: str) -> None:
    report = fetch_health(f"{base_url}/good/")
    assert report.ok and report.version == "v7"


def test_unhealthy_answer_is_not_ok(base_url: str) -> None:
    report = fetch_health(f"{base_url}/sick")
    assert not report.ok and report.status_code == 503 and "HTTP 503" in report.summary()


def test_non_json_answer_is_an_error_naming_its_status_and_content_type(base_url: str) -> None:
    report = fetch_health(f"{base_url}/html")
    assert not report.ok and report.status_code == 200
    assert report.error == "answered without JSON (text/html; charset=utf-8)"
    assert (
        report.summary()
        == f"{base_url}/html/health: HTTP 200, answered without JSON (text/html; charset=utf-8)"
    )


def test_a_load_balancer_error_page_is_reported_with_its_status(base_url: str) -> None:
    report = fetch_health(f"{base_url}/lb")
    assert not report.ok and report.status_code == 502 and report.version is None
    assert report.summary() == f"{base_url}/lb/health: HTTP 502, answered without JSON (text/html)"


def test_non_json_answer_without_a_content_type_says_so(base_url: str) -> None:
    report = fetch_health(f"{base_url}/bare")
    assert not report.ok and report.error == "answered without JSON (no content type)"


def test_closed_port_is_unreachable_not_an_exception() -> None:
    report = fetch_health(f"http://127.0.0.1:{free_port()}", timeout=1)
    assert not report.ok and report.error is not None and report.error.startswith("unreachable")


def test_user_paths_are_asked_as_users_ask_each_over_a_new_connection(base_url: str) -> None:
    SEEN.clear()
    answers = fetch_paths(f"{base_url}/good/", [UserPath(path="/health", accept="application/json")])
    assert [(answer.status, answer.ok, answer.error) for answer in answers] == [(200, True, None)]
    assert SEEN == [("/good/health", "application/json", "close")]
    assert answers[0].summary().startswith("/health (application/json): HTTP 200 in ")


def test_a_5xx_or_no_answer_on_a_user_path_is_a_failure(base_url: str) -> None:
    paths = [UserPath(path="/health", accept="text/html")]
    [bad_gateway] = fetch_paths(f"{base_url}/lb", paths)
    assert bad_gateway.status == 502 and not bad_gateway.ok
    [missing] = fetch_paths(f"{base_url}/nothing-here", paths)
    assert missing.status == 404 and missing.ok  # a user gets a page: not a server failure
    [closed] = fetch_paths(f"http://127.0.0.1:{free_port()}", paths, timeout=1)
    assert closed.status is None and not closed.ok
    assert closed.summary().startswith("/health (text/html): unreachable")

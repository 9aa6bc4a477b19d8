"""`fetch_health` against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.release.health import fetch_health

ANSWERS: dict[str, tuple[int, bytes]] = {
    "/good/health": (200, json.dumps({"status": "ok", "version": "v7"}).encode()),
    "/sick/health": (503, json.dumps({"status": "starting"}).encode()),
    "/html/health": (200, b"<html>not json</html>"),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS.get(self.path, (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_healthy_address_reports_its_version(base_url: str) -> None:
    report = fetch_health(f"{base_url}/good/")
    assert report.ok and report.version == "v7"


def test_unhealthy_answer_is_not_ok(base_url: str) -> None:
    report = fetch_health(f"{base_url}/sick")
    assert not report.ok and report.status_code == 503 and "HTTP 503" in report.summary()


def test_non_json_answer_is_an_error(base_url: str) -> None:
    report = fetch_health(f"{base_url}/html")
    assert not report.ok and report.error == "answered without JSON"


def test_closed_port_is_unreachable_not_an_exception() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = fetch_health(f"http://127.0.0.1:{port}", timeout=1)
    assert not report.ok and report.error is not None and report.error.startswith("unreachable")

"""`flows.http`, the one HTTP client, against a tiny HTTP server on 127.0.0.1: answers, errors, timeouts."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from flows import http
from tests.support import free_port, serving

TIMEOUT_S = 0.05  # the client's timeout in the timeout test; the slow answer waits much longer


@dataclass
class Seen:
    """What the server received, and the event that lets the slow answer go at teardown."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    seen: Seen

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.requests.append((self.command, self.path, dict(self.headers.items()), body))

    def do_GET(self) -> None:
        self._record()
        if self.path == "/json":
            self._answer(200, json.dumps({"version": "v7"}).encode(), "application/json")
        elif self.path == "/broken":
            self._answer(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        elif self.path == "/slow":
            self.seen.release.wait(5)  # well past the client's timeout; let go at teardown
            with contextlib.suppress(OSError):  # the client gave up and closed the connection
                self._answer(200, b"{}", "application/json")
        else:
            self._answer(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        self._record()
        self._answer(201, b'{"created": true}', "application/json")

    def log_message(self, *args: object) -> None:
        return None


@dataclass(frozen=True)
class Server:
    url: str
    seen: Seen


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    seen = Seen()
    handler = type("RecordingHandler", (Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with serving(httpd):
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", seen)
        seen.release.set()


def test_a_200_json_answer(server: Server) -> None:
    answer = http.get(f"{server.url}/json")
    assert answer.status == 200 and answer.error is None
    assert not answer.server_error
    assert answer.json() == {"version": "v7"}
    assert answer.header("content-type") == "application/json"  # by case-insensitive name
    assert answer.header("X-Absent") is None
    assert 0 < answer.seconds < 5 and answer.error_type is None
    assert answer.summary().startswith(f"{server.url}/json: HTTP 200 in ")


def test_a_500_html_page_is_an_answer_with_its_status_not_an_exception(server: Server) -> None:
    answer = http.get(f"{server.url}/broken")
    assert answer.status == 500 and answer.server_error and answer.error is None
    assert answer.json() is None  # HTML is not JSON
    assert answer.header("Content-Type") == "text/html"
    assert b"Internal Server Error" in answer.body


def test_a_4xx_is_an_answer_but_not_a_server_error(server: Server) -> None:
    answer = http.get(f"{server.url}/absent")
    assert answer.status == 404 and not answer.server_error and answer.json() is None


def test_a_closed_port_is_an_error_not_an_exception() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    answer = http.get(url, timeout=1)
    assert answer.status is None and answer.server_error
    assert answer.error is not None and answer.error.startswith("unreachable (ConnectionError: ")
    assert answer.error_type == "ConnectionError"  # the kind alone, without the URL
    assert answer.summary() == f"{url}: {answer.error}"
    assert answer.json() is None


def test_a_slow_server_times_out_with_the_timeout_named(server: Server) -> None:
    answer = http.get(f"{server.url}/slow", timeout=TIMEOUT_S)
    assert answer.status is None and answer.server_error
    assert answer.error == f"timed out after {TIMEOUT_S:g}s"
    assert answer.error_type == "ReadTimeout"
    assert TIMEOUT_S <= answer.seconds < 3


def test_a_new_connection_asks_the_server_to_close_it(server: Server) -> None:
    http.get(
        f"{server.url}/json", new_connection=True, headers={"Accept": "application/json", "X-Call": "first"}
    )
    http.get(f"{server.url}/json", headers={"X-Call": "second"})
    # picked by their mark: a late request of another test of the module may be recorded too
    first, second = (
        next(headers for _, _, headers, _ in server.seen.requests if headers.get("X-Call") == call)
        for call in ("first", "second")
    )
    assert first["Connection"] == "close" and first["Accept"] == "application/json"
    assert second.get("Connection") != "close"


def test_a_request_sends_its_method_json_body_and_auth(server: Server) -> None:
    server.seen.requests.clear()
    with requests.Session() as session:
        answer = http.request(
            "POST", f"{server.url}/hook", json_body={"text": "released"}, session=session, auth=("u", "p")
        )
    assert answer.status == 201 and answer.json() == {"created": True}
    [(method, path, headers, body)] = server.seen.requests
    assert (method, path) == ("POST", "/hook")
    assert json.loads(body) == {"text": "released"}
    assert headers["Authorization"].startswith("Basic ")

"""The probe against a real (in-process) HTTP server that fails on purpose for a while."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.release.probe import Probe
from flows.release.probe_stats import DURING
from tests.support import serving


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the probe's sessions expect
    broken = threading.Event()

    def do_GET(self) -> None:
        status = 503 if self.broken.is_set() else 200
        body = b'{"status": "ok"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    _Handler.broken.clear()
    with serving(httpd):
        yield f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.mark.docker
def test_probe_records_failures_in_the_swap_window(server: str) -> None:
    with Probe(server, threads=2, pause_s=0.005, max_seconds=10) as probe:
        time.sleep(0.3)
        probe.mark_swap_start()
        _Handler.broken.set()
        time.sleep(0.1)
        _Handler.broken.clear()
        probe.mark_swap_end()
        time.sleep(1.3)  # past the swap margin
    summary = probe.summary()
    assert summary.requests > 20
    assert summary.violation
    assert summary.failures == summary.swap_failures > 0
    assert all(s.detail == "HTTP 503" for s in summary.failed)
    assert summary.phase(DURING).requests >= summary.failures
    assert summary.phase("after").requests > 0 and summary.phase("after").failures == 0


@pytest.mark.docker
def test_probe_stops_at_its_request_cap(server: str) -> None:
    probe = Probe(server, threads=3, max_requests=30, max_seconds=10)
    probe.start()
    deadline = time.monotonic() + 5
    while len(probe.samples()) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    summary = probe.stop()
    assert 30 <= summary.requests <= 32  # each thread may finish the request it had started
    assert not summary.violation and summary.swap is None


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.docker
def test_unreachable_prod_is_all_failures() -> None:
    with Probe(f"http://127.0.0.1:{_unused_port()}", threads=1, max_requests=3, timeout_s=0.5) as probe:
        time.sleep(0.3)
    summary = probe.summary()
    assert summary.requests == summary.failures == 3
    assert "ConnectionError" in summary.failed[0].detail


def test_a_probe_knows_whether_it_was_started() -> None:
    from flows.release.probe import Probe

    probe = Probe("http://127.0.0.1:9", threads=1, max_requests=1, max_seconds=1)
    assert not probe.started
    probe.start()
    assert probe.started
    probe.stop()

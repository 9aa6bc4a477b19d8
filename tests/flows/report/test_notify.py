"""Release notifications against a real local HTTP hook: delivered, refused, down, too slow."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from flows.report.notify import build_message, notify, redact, run_ui_url
from tests.support import serving

RUN = "http://127.0.0.1:4200/runs/flow-run/0b5c"


class Hook:
    """A Slack-like incoming webhook on 127.0.0.1 that records what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, Any]] = []
        self.status = 200
        self.delay_s = 0.0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
                time.sleep(hook.delay_s)
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok" if hook.status == 200 else b"invalid_payload")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret-token"


@pytest.fixture
def hook() -> Iterator[Hook]:
    hook = Hook()
    with serving(hook.server):
        yield hook


def test_success_message_is_posted_as_slack_json(hook: Hook) -> None:
    delivered = notify(
        hook.url, ok=True, version="1.4.0-abc1234", application="deliverypipeline", run_url=RUN, detail=""
    )
    assert delivered
    [(path, content_type, message)] = hook.received
    assert path == "/services/T000/B000/secret-token"
    assert content_type == "application/json"
    assert message["text"] == f":white_check_mark: deliverypipeline 1.4.0-abc1234 is live\nRun: {RUN}"
    assert (
        message["blocks"][0]["text"]["text"] == ":white_check_mark: *deliverypipeline 1.4.0-abc1234 is live*"
    )
    assert message["blocks"][-1]["elements"][0]["text"] == f"<{RUN}|Prefect flow run>"


def test_failure_message_says_not_released_and_why() -> None:
    message = build_message(
        ok=False, version="1.4.0", application="app", run_url=None, detail="smoke test: HTTP 500 on /"
    )
    assert message["text"] == ":x: app 1.4.0 was NOT released\nsmoke test: HTTP 500 on /"
    assert [block["type"] for block in message["blocks"]] == ["section", "section"]


def test_refusing_hook_logs_a_warning_and_never_raises(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    hook.status = 500
    with caplog.at_level(logging.WARNING, logger="flows.report.notify"):
        assert not notify(hook.url, ok=True, version="1", application="app", run_url=None, detail="")
    assert "answered 500" in caplog.text
    assert "secret-token" not in caplog.text
    assert len(hook.received) == 1


def test_hook_down_logs_a_warning_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/secret-token"
    with caplog.at_level(logging.WARNING, logger="flows.report.notify"):
        assert not notify(url, ok=False, version="1", application="app", run_url=None, detail="x")
    assert "unreachable" in caplog.text
    assert "secret-token" not in caplog.text


def test_slow_hook_is_abandoned_after_the_timeout(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    hook.delay_s = 2.0
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="flows.report.notify"):
        assert not notify(
            hook.url, ok=True, version="1", application="app", run_url=None, detail="", timeout_s=0.05
        )
    assert time.monotonic() - started < hook.delay_s
    assert "Timeout" in caplog.text


def test_redact_keeps_only_scheme_host_and_port() -> None:
    assert redact("https://hooks.slack.com/services/T/B/tok") == "https://hooks.slack.com/…"
    assert redact("http://127.0.0.1:9000/x?token=t") == "http://127.0.0.1:9000/…"


def test_run_ui_url_from_explicit_or_configured_ui() -> None:
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    assert run_ui_url("0b5c", "http://127.0.0.1:4200/") == "http://127.0.0.1:4200/runs/flow-run/0b5c"
    with temporary_settings(updates={PREFECT_UI_URL: "http://ui.example:4200"}):
        assert run_ui_url("0b5c") == "http://ui.example:4200/runs/flow-run/0b5c"

"""The receiver over HTTP: forged and malformed requests start nothing; good pushes start one run,
in either of GitHub's content types."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from flows.webhook.app import MAX_BODY, PATH, create_app
from flows.webhook.payload import Deploy
from flows.webhook.signature import sign
from flows.webhook.trigger import PrefectTrigger, TriggeredRun, TriggerUnavailable, idempotency_key
from tests.flows.webhook.payloads import CLONE_URL, SECRET, SHA, encode, form_encode, headers, push

CAP = 4096


class RecordingTrigger:
    """Records each run it is asked to create; can be told to fail like an unreachable Prefect."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[Deploy] = []
        self.fail = fail

    async def __call__(self, deploy: Deploy) -> TriggeredRun:
        if self.fail:
            raise TriggerUnavailable(self.fail)
        self.calls.append(deploy)
        return TriggeredRun(
            flow_run_id="3f1e0b6c-0000-4000-8000-000000000001",
            flow_run_name="brisk-otter",
            deployment="deliverypipeline/local",
            ui_url="http://127.0.0.1:4200/runs/flow-run/3f1e0b6c-0000-4000-8000-000000000001",
        )


class AppClient:
    """Calls the ASGI app in-process (no server, no port), one event loop (and app lifespan) per request."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with (
                self.app.router.lifespan_context(self.app),
                httpx.AsyncClient(transport=transport, base_url="http://receiver") as client,
            ):
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)


@pytest.fixture
def trigger() -> RecordingTrigger:
    return RecordingTrigger()


@pytest.fixture
def client(trigger: RecordingTrigger) -> AppClient:
    return AppClient(create_app(secret=SECRET, trigger=trigger, branches=("main",), max_body=CAP))


def test_signed_push_to_main_starts_one_run_and_names_it(
    client: AppClient, trigger: RecordingTrigger
) -> None:
    body = encode(push())
    answer = client.post(PATH, content=body, headers=headers(body))
    assert answer.status_code == 202
    assert answer.json() == {
        "status": "scheduled",
        "flow_run_id": "3f1e0b6c-0000-4000-8000-000000000001",
        "flow_run_name": "brisk-otter",
        "deployment": "deliverypipeline/local",
        "commit": SHA,
        "ui_url": "http://127.0.0.1:4200/runs/flow-run/3f1e0b6c-0000-4000-8000-000000000001",
    }
    assert [call.parameters() for call in trigger.calls] == [
        {"repo": CLONE_URL, "ref": SHA, "pushed_ref": "refs/heads/main"}
    ]
    assert idempotency_key(trigger.calls[0]) == "github-delivery:72d3162e-cc78-11e3-81ab-4c9367dc0958"


def test_form_encoded_push_starts_the_same_run_as_json(client: AppClient, trigger: RecordingTrigger) -> None:
    body = form_encode(push())
    answer = client.post(
        PATH, content=body, headers=headers(body, content_type="application/x-www-form-urlencoded")
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["commit"] == SHA
    assert [call.parameters() for call in trigger.calls] == [
        {"repo": CLONE_URL, "ref": SHA, "pushed_ref": "refs/heads/main"}
    ]


def test_json_with_charset_is_json(client: AppClient, trigger: RecordingTrigger) -> None:
    body = encode(push())
    answer = client.post(
        PATH, content=body, headers=headers(body, content_type="Application/JSON; charset=utf-8")
    )
    assert answer.status_code == 202, answer.text
    assert len(trigger.calls) == 1


def test_form_encoded_ping_answers_200(client: AppClient, trigger: RecordingTrigger) -> None:
    body = form_encode({"zen": "Design for failure.", "hook_id": 1})
    hdrs = headers(body, event="ping", content_type="application/x-www-form-urlencoded")
    assert client.post(PATH, content=body, headers=hdrs).json() == {"status": "pong"}
    assert trigger.calls == []


def test_default_cap_takes_githubs_largest_payload() -> None:
    assert MAX_BODY >= 25 * 1000 * 1000


def test_ping_answers_200_and_starts_nothing(client: AppClient, trigger: RecordingTrigger) -> None:
    body = encode({"zen": "Keep it logically awesome.", "hook_id": 1})
    answer = client.post(PATH, content=body, headers=headers(body, event="ping"))
    assert (answer.status_code, answer.json()) == (200, {"status": "pong"})
    assert trigger.calls == []


def _signed(payload_body: bytes, **overrides: str | None) -> tuple[bytes, dict[str, str]]:
    hdrs = headers(payload_body)
    for name, value in overrides.items():
        key = name.replace("_", "-")
        if value is None:
            hdrs.pop(key)
        else:
            hdrs[key] = value
    return payload_body, hdrs


GOOD = encode(push())
OVERSIZED = encode({**push(), "padding": "x" * CAP})

CASES: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "no signature": (*_signed(GOOD, X_Hub_Signature_256=None), 401, "X-Hub-Signature-256"),
    "bad signature": (*_signed(GOOD, X_Hub_Signature_256="sha256=" + "0" * 64), 401, "X-Hub-Signature-256"),
    "wrong algorithm prefix": (
        *_signed(GOOD, X_Hub_Signature_256=sign(SECRET, GOOD).replace("sha256=", "sha1=")),
        401,
        "X-Hub-Signature-256",
    ),
    "signed with another secret": (
        *_signed(GOOD, X_Hub_Signature_256=sign(b"guess", GOOD)),
        401,
        "X-Hub-Signature-256",
    ),
    "body changed after signing": (
        encode(push(after="f" * 40)),
        headers(GOOD),
        401,
        "X-Hub-Signature-256",
    ),
    "oversized": (*_signed(OVERSIZED), 413, "larger than"),
    "oversized and unsigned": (OVERSIZED, {"X-GitHub-Event": "push"}, 413, "larger than"),
    "no event header": (*_signed(GOOD, X_GitHub_Event=None), 400, "X-GitHub-Event"),
    "plain text": (*_signed(GOOD, Content_Type="text/plain"), 415, "application/x-www-form-urlencoded"),
    "no content type": (*_signed(GOOD, Content_Type=None), 415, "application/json"),
    "multipart": (*_signed(GOOD, Content_Type="multipart/form-data; boundary=x"), 415, "not supported"),
    "form without payload field": (
        *_signed(b"other=1", Content_Type="application/x-www-form-urlencoded"),
        400,
        "payload=",
    ),
    "form with two payload fields": (
        *_signed(b"payload=%7B%7D&payload=%7B%7D", Content_Type="application/x-www-form-urlencoded"),
        400,
        "exactly one payload=",
    ),
    "form with bad JSON": (
        *_signed(b"payload=%7Bnot", Content_Type="application/x-www-form-urlencoded"),
        400,
        "not valid JSON",
    ),
    "JSON sent as form": (*_signed(GOOD, Content_Type="application/x-www-form-urlencoded"), 400, "payload="),
    "form signed over the decoded JSON": (
        form_encode(push()),
        {**headers(GOOD, content_type="application/x-www-form-urlencoded")},
        401,
        "X-Hub-Signature-256",
    ),
    "bad JSON": (*_signed(b'{"ref": "refs/heads/main", '), 400, "JSON"),
    "missing fields": (*_signed(encode({"ref": "refs/heads/main"})), 400, "after"),
    "bad sha": (*_signed(encode(push(after="1234abcd"))), 400, "40-character"),
    "option-like repository": (*_signed(encode(push(clone_url="-u=x"))), 400, "clone_url"),
    "no delivery id": (*_signed(GOOD, X_GitHub_Delivery=None), 400, "X-GitHub-Delivery"),
    "tag push": (*_signed(encode(push("refs/tags/v2.0"))), 202, "tag push"),
    "branch deletion": (*_signed(encode(push(deleted=True, after="0" * 40))), 202, "deletion"),
    "other branch": (*_signed(encode(push("refs/heads/feature"))), 202, "'feature'"),
    "master not configured": (*_signed(encode(push("refs/heads/master"))), 202, "'master'"),
    "other event": (*_signed(GOOD, X_GitHub_Event="issues"), 202, "'issues' is not a push"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_forged_malformed_or_irrelevant_requests_start_no_run(
    case: str, client: AppClient, trigger: RecordingTrigger
) -> None:
    body, hdrs, status, says = CASES[case]
    answer = client.post(PATH, content=body, headers=hdrs)
    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert trigger.calls == []


def test_oversized_streamed_body_without_length_is_refused(
    client: AppClient, trigger: RecordingTrigger
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    hdrs = headers(b"irrelevant")
    answer = client.post(PATH, content=chunks(), headers=hdrs)
    assert answer.request.headers.get("content-length") is None
    assert answer.status_code == 413
    assert trigger.calls == []


def test_get_is_not_allowed(client: AppClient) -> None:
    assert client.get(PATH).status_code == 405
    assert client.get("/healthz").json() == {"status": "ok"}


def test_prefect_failure_answers_503_with_the_reason() -> None:
    trigger = RecordingTrigger(fail="the Prefect API at http://127.0.0.1:1/api is unreachable")
    answer = AppClient(create_app(secret=SECRET, trigger=trigger)).post(
        PATH, content=GOOD, headers=headers(GOOD)
    )
    assert answer.status_code == 503
    assert "unreachable" in answer.json()["error"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # waits on the Prefect client's own timeouts and retries
def test_unreachable_prefect_api_answers_503_quickly() -> None:
    api = f"http://127.0.0.1:{_closed_port()}/api"
    app = create_app(secret=SECRET, trigger=PrefectTrigger("deliverypipeline/local", api, timeout_s=5))
    answer = AppClient(app).post(PATH, content=GOOD, headers=headers(GOOD))
    assert answer.status_code == 503
    message = answer.json()["error"]
    assert api in message
    assert "unreachable" in message


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="DELIVERY_WEBHOOK_SECRET"):
        create_app(secret=b"", trigger=RecordingTrigger())


@pytest.mark.slow  # waits on the Prefect client's own timeouts and retries
def test_silent_prefect_api_answers_503_within_the_deadline() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        api = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        trigger = PrefectTrigger("deliverypipeline/local", api, timeout_s=1.0)
        answer = AppClient(create_app(secret=SECRET, trigger=trigger)).post(
            PATH, content=GOOD, headers=headers(GOOD)
        )
    assert answer.status_code == 503
    assert "did not answer within 1 s" in answer.json()["error"]
    assert "redelivering is safe" in answer.json()["error"]

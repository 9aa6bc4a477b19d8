"""The receiver's HTTP side: `POST /webhooks/github` (Starlette), plus `GET /healthz`.

Order of checks, cheapest and safest first: body size (413), signature over the raw bytes (401),
content type (415 unless JSON or GitHub's form encoding), event type (`ping` 200, others 202
ignored), payload (400 malformed, 202 ignored with a reason), then the one side effect, creating
the flow run (202 naming it, 503 when Prefect cannot). Nothing is parsed before the signature holds.
A trigger with a `start`/`close` lifecycle (the Prefect one) is started before the server
accepts requests and closed when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flows.errors import TriggerError
from flows.webhook import signature
from flows.webhook.payload import Ignore, PayloadError, UnsupportedContentType, check_content_type, decide
from flows.webhook.trigger import Lifecycle, Trigger, TriggerUnavailable

MAX_BODY = 25 * 1024 * 1024  # GitHub never sends more than 25 MB
PATH = "/webhooks/github"

_log = logging.getLogger(__name__)


class BodyTooLarge(TriggerError):
    """The request body exceeds the cap."""


async def _read_capped(request: Request, limit: int) -> bytes:
    """The raw body; a declared (before reading) or actual (while reading) size over `limit` is refused."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(code: int, fields: dict[str, str]) -> JSONResponse:
    return JSONResponse(fields, status_code=code)


def create_app(
    *,
    secret: bytes,
    trigger: Trigger,
    branches: Collection[str] = ("main",),
    max_body: int = MAX_BODY,
) -> Starlette:
    """The receiver: pushes to `branches` signed with `secret` start runs through `trigger`."""
    if not secret:
        raise ValueError("the webhook secret is empty; set DELIVERY_WEBHOOK_SECRET")
    release_branches = frozenset(branches)

    async def github(request: Request) -> JSONResponse:
        delivery = request.headers.get("x-github-delivery")
        try:
            body = await _read_capped(request, max_body)
        except BodyTooLarge:
            return _answer(413, {"error": f"body larger than {max_body} bytes"})
        if not signature.is_valid(secret, body, request.headers.get("x-hub-signature-256")):
            _log.warning("delivery %r: missing or wrong X-Hub-Signature-256, refused", delivery)
            return _answer(401, {"error": "missing or wrong X-Hub-Signature-256 (sha256 HMAC of the body)"})
        content_type = request.headers.get("content-type")
        try:
            check_content_type(content_type)
        except UnsupportedContentType as exc:
            return _answer(415, {"error": str(exc)})
        event = request.headers.get("x-github-event")
        if event is None:
            return _answer(400, {"error": "missing X-GitHub-Event header"})
        if event == "ping":
            return _answer(200, {"status": "pong"})
        if event != "push":
            return _answer(202, {"status": "ignored", "reason": f"event {event!r} is not a push"})
        try:
            decision = decide(body, delivery, release_branches, content_type)
        except PayloadError as exc:
            return _answer(400, {"error": str(exc)})
        if isinstance(decision, Ignore):
            _log.info("delivery %s ignored: %s", delivery, decision.reason)
            return _answer(202, {"status": "ignored", "reason": decision.reason})
        try:
            run = await trigger(decision)
        except TriggerUnavailable as exc:
            _log.error("delivery %s: no run started: %s", delivery, exc)
            return _answer(503, {"error": str(exc)})
        _log.info(
            "delivery %s: %s on %s → flow run %s (%s)",
            delivery,
            decision.commit,
            decision.branch,
            run.flow_run_id,
            run.flow_run_name,
        )
        fields = {
            "status": "scheduled",
            "flow_run_id": run.flow_run_id,
            "flow_run_name": run.flow_run_name,
            "deployment": run.deployment,
            "commit": decision.commit,
        }
        if run.ui_url:
            fields["ui_url"] = run.ui_url
        return _answer(202, fields)

    async def healthz(request: Request) -> JSONResponse:
        return _answer(200, {"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if isinstance(trigger, Lifecycle):
            await trigger.start()
        try:
            yield
        finally:
            if isinstance(trigger, Lifecycle):
                await trigger.close()

    return Starlette(
        routes=[Route(PATH, github, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )

"""The ASGI application (Starlette): ``GET /`` counts a call and shows the page, ``GET /health``.

``app`` opens the store named by the environment in its lifespan (for ``uvicorn webapp.app:app``);
``python -m webapp`` opens it before serving instead, so configuration errors end start-up with
one clear message (see webapp.server).
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Lifespan, Receive, Scope, Send

from webapp import buildinfo
from webapp.config import load_config
from webapp.errors import CallNotRecorded, ServiceClosed
from webapp.page import wants_json
from webapp.service import CounterService
from webapp.stores import open_store

log = logging.getLogger("webapp.app")

NOT_ALLOWED = b"HTTP method not allowed, supported methods: GET"


def open_service(buildinfo_path: Path = buildinfo.DEFAULT_PATH) -> CounterService:
    """Open the configured store, recover the state and record this start (blocking).

    Raises a WebappError (settings, store, build info, damaged journal) with a message naming what to fix.
    """
    info = buildinfo.load(buildinfo_path)
    config = load_config()
    store = open_store(config)
    try:
        service = CounterService(store, info, socket.gethostname(), snapshot_every=config.snapshot_every)
        service.recover()
        service.record_start()
    except BaseException:
        store.close()
        raise
    return service


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _not_allowed(send: Send) -> None:
    await _respond(send, 405, NOT_ALLOWED, b"text/plain; charset=utf-8", ((b"allow", b"GET"),))


def _accept(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"accept":
            return str(value.decode("latin-1"))
    return ""


class Index:
    """``GET /``: count this call durably and show the page (JSON if the client asks for it).

    A plain ASGI endpoint (no Request/Response objects): this is the hot path.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["method"] != "GET":
            await _not_allowed(send)
            return
        service: CounterService = scope["app"].state.service
        try:
            number = await service.count_call()
        except (CallNotRecorded, ServiceClosed) as exc:
            message = f"call not recorded ({exc}); try again".encode()
            await _respond(send, 503, message, b"text/plain; charset=utf-8", ((b"retry-after", b"1"),))
            return
        try:
            body = service.body(wants_json(_accept(scope)))
            content = body.render(number)
        except Exception:  # this lane bypasses Starlette's error middleware: answer 500 ourselves
            log.exception("rendering the page for call %d failed", number)
            await _respond(send, 500, b"Internal Server Error", b"text/plain; charset=utf-8")
            return
        await _respond(send, 200, content, body.content_type)


class Health:
    """``GET /health``: status, version, revision and build time; not counted."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["method"] != "GET":
            await _not_allowed(send)
            return
        info = scope["app"].state.service.info
        payload = {
            "status": "ok",
            "version": info.version,
            "revision": info.revision,
            "build_time": info.build_time,
        }
        await _respond(send, 200, json.dumps(payload).encode(), b"application/json")


class WebApp(Starlette):
    """Starlette with a direct lane for the hot path.

    ``GET /`` (the counted call) goes straight to its endpoint, skipping the middleware stack
    and route matching (about 10 us a request, measured by bench/webapp_bench.py); the route
    table lists it too, and every other request goes through Starlette as usual.
    """

    def __init__(self, *, lifespan: Lifespan[Starlette]) -> None:
        """Routes: ``/`` (counted page) and ``/health``."""
        self.index = Index()
        super().__init__(
            routes=[
                Route("/", self.index, include_in_schema=False),
                Route("/health", Health(), include_in_schema=False),
            ],
            lifespan=lifespan,
        )
        self.router.redirect_slashes = False  # "/health/" is an unknown path (404), not a redirect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch ``/`` directly, anything else through Starlette."""
        if scope["type"] == "http" and scope["path"] == "/":
            scope["app"] = self
            await self.index(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    service: CounterService | None = None, opener: Callable[[], CounterService] = open_service
) -> Starlette:
    """Build the application around an already opened ``service``, or open one with ``opener`` at start-up."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running = service if service is not None else opener()
        app.state.service = running
        await running.start()
        try:
            yield
        finally:
            await running.stop()

    return WebApp(lifespan=lifespan)


app = create_app()

"""``python -m webapp``: open the store, recover, record the start, then serve with uvicorn.

Listens on ``HOST`` (default 0.0.0.0) and ``PORT`` (default 8080). Any start-up problem (bad
config, unusable store, malformed build info) is one line on stderr naming the file and key,
and exit code 2 — no traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import uvicorn

from webapp.app import create_app, open_service
from webapp.errors import SettingsError, WebappError

EXIT_STARTUP = 2
GRACEFUL_SHUTDOWN_S = 10


def uvicorn_settings() -> dict[str, Any]:
    """Server settings shared by the service and the benchmark's bare baseline."""
    return {
        "loop": "auto",
        "http": "auto",
        "lifespan": "on",
        "log_level": "info",
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }


def listen_address(env: Mapping[str, str]) -> tuple[str, int]:
    """``(HOST, PORT)`` from the environment; raise SettingsError naming the variable when wrong."""
    host = env.get("HOST") or "0.0.0.0"
    raw = env.get("PORT") or "8080"
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise SettingsError(f"PORT={raw}: must be a port number 0-65535")
    return host, port


def main() -> int:
    """Run the service until SIGTERM/SIGINT; return the process exit code."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s:     %(name)s: %(message)s"
    )
    try:
        host, port = listen_address(os.environ)
        service = open_service()
    except WebappError as exc:
        print(f"webapp: cannot start: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    config = uvicorn.Config(create_app(service), host=host, port=port, **uvicorn_settings())
    uvicorn.Server(config).run()
    return 0

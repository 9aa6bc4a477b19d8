"""Small helpers shared by the test modules."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# How often a background server checks for shutdown: its teardown waits up to this long.
SHUTDOWN_POLL_S = 0.005


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 right now (tests never use fixed ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Serve ``server`` on a daemon thread for the ``with`` block, then shut it down and close it.

    The serve loop polls for shutdown every `SHUTDOWN_POLL_S`, so leaving the block does not wait
    out `serve_forever`'s default half-second.
    """
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

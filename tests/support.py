"""Small helpers shared by the test modules."""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

# How often a background server checks for shutdown: its teardown waits up to this long.
SHUTDOWN_POLL_S = 0.005

# The committer every test repository uses, so commits work on a machine with no git identity.
GIT_IDENTITY = ("-c", "user.name=test", "-c", "user.email=test@localhost")

# How long one git command in a test may take before it fails the test instead of hanging it.
GIT_TIMEOUT_S = 60.0


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run git in ``repo`` as `GIT_IDENTITY`; its output, stripped.

    ``env`` adds variables to this process's environment (``GIT_COMMITTER_DATE`` to pin a
    commit's time). A failing command raises ``CalledProcessError``, so a test never goes on
    from a repository it did not build; one slower than `GIT_TIMEOUT_S` raises ``TimeoutExpired``.
    """
    done = subprocess.run(
        ["git", "-C", str(repo), *GIT_IDENTITY, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=GIT_TIMEOUT_S,
        env=None if env is None else {**os.environ, **env},
    )
    return done.stdout.strip()


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

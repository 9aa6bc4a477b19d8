"""Settings of the local Docker target (the `local` section of the pipeline's configuration)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class LocalSettings(BaseModel):
    """The local Docker target: two containers behind HAProxy on 127.0.0.1."""

    state_dir: Path = Path("/var/lib/deliverypipeline/local")
    store_config: Path | None = None  # a webapp config (TOML) shared by both; None = SQLite
    proxy_admin_socket: Path | None = None  # default: <state_dir>/haproxy.sock
    health_path: str = "/health"  # probed inside the container for its Docker health
    # After a backend leaves a container, before it is stopped: the requests already sent to it
    # finish anyway (the stop is a SIGTERM, and the server finishes what it has in flight).
    drain_seconds: float = 2.0  # off the release's path: the old container is retired in the background
    stop_grace: float = 10.0  # SIGTERM to SIGKILL when a container is retired
    # Images (engine and registry) of the last K releases are kept, and always those running.
    keep_releases: int = Field(default=5, ge=2)

"""HTTP checks of a deployed version: what an address's `/health` says it runs.

Used by the release steps to verify preprod and prod; the one place that speaks HTTP to
the application, so the release logic can be tested with a fake check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class HealthReport:
    """One answer (or failure to answer) of `GET <url>/health`."""

    url: str
    status_code: int | None
    version: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the address answered 200 with a version."""
        return self.status_code == 200 and self.version is not None and self.error is None

    def summary(self) -> str:
        """One line for logs: what the address said."""
        if self.error is not None:
            return f"{self.url}/health: {self.error}"
        return f"{self.url}/health: HTTP {self.status_code}, version {self.version or '-'}"


HealthCheck = Callable[[str], HealthReport]


def fetch_health(url: str, timeout: float = 5.0) -> HealthReport:
    """Ask `url` which version it serves; never raises for network or protocol failures."""
    base = url.rstrip("/")
    try:
        response = requests.get(f"{base}/health", timeout=timeout, headers={"Connection": "close"})
    except requests.RequestException as exc:
        return HealthReport(url=base, status_code=None, version=None, error=f"unreachable ({exc})")
    version: str | None = None
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("version"), str):
            version = body["version"]
    except ValueError:
        return HealthReport(base, response.status_code, None, error="answered without JSON")
    return HealthReport(url=base, status_code=response.status_code, version=version)

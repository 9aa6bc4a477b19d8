"""HTTP checks of a deployed version through an address: what `/health` says, what users get.

`fetch_health` asks which version an address serves; `fetch_paths` requests the user paths (the
page as HTML and as JSON, the health check) the way users do. Both go through the one HTTP
client (`flows.http`), always over a new connection (as a new user arrives), and never raise:
the release logic judges what came back and is tested with fake checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flows import http
from flows.release.settings import UserPath

REQUEST_TIMEOUT_S = 5.0


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
        """One line for logs: what the address said, always with its HTTP status when it answered."""
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no answer"
        if self.error is not None:
            return f"{self.url}/health: {status}, {self.error}"
        return f"{self.url}/health: {status}, version {self.version or '-'}"


HealthCheck = Callable[[str], HealthReport]


def fetch_health(url: str, timeout: float = REQUEST_TIMEOUT_S) -> HealthReport:
    """Ask `url` which version it serves; a load balancer's HTML error page is reported with its status."""
    base = url.rstrip("/")
    answer = http.get(f"{base}/health", timeout=timeout, new_connection=True)
    if answer.error is not None:
        return HealthReport(base, None, None, error=answer.error)
    body = answer.json()
    if not isinstance(body, dict):
        kind = answer.header("Content-Type") or "no content type"
        return HealthReport(base, answer.status, None, error=f"answered without JSON ({kind})")
    version = body.get("version")
    return HealthReport(base, answer.status, version if isinstance(version, str) else None)


@dataclass(frozen=True)
class PathAnswer:
    """What one user path answered: a failure is a 5xx, no answer, or a timeout."""

    path: UserPath
    status: int | None
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether a user would have got the page: an answer below 500."""
        return self.error is None and self.status is not None and self.status < 500

    def summary(self) -> str:
        """`/ (text/html): HTTP 500 in 3 ms`."""
        if self.error is not None:
            return f"{self.path.label()}: {self.error}"
        return f"{self.path.label()}: HTTP {self.status} in {self.seconds * 1000:.0f} ms"


PathCheck = Callable[[str, Sequence[UserPath]], list[PathAnswer]]


def fetch_paths(url: str, paths: Sequence[UserPath], timeout: float = REQUEST_TIMEOUT_S) -> list[PathAnswer]:
    """Request every user path of `url` once, each over a new connection."""
    base = url.rstrip("/")
    answers = []
    for path in paths:
        answer = http.get(
            f"{base}{path.path}", timeout=timeout, headers={"Accept": path.accept}, new_connection=True
        )
        answers.append(PathAnswer(path, answer.status, answer.seconds, answer.error))
    return answers

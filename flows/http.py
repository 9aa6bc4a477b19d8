"""The pipeline's one HTTP client (on `requests`): an answer or the reason there was none.

Every request the pipeline makes to the application, a registry or a chat hook goes through
`request`, which never raises for network or protocol failures: the caller judges an `Answer`
(status, body, error, time taken), so "unreachable", "timed out" and "HTTP 502 with an HTML
page" are all reported with what was actually seen.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import requests

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Answer:
    """What one request got: a status and body, or an error instead."""

    url: str
    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict, compare=False)
    error: str | None = None  # "unreachable (...)", "timed out after 5s"
    seconds: float = 0.0
    # The exception's class name ("ConnectError", "ReadTimeout") when there was no answer: to name
    # the kind of failure without `error`'s text, which repeats the URL (and any token in it).
    error_type: str | None = None

    @property
    def server_error(self) -> bool:
        """A 5xx answer, or no answer at all: what a user would see as a failure."""
        return self.status is None or self.status >= 500

    def json(self) -> Any | None:
        """The body parsed as JSON, None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        """A response header, by case-insensitive name."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)

    def summary(self) -> str:
        """One line for logs: the status (or the error) and the time taken."""
        if self.error is not None:
            return f"{self.url}: {self.error}"
        return f"{self.url}: HTTP {self.status} in {self.seconds * 1000:.0f} ms"


def request(
    method: str,
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    headers: dict[str, str] | None = None,
    json_body: Any | None = None,
    session: requests.Session | None = None,
    new_connection: bool = False,
    auth: tuple[str, str] | None = None,
) -> Answer:
    """Send one request; network and protocol failures come back as an `Answer` with `error` set.

    `new_connection` asks the server to close the connection, so the next request opens a new
    one (verification counts answers over new connections, as new users would arrive);
    `session` reuses keep-alive connections (the zero-downtime probe, like a browser).
    """
    sent_headers = dict(headers or {})
    if new_connection:
        sent_headers["Connection"] = "close"
    started = time.monotonic()
    sender = session if session is not None else requests
    try:
        response = sender.request(
            method, url, timeout=timeout, headers=sent_headers, json=json_body, auth=auth
        )
    except requests.RequestException as exc:
        kind = type(exc).__name__
        said = (
            f"timed out after {timeout:g}s"
            if isinstance(exc, requests.Timeout)
            else f"unreachable ({kind}: {exc})"
        )
        return Answer(url, None, error=said, seconds=time.monotonic() - started, error_type=kind)
    return Answer(
        url,
        response.status_code,
        response.content,
        dict(response.headers),
        seconds=time.monotonic() - started,
    )


def session() -> requests.Session:
    """A keep-alive session to pass to `request` (not shared between threads)."""
    return requests.Session()


def get(url: str, **options: Any) -> Answer:
    """`request("GET", url, ...)`."""
    return request("GET", url, **options)

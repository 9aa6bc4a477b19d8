"""Pure rendering of the ``GET /`` page (HTML or JSON) and of content negotiation.

Everything but the call number changes only when a version starts, so each body is rendered
once per state as ``prefix + number + suffix`` and a counted call only formats its number.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import lru_cache

from webapp.state import State

HTML_TYPE = b"text/html; charset=utf-8"
JSON_TYPE = b"application/json"


@lru_cache(maxsize=256)
def wants_json(accept: str) -> bool:
    """True when the Accept header prefers application/json over text/html (HTML otherwise).

    JSON is chosen only if ``application/json`` is listed with q > 0 and a higher q than an
    explicitly listed ``text/html``; wildcards (``*/*`` from curl and browsers) mean HTML.
    """
    json_q = html_q = 0.0
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == "application/json":
            json_q = max(json_q, q)
        elif media == "text/html":
            html_q = max(html_q, q)
    return json_q > 0 and json_q > html_q


def history_rows(state: State) -> list[dict[str, str]]:
    """Deploy history, newest first, as ``{"version", "time", "host"}`` rows."""
    return [{"version": s.version, "time": s.at, "host": s.host} for s in reversed(state.history)]


@dataclass(frozen=True)
class Body:
    """A page body around the call number: ``prefix + str(number) + suffix``."""

    prefix: bytes
    suffix: bytes
    content_type: bytes

    def render(self, number: int) -> bytes:
        """The full body for call ``number``."""
        return b"".join((self.prefix, str(number).encode(), self.suffix))


def json_body(state: State, version: str, hostname: str) -> Body:
    """``{"calls": N, "deploy_history": [...], "version": ..., "hostname": ...}`` around N."""
    rest = json.dumps(
        {"deploy_history": history_rows(state), "version": version, "hostname": hostname},
        separators=(",", ":"),
    )
    return Body(prefix=b'{"calls":', suffix=b"," + rest[1:].encode(), content_type=JSON_TYPE)


def html_body(state: State, version: str, hostname: str) -> Body:
    """The HTML page: deploy history, aggregated calls, current version, host name."""
    rows = "".join(
        f"<tr><td>{html.escape(r['version'])}</td><td>{html.escape(r['time'])}</td>"
        f"<td>{html.escape(r['host'])}</td></tr>"
        for r in history_rows(state)
    )
    prefix = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>deliverypipeline</title></head>'
        "<body>\n<h1>Deploy history</h1>\n<table><thead><tr><th>Version</th><th>Time</th><th>Host</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>\n"
        '<h1>Aggregated calls</h1>\n<p id="calls">'
    )
    suffix = (
        "</p>\n<h1>Current version</h1>\n"
        f'<p id="version">{html.escape(version)}</p>\n'
        f'<h1>Host name</h1>\n<p id="hostname">{html.escape(hostname)}</p>\n</body></html>\n'
    )
    return Body(prefix=prefix.encode(), suffix=suffix.encode(), content_type=HTML_TYPE)

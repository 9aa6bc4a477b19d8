"""Release notifications: a Slack-compatible JSON POST saying which version went live or failed.

`build_message` is pure; `send` is a tiny sender with a timeout; `notify` never fails the run —
an unreachable or failing hook only logs a warning, since a release must not depend on a chat
service. `run_ui_url` builds the link to the flow run in the Prefect UI.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from flows import http
from flows.errors import NotifyError

DEFAULT_TIMEOUT_S = 5.0

_log = logging.getLogger(__name__)


def run_ui_url(flow_run_id: UUID | str, ui_url: str | None = None) -> str | None:
    """The flow run's page in the Prefect UI, from `ui_url` or the `PREFECT_UI_URL` setting.

    None when no UI address is known (e.g. a temporary in-process server).
    """
    if ui_url is None:
        from prefect.settings import PREFECT_UI_URL

        ui_url = PREFECT_UI_URL.value()
    if not ui_url:
        return None
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def build_message(
    *, ok: bool, version: str, application: str, run_url: str | None, detail: str
) -> dict[str, Any]:
    """The JSON body: `text` for any Slack-compatible hook, `blocks` for a richer Slack rendering."""
    headline = f"{application} {version} is live" if ok else f"{application} {version} was NOT released"
    icon = ":white_check_mark:" if ok else ":x:"
    lines = [f"{icon} {headline}"]
    if detail:
        lines.append(detail)
    if run_url:
        lines.append(f"Run: {run_url}")
    text = "\n".join(lines)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{headline}*"}},
    ]
    if detail:
        blocks.append({"type": "section", "text": {"type": "plain_text", "text": detail}})
    if run_url:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{run_url}|Prefect flow run>"}]}
        )
    return {"text": text, "blocks": blocks}


def redact(url: str) -> str:
    """The hook's address without its path: chat webhook paths carry a secret token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


def send(url: str, message: dict[str, Any], timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """POST `message` as JSON to `url`; raise `NotifyError` unless the hook answers 2xx in time."""
    answer = http.request("POST", url, json_body=message, timeout=timeout_s)
    if answer.status is None:
        # The error text repeats the URL (and its token): name only the kind of failure.
        raise NotifyError(f"notification hook {redact(url)} unreachable: {answer.error_type}")
    if not 200 <= answer.status < 300:
        text = answer.body.decode("utf-8", "replace")
        raise NotifyError(f"notification hook {redact(url)} answered {answer.status}: {text[:200]}")


def _logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The flow run's logger inside a run (so the warning shows in the UI), else this module's."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return _log


def notify(
    url: str,
    *,
    ok: bool,
    version: str,
    application: str,
    run_url: str | None,
    detail: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bool:
    """Tell the hook at `url` how the release ended; True if delivered, False (and a warning) if not."""
    message = build_message(ok=ok, version=version, application=application, run_url=run_url, detail=detail)
    try:
        send(url, message, timeout_s)
    except NotifyError as exc:
        _logger().warning("release notification not delivered (the release is unaffected): %s", exc)
        return False
    return True

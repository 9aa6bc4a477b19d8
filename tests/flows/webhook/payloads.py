"""Builders of GitHub push payloads and signed request headers for the receiver's tests."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flows.webhook.signature import sign

SECRET = b"test-webhook-secret"
SHA = "0123456789abcdef0123456789abcdef01234567"
CLONE_URL = "https://github.com/example/deliverypipeline.git"


def push(
    ref: str = "refs/heads/main", after: str = SHA, *, deleted: bool = False, clone_url: str = CLONE_URL
) -> dict[str, Any]:
    """A minimal push payload with the fields the receiver reads (and some it ignores)."""
    return {
        "ref": ref,
        "before": "f" * 40,
        "after": after,
        "created": False,
        "deleted": deleted,
        "forced": False,
        "repository": {"full_name": "example/deliverypipeline", "clone_url": clone_url},
        "head_commit": {"id": after, "message": "change; rm -rf / `reboot` $(id)"},
    }


def encode(payload: Any) -> bytes:
    """The body bytes as GitHub sends them."""
    return json.dumps(payload).encode()


def form_encode(payload: Any) -> bytes:
    """The body bytes as GitHub sends them with the content type application/x-www-form-urlencoded."""
    return urlencode({"payload": json.dumps(payload)}).encode("ascii")


def headers(
    body: bytes,
    *,
    event: str = "push",
    delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers of a correctly signed delivery of `body`."""
    return {
        "Content-Type": content_type,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(SECRET, body),
    }

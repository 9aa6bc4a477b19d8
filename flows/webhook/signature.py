"""GitHub's `X-Hub-Signature-256` check: `sha256=` + HMAC-SHA256 hex of the raw request body.

Pure functions, so forged and malformed signatures are tested without a server.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The header value GitHub would send for `body` signed with `secret`."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def is_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is the correct signature of exactly these bytes.

    A missing header, another algorithm's prefix (e.g. GitHub's legacy `sha1=`) or any other
    digest is rejected; the comparison takes constant time so the digest cannot be guessed byte
    by byte.
    """
    if not secret:
        raise ValueError("an empty webhook secret would accept forged requests")
    if header is None or not header.startswith(PREFIX):
        return False
    expected = sign(secret, body)
    return hmac.compare_digest(expected.encode("ascii"), header.encode("utf-8", "replace"))

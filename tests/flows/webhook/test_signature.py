"""The HMAC check accepts exactly GitHub's signature of the exact bytes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from flows.webhook.signature import is_valid, sign

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"


def test_sign_matches_githubs_documented_example() -> None:
    # The example from GitHub's "Validating webhook deliveries" documentation.
    assert sign(SECRET, BODY) == ("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


def test_valid_signature_is_accepted() -> None:
    assert is_valid(SECRET, BODY, sign(SECRET, BODY))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + hmac.new(SECRET, BODY, hashlib.sha1).hexdigest(),
        sign(SECRET, BODY).removeprefix("sha256="),  # digest without the prefix
        "SHA256=" + sign(SECRET, BODY).removeprefix("sha256="),
        sign(b"another secret", BODY),
        sign(SECRET, BODY + b" "),  # signed a different body
        sign(SECRET, BODY)[:-1],
        sign(SECRET, BODY) + "0",
        "sha256=\u00e9" * 3,  # non-ASCII must not raise
    ],
)
def test_forged_or_malformed_signatures_are_refused(header: str | None) -> None:
    assert not is_valid(SECRET, BODY, header)


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="empty webhook secret"):
        is_valid(b"", BODY, sign(b"", BODY))

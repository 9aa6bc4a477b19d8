"""Parsing a GitHub `push` payload and deciding whether it starts a release.

Pure: bytes and headers in, a `Deploy` or an `Ignore` out (or `PayloadError` for a malformed
request, `UnsupportedContentType` for a body that is neither of GitHub's two content types:
`application/json`, or `application/x-www-form-urlencoded` with the JSON in a `payload=` field,
GitHub's default). Only validated values leave this module: a 40-hex commit, a branch name, a repository
URL of a known shape and a delivery id, so nothing arbitrary from the payload reaches the pipeline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from flows.errors import TriggerError

ZERO_SHA = "0" * 40
_SHA = re.compile(r"[0-9a-f]{40}")
# GitHub sends a GUID; accept any short token of safe characters (it becomes an idempotency key).
_DELIVERY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
# Remote URL shapes git understands; a leading "-" could be read by git as an option, so it is never allowed.
_REPOSITORY = re.compile(r"(https?|ssh|git|file)://[^\s]+|git@[A-Za-z0-9.-]+:[^\s]+|/[^\s]*")
BRANCH_PREFIX = "refs/heads/"
# The pipeline flow's parameter names (flows/pipeline.py:pipeline).
REPOSITORY_PARAMETER = "repo"
REF_PARAMETER = "ref"
PUSHED_REF_PARAMETER = "pushed_ref"
TAG_PREFIX = "refs/tags/"
BRANCH_TAG_PREFIX = "branch:"  # the flow-run tag naming the pushed branch
# The push's own fields that order it among the branch's pushes, kept as flow-run tags (the
# flow's parameters stay those of a run started by hand): the commit the branch held before it,
# and whether it was a force-push.
BEFORE_TAG_PREFIX = "before:"
FORCED_TAG = "forced"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
CONTENT_TYPES = (JSON_TYPE, FORM_TYPE)
FORM_FIELD = "payload"


class PayloadError(TriggerError):
    """The request is malformed (bad JSON, a missing or invalid field): the answer is 400."""


class UnsupportedContentType(TriggerError):
    """The body is neither JSON nor GitHub's form encoding: the answer is 415."""


def media_type(header: str | None) -> str:
    """The media type of a `Content-Type` header, lowercase, without parameters (`; charset=...`)."""
    return (header or "").split(";", 1)[0].strip().lower()


def check_content_type(header: str | None) -> str:
    """The media type, if it is one of GitHub's two; else `UnsupportedContentType` naming them."""
    kind = media_type(header)
    if kind not in CONTENT_TYPES:
        shown = repr(kind) if kind else "none"
        raise UnsupportedContentType(
            f"Content-Type {shown} is not supported; send {JSON_TYPE} or {FORM_TYPE} "
            '(the webhook\'s "Content type" setting on GitHub)'
        )
    return kind


def json_bytes(body: bytes, content_type: str | None) -> bytes:
    """The JSON document of a delivery: the body itself, or the `payload=` field of a form body.

    The signature is checked over `body` as received, before this; GitHub signs the raw bytes
    of either encoding.
    """
    if check_content_type(content_type) == JSON_TYPE:
        return body
    try:
        text = body.decode("ascii")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError(
            f"body is not form-encoded ({FORM_TYPE}) as its Content-Type says; GitHub sends "
            f"{FORM_FIELD}=<URL-encoded JSON>"
        ) from None
    values = fields.get(FORM_FIELD, [])
    if len(values) != 1:
        raise PayloadError(
            f"form-encoded body must carry the push as exactly one {FORM_FIELD}= field "
            f"(found {len(values)}); GitHub sends payload=<URL-encoded JSON>"
        )
    return values[0].encode("utf-8")


def branch_tag(branch: str) -> str:
    """The flow-run tag of a push to `branch` (e.g. `branch:main`), shown in the UI and searched by."""
    return f"{BRANCH_TAG_PREFIX}{branch}"


@dataclass(frozen=True)
class Deploy:
    """A push to a release branch: start one pipeline run for `commit`.

    `before` is the commit the branch held before the push (None for a new branch), `forced`
    GitHub's flag for a force-push: with git ancestry they decide which push of a branch is newer.
    """

    repository: str
    commit: str
    branch: str
    delivery: str
    before: str | None = None
    forced: bool = False

    def parameters(self) -> dict[str, Any]:
        """The flow-run parameters: the pipeline clones `repository` and releases `commit`;
        the pushed ref is recorded in its report."""
        return {
            REPOSITORY_PARAMETER: self.repository,
            REF_PARAMETER: self.commit,
            PUSHED_REF_PARAMETER: f"{BRANCH_PREFIX}{self.branch}",
        }

    def tags(self) -> list[str]:
        """Flow-run tags that say in the UI where the run came from, and the push's own order fields."""
        tags = ["github-push", branch_tag(self.branch)]
        if self.before:
            tags.append(f"{BEFORE_TAG_PREFIX}{self.before}")
        if self.forced:
            tags.append(FORCED_TAG)
        return tags


@dataclass(frozen=True)
class Ignore:
    """A well-formed push that starts nothing, and why (said in the 202 answer)."""

    reason: str


def delivery_id(header: str | None) -> str:
    """The validated `X-GitHub-Delivery` id, the flow run's idempotency key."""
    if header is None:
        raise PayloadError("missing X-GitHub-Delivery header")
    if not _DELIVERY.fullmatch(header):
        raise PayloadError("X-GitHub-Delivery is not a delivery id")
    return header


def _field(obj: dict[str, Any], name: str, kind: type, where: str = "") -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise PayloadError(f"push payload: field {where}{name} missing or not a {kind.__name__}")
    return value


def parse_push(body: bytes) -> dict[str, Any]:
    """The decoded JSON object of a push payload, with its required fields type-checked."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(
            f"body is not valid JSON ({exc}); the webhook's content type should be {JSON_TYPE}, "
            f"or {FORM_TYPE} with the JSON in its {FORM_FIELD}= field"
        ) from None
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object")
    _field(data, "ref", str)
    _field(data, "after", str)
    repository = _field(data, "repository", dict)
    _field(repository, "clone_url", str, "repository.")
    for flag in ("deleted", "forced"):
        if flag in data and not isinstance(data[flag], bool):
            raise PayloadError(f"push payload: field {flag} is not a boolean")
    if "before" in data and not (isinstance(data["before"], str) and _SHA.fullmatch(data["before"])):
        raise PayloadError("push payload: before is not a 40-character lowercase hex commit id")
    return data


def decide(
    body: bytes, delivery: str | None, branches: Collection[str], content_type: str | None = JSON_TYPE
) -> Deploy | Ignore:
    """Deploy a push of a new commit to one of `branches`; ignore tags, deletions, other branches.

    `body` is the request body as received, in either of GitHub's content types.
    """
    data = parse_push(json_bytes(body, content_type))
    key = delivery_id(delivery)
    ref: str = data["ref"]
    after: str = data["after"]
    if not _SHA.fullmatch(after):
        raise PayloadError("push payload: after is not a 40-character lowercase hex commit id")
    clone_url: str = data["repository"]["clone_url"]
    if not _REPOSITORY.fullmatch(clone_url):
        raise PayloadError("push payload: repository.clone_url is not a repository URL")
    if ref.startswith(TAG_PREFIX):
        return Ignore(f"tag push ({ref}) does not start a release")
    if data.get("deleted", False) or after == ZERO_SHA:
        return Ignore(f"deletion of {ref} does not start a release")
    if not ref.startswith(BRANCH_PREFIX):
        return Ignore(f"{ref} is not a branch")
    branch = ref.removeprefix(BRANCH_PREFIX)
    if branch not in branches:
        wanted = ", ".join(sorted(branches))
        return Ignore(f"push to branch {branch!r}; releases start only from: {wanted}")
    before = data.get("before")
    return Deploy(
        repository=clone_url,
        commit=after,
        branch=branch,
        delivery=key,
        before=None if before in (None, ZERO_SHA) else before,
        forced=bool(data.get("forced", False)),
    )

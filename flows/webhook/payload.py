"""Parsing a GitHub `push` payload and deciding whether it starts a release.

Pure: bytes and headers in, a `Deploy` or an `Ignore` out (or `PayloadError` for a malformed
request). Only validated values leave this module: a 40-hex commit, a branch name, a repository
URL of a known shape and a delivery id, so nothing arbitrary from the payload reaches the pipeline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

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


class PayloadError(TriggerError):
    """The request is malformed (bad JSON, a missing or invalid field): the answer is 400."""


@dataclass(frozen=True)
class Deploy:
    """A push to a release branch: start one pipeline run for `commit`."""

    repository: str
    commit: str
    branch: str
    delivery: str

    def parameters(self) -> dict[str, Any]:
        """The flow-run parameters: the pipeline clones `repository` and releases `commit`;
        the pushed ref is recorded in its report."""
        return {
            REPOSITORY_PARAMETER: self.repository,
            REF_PARAMETER: self.commit,
            PUSHED_REF_PARAMETER: f"{BRANCH_PREFIX}{self.branch}",
        }

    def tags(self) -> list[str]:
        """Flow-run tags that say in the UI where the run came from."""
        return ["github-push", f"branch:{self.branch}"]


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
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object")
    _field(data, "ref", str)
    _field(data, "after", str)
    repository = _field(data, "repository", dict)
    _field(repository, "clone_url", str, "repository.")
    if "deleted" in data and not isinstance(data["deleted"], bool):
        raise PayloadError("push payload: field deleted is not a boolean")
    return data


def decide(body: bytes, delivery: str | None, branches: Collection[str]) -> Deploy | Ignore:
    """Deploy a push of a new commit to one of `branches`; ignore tags, deletions, other branches."""
    data = parse_push(body)
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
    return Deploy(repository=clone_url, commit=after, branch=branch, delivery=key)

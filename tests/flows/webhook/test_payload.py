"""Push payloads: what deploys, what is ignored (and why), what is malformed."""

from __future__ import annotations

import pytest

from flows.webhook.payload import Deploy, Ignore, PayloadError, decide, delivery_id
from tests.flows.webhook.payloads import CLONE_URL, SHA, encode, push

DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
MAIN = ("main",)


def test_push_to_main_deploys_the_commit_of_the_repository() -> None:
    decision = decide(encode(push()), DELIVERY, MAIN)
    assert decision == Deploy(
        repository=CLONE_URL, commit=SHA, branch="main", delivery=DELIVERY, before="f" * 40, forced=False
    )
    assert isinstance(decision, Deploy)
    assert decision.parameters() == {"repo": CLONE_URL, "ref": SHA, "pushed_ref": "refs/heads/main"}
    assert decision.tags() == ["github-push", "branch:main", "before:" + "f" * 40]


def test_a_force_push_and_a_new_branch_say_so_in_the_runs_tags() -> None:
    forced = decide(encode({**push(), "forced": True}), DELIVERY, MAIN)
    assert isinstance(forced, Deploy) and forced.forced
    assert forced.tags() == ["github-push", "branch:main", "before:" + "f" * 40, "forced"]
    created = decide(encode({**push(), "before": "0" * 40, "created": True}), DELIVERY, MAIN)
    assert isinstance(created, Deploy) and created.before is None
    assert created.tags() == ["github-push", "branch:main"]


def test_master_deploys_only_when_configured() -> None:
    body = encode(push("refs/heads/master"))
    assert isinstance(decide(body, DELIVERY, MAIN), Ignore)
    assert isinstance(decide(body, DELIVERY, ("main", "master")), Deploy)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (push("refs/tags/v1.0"), "tag push"),
        (push(deleted=True, after="0" * 40), "deletion"),
        (push(after="0" * 40), "deletion"),  # `deleted` missing but the branch is gone
        (push("refs/heads/feature/x"), "'feature/x'"),
        (push("refs/heads/mainline"), "'mainline'"),
        (push("refs/pull/1/head"), "not a branch"),
    ],
)
def test_pushes_that_start_nothing_say_why(payload: dict[str, object], why: str) -> None:
    decision = decide(encode(payload), DELIVERY, MAIN)
    assert isinstance(decision, Ignore)
    assert why in decision.reason


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (encode({"after": SHA, "repository": {"clone_url": CLONE_URL}}), "ref"),
        (encode({"ref": "refs/heads/main", "repository": {"clone_url": CLONE_URL}}), "after"),
        (encode({"ref": "refs/heads/main", "after": SHA}), "repository"),
        (encode({"ref": "refs/heads/main", "after": SHA, "repository": {}}), "repository.clone_url"),
        (encode({**push(), "ref": 7}), "ref"),
        (encode({**push(), "deleted": "no"}), "deleted"),
        (encode({**push(), "forced": "yes"}), "forced"),
        (encode({**push(), "before": "HEAD~1"}), "before is not"),
        (encode(push(after="abc123")), "40-character"),
        (encode(push(after=SHA.upper())), "40-character"),
        (encode(push(after=SHA + "\n")), "40-character"),
        (encode(push(after="g" * 40)), "40-character"),
        (encode(push(clone_url="--upload-pack=touch /tmp/x")), "clone_url"),
        (encode(push(clone_url="https://example.com/a b")), "clone_url"),
        (encode(push(clone_url="relative/path")), "clone_url"),
    ],
)
def test_malformed_payloads_are_refused(body: bytes, complaint: str) -> None:
    with pytest.raises(PayloadError, match=complaint):
        decide(body, DELIVERY, MAIN)


@pytest.mark.parametrize("url", ["git@github.com:example/app.git", "ssh://git@host/app.git", "/srv/git/app"])
def test_other_repository_url_shapes_are_accepted(url: str) -> None:
    decision = decide(encode(push(clone_url=url)), DELIVERY, MAIN)
    assert isinstance(decision, Deploy)
    assert decision.repository == url


@pytest.mark.parametrize("header", [None, "", "-x", "a" * 101, "id with spaces", "id;rm"])
def test_delivery_ids_are_validated(header: str | None) -> None:
    with pytest.raises(PayloadError, match="X-GitHub-Delivery"):
        delivery_id(header)

"""A run's Secret blocks: named with their expiry, made, read back, removed and swept on a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flows.controlplane.api import ControlPlaneApi, NotFound
from flows.controlplane.secrets import (
    CALLER_CREDENTIALS,
    SecretBlocks,
    block_name,
    expired,
    expiry_of,
    read_secret,
    without_caller_credentials,
)


def test_a_run_block_name_carries_its_kind_and_expiry() -> None:
    name = block_name("aws", 1_800_000_000.7, "0a1b2c3d")
    assert name == "run-aws-1800000000-0a1b2c3d" and expiry_of(name) == 1_800_000_000
    assert expiry_of(block_name("registry", 1_800_000_000)) == 1_800_000_000  # random token


@pytest.mark.parametrize("name", ["team-aws", "run-aws-soon-0a1b2c3d", "run-AWS-1800000000-0a1b2c3d", "run-"])
def test_other_blocks_have_no_expiry(name: str) -> None:
    assert expiry_of(name) is None


def test_a_kind_that_would_break_the_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a run block name"):
        block_name("aws creds", 1_800_000_000)


def test_only_run_blocks_past_their_expiry_are_expired() -> None:
    names = ["run-aws-1000000000-0a1b2c3d", "run-registry-2000000000-0a1b2c3d", "team-aws", "run-x-1-2"]
    assert expired(names, now=1_500_000_000) == ["run-aws-1000000000-0a1b2c3d"]
    assert expired(names, now=1_000_000_000) == ["run-aws-1000000000-0a1b2c3d"]  # at its expiry


def test_the_children_of_the_control_plane_never_inherit_a_callers_credentials() -> None:
    shell = {name: "secret" for name in CALLER_CREDENTIALS} | {"AWS_REGION": "eu-west-1", "PATH": "/bin"}
    assert without_caller_credentials(shell) == {"AWS_REGION": "eu-west-1", "PATH": "/bin"}
    assert {"AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_PROFILE", "DELIVERY_REGISTRY_PASSWORD"} <= (
        CALLER_CREDENTIALS
    )


@pytest.fixture
def blocks(prefect_harness: None) -> Iterator[SecretBlocks]:
    """Run blocks on the session's Prefect server (its REST API, as the CLI talks to it)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the Prefect test harness sets PREFECT_API_URL"
    with ControlPlaneApi(url) as api:
        yield SecretBlocks(api)


@pytest.mark.slow  # starts a Prefect server (the session's test harness): marked `server`
def test_a_block_is_made_read_back_in_a_run_and_removed(blocks: SecretBlocks) -> None:
    made = blocks.create("aws", '{"access_key_id": "ASIAKEY"}', time.time() + 600)

    assert made.name in blocks.run_blocks()
    assert read_secret(made.name) == {"access_key_id": "ASIAKEY"}  # Prefect parses a JSON value
    listed = blocks.api.call("GET", f"/block_documents/{made.id}")  # a reader that does not ask for secrets
    assert "ASIAKEY" not in str(listed)

    blocks.delete(made)
    blocks.delete(made)  # already gone: fine
    with pytest.raises(NotFound):
        blocks.api.call("GET", f"/block_documents/{made.id}")
    assert made.name not in blocks.run_blocks()


@pytest.mark.slow  # starts a Prefect server (the session's test harness): marked `server`
def test_the_sweep_removes_expired_run_blocks_only(blocks: SecretBlocks) -> None:
    now = time.time()
    old = blocks.create("aws", "old", now - 1)
    fresh = blocks.create("registry", "fresh", now + 600)
    block_type = blocks.api.call("GET", "/block_types/slug/secret")
    schema = blocks.api.call(
        "POST", "/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}
    )[0]
    team = blocks.api.call(
        "POST",
        "/block_documents/",
        {"name": "team-aws-run-1", "data": {"value": "x"}, "block_schema_id": schema["id"],
         "block_type_id": block_type["id"]},
    )  # fmt: skip

    assert blocks.sweep(now) == [old.name]

    left = blocks.run_blocks()
    assert old.name not in left and fresh.name in left
    assert blocks.api.call("GET", f"/block_documents/{team['id']}")["name"] == "team-aws-run-1"
    blocks.delete(fresh)
    blocks.api.call("DELETE", f"/block_documents/{team['id']}")

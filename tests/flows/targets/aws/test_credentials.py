"""A run's AWS credentials: the caller's resolved by boto3's chain, made short-lived, read back in the run."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.client import BaseClient
from botocore.stub import Stubber
from moto import mock_aws

from flows.targets.aws.credentials import (
    RunCredentials,
    caller_credentials,
    chain_owner,
    run_session,
    session_with,
    short_lived,
)
from flows.targets.aws.errors import AwsCredentialsError
from tests.flows.targets.aws.eb_world import NOWHERE, REGION, aws_config, new_session

LONG_TERM = RunCredentials("AKIAEXAMPLELONGTERM", "long-term-secret")
EXPIRY = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def key_of(session: boto3.session.Session) -> tuple[str | None, str | None, str | None]:
    """What `session` signs with."""
    found = session.get_credentials()
    assert found is not None
    frozen = found.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


def test_the_secret_parts_never_show_in_a_repr() -> None:
    shown = repr(RunCredentials("ASIAKEY", "the-secret", "the-token", EXPIRY))
    assert "ASIAKEY" in shown and "the-secret" not in shown and "the-token" not in shown


def test_a_block_value_round_trips_as_json_or_a_mapping() -> None:
    credentials = RunCredentials("ASIAKEY", "the-secret", "the-token", EXPIRY)
    text = credentials.to_secret()
    assert RunCredentials.from_secret(text, "b") == credentials
    assert RunCredentials.from_secret(json.loads(text), "b") == credentials
    assert RunCredentials.from_secret({"access_key_id": "A", "secret_access_key": "S"}, "b") == (
        RunCredentials("A", "S")
    )


@pytest.mark.parametrize("value", ["not json", "[1]", '{"access_key_id": "A"}', 42])
def test_a_block_without_credentials_is_named(value: object) -> None:
    with pytest.raises(AwsCredentialsError) as failure:
        RunCredentials.from_secret(value, "team")
    assert "the Secret block 'team' (aws.credentials_block) holds no AWS credentials" in str(failure.value)


def test_the_caller_chain_reads_keys_and_token_from_the_environment() -> None:
    # the fixture's environment: AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN = testing
    found = caller_credentials(new_session())
    assert found == RunCredentials("testing", "testing", "testing") and found.temporary


def test_the_caller_chain_reads_a_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[deploy]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "deploy")

    found = caller_credentials(new_session())

    assert found == RunCredentials("AKIAPROFILE", "profile-secret") and not found.temporary


def test_a_shell_without_credentials_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    assert caller_credentials(new_session()) is None


def sts_client() -> BaseClient:
    client: BaseClient = new_session(region_name=REGION).client("sts", endpoint_url=NOWHERE)
    return client


def test_long_term_keys_become_a_session_token_stubbed() -> None:
    sts = sts_client()
    stub = Stubber(sts)
    stub.add_response(
        "get_session_token",
        {
            "Credentials": {
                "AccessKeyId": "ASIATEMPORARYKEY01",
                "SecretAccessKey": "temporary-secret",
                "SessionToken": "temporary-token",
                "Expiration": EXPIRY,
            }
        },
        {"DurationSeconds": 3600},
    )
    with stub:
        made = short_lived(LONG_TERM, sts, 3600)
    stub.assert_no_pending_responses()
    made_key = RunCredentials("ASIATEMPORARYKEY01", "temporary-secret", "temporary-token", EXPIRY)
    assert made.credentials == made_key
    assert made.how == "a session token for 60 min (STS GetSessionToken)"


def test_long_term_keys_become_a_session_token_on_moto() -> None:
    with mock_aws():
        sts = new_session(
            aws_access_key_id="AKIAEXAMPLELONGTERM", aws_secret_access_key="x", region_name=REGION
        ).client("sts")
        made = short_lived(LONG_TERM, sts, 900)
    assert made.credentials.temporary and made.credentials.access_key_id != LONG_TERM.access_key_id
    assert made.credentials.secret_access_key != LONG_TERM.secret_access_key
    assert made.credentials.expires is not None
    remaining = made.credentials.expires - datetime.now(UTC)
    assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)


def test_temporary_credentials_are_handed_over_as_they_are() -> None:
    sts = sts_client()
    temporary = RunCredentials("ASIAKEY", "secret", "token", EXPIRY)
    with Stubber(sts):  # nothing queued: any STS call would fail the test
        made = short_lived(temporary, sts, 3600)
    assert made.credentials is temporary and "as they are" in made.how


def test_refused_sts_hands_over_the_keys_and_says_so() -> None:
    sts = sts_client()
    stub = Stubber(sts)
    stub.add_client_error("get_session_token", "AccessDenied", "not allowed", 403)
    with stub:
        made = short_lived(LONG_TERM, sts, 3600)
    assert made.credentials is LONG_TERM
    assert "STS GetSessionToken failed (AccessDenied)" in made.how and "sts:GetSessionToken" in made.how


def test_a_session_signs_with_exactly_the_given_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    session = session_with(RunCredentials("ASIAKEY", "secret", "token"), REGION)
    assert key_of(session) == ("ASIAKEY", "secret", "token")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"  # nothing was put into the environment


def test_the_run_session_reads_the_named_block() -> None:
    config = aws_config()
    config = config.model_copy(
        update={"aws": config.aws.model_copy(update={"credentials_block": "run-aws-1-ab"})}
    )
    asked: list[str] = []

    def read(name: str) -> str:
        asked.append(name)
        return RunCredentials("ASIAKEY", "secret", "token").to_secret()

    session, where = run_session(config, read)

    assert asked == ["run-aws-1-ab"] and where == "the Secret block 'run-aws-1-ab' (aws.credentials_block)"
    assert key_of(session)[0] == "ASIAKEY"
    assert session.region_name == REGION


def test_a_missing_block_says_how_to_get_one() -> None:
    config = aws_config()
    config = config.model_copy(update={"aws": config.aws.model_copy(update={"credentials_block": "gone"})})

    def read(name: str) -> str:
        raise ValueError(f"Unable to find block document named {name}")

    with pytest.raises(AwsCredentialsError) as failure:
        run_session(config, read)
    message = str(failure.value)
    assert "the Secret block 'gone' named by aws.credentials_block could not be read (ValueError)" in message
    assert "start a new run with `deliverypipeline run`" in message


def test_without_a_block_the_run_uses_its_own_process_chain() -> None:
    session, where = run_session(aws_config(), lambda name: pytest.fail("no block is named"))
    assert where == chain_owner()
    assert f"pid {os.getpid()}" in where and socket.gethostname() in where
    assert key_of(session)[0] == "testing"

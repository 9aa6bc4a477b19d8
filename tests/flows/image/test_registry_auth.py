"""Registry credentials for the push: ECR token, Prefect Secret block, environment variables, none."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from flows.image.registry_auth import _ecr_client, caller_registry_secret, registry_auth
from flows.targets.aws import credentials as credentials_module
from flows.targets.aws.credentials import RunCredentials
from flows.targets.aws.errors import AwsRegistryAuthError
from flows.targets.aws.settings import AwsSettings
from tests.flows.targets.aws.eb_world import NOWHERE, _session, aws_config

ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def local_registry(**aws: Any) -> Any:
    return aws_config(registry="registry.example.org:5000", aws=AwsSettings(**aws))


def no_secret(name: str) -> Any:
    raise AssertionError(f"the Secret block {name} should not be read")


def test_open_registry_needs_no_credentials() -> None:
    assert registry_auth(local_registry(), environ={}, load_secret=no_secret) is None


def test_environment_variables() -> None:
    environ = {"DELIVERY_REGISTRY_USER": "ci", "DELIVERY_REGISTRY_PASSWORD": "s3cret"}
    assert registry_auth(local_registry(), environ=environ, load_secret=no_secret) == {
        "username": "ci",
        "password": "s3cret",
    }


def test_half_set_environment_variables_are_an_error() -> None:
    with pytest.raises(AwsRegistryAuthError, match="only one of"):
        registry_auth(local_registry(), environ={"DELIVERY_REGISTRY_USER": "ci"}, load_secret=no_secret)


@pytest.mark.parametrize("value", ["ci:pa:ss", {"username": "ci", "password": "pa:ss"}])
def test_secret_block_wins_over_the_environment(value: Any) -> None:
    loaded: list[str] = []

    def load(name: str) -> Any:
        loaded.append(name)
        return value

    environ = {"DELIVERY_REGISTRY_USER": "other", "DELIVERY_REGISTRY_PASSWORD": "other"}
    auth = registry_auth(
        local_registry(registry_secret_block="registry-login"), environ=environ, load_secret=load
    )
    assert auth == {"username": "ci", "password": "pa:ss"}
    assert loaded == ["registry-login"]


def test_missing_or_malformed_secret_block_says_how_to_fix_it() -> None:
    def missing(name: str) -> Any:
        raise ValueError(f"Unable to find block document named {name}")

    with pytest.raises(AwsRegistryAuthError, match="could not be loaded") as failure:
        registry_auth(local_registry(registry_secret_block="registry-login"), load_secret=missing)
    assert "Secret(value='user:password').save('registry-login')" in failure.value.hint
    with pytest.raises(AwsRegistryAuthError, match="holds no user and password"):
        registry_auth(
            local_registry(registry_secret_block="registry-login"), load_secret=lambda _: "just-a-token"
        )


def test_ecr_registry_gets_a_token() -> None:
    ecr = _session().client("ecr", endpoint_url=NOWHERE)
    token = base64.b64encode(b"AWS:eyJwYXlsb2FkIjoi").decode()
    with Stubber(ecr) as stubber:
        stubber.add_response(
            "get_authorization_token",
            {
                "authorizationData": [
                    {
                        "authorizationToken": token,
                        "expiresAt": datetime(2026, 11, 28, 11, 0, tzinfo=UTC),
                        "proxyEndpoint": f"https://{ECR_HOST}",
                    }
                ]
            },
            {"registryIds": ["123456789012"]},
        )
        auth = registry_auth(aws_config(registry=ECR_HOST), ecr_client=ecr, load_secret=no_secret, environ={})
        stubber.assert_no_pending_responses()
    assert auth == {"username": "AWS", "password": "eyJwYXlsb2FkIjoi", "serveraddress": f"https://{ECR_HOST}"}


def test_ecr_refusal_names_the_permission() -> None:
    ecr = _session().client("ecr", endpoint_url=NOWHERE)
    with Stubber(ecr) as stubber:
        stubber.add_client_error(
            "get_authorization_token", service_error_code="AccessDeniedException", service_message="denied"
        )
        with pytest.raises(AwsRegistryAuthError, match="ecr:GetAuthorizationToken") as failure:
            registry_auth(aws_config(registry=ECR_HOST), ecr_client=ecr, load_secret=no_secret)
    assert failure.value.code == "AccessDeniedException"


def test_a_callers_registry_login_is_handed_over_whole_and_read_back_by_the_push() -> None:
    handed = caller_registry_secret({"DELIVERY_REGISTRY_USER": "ci", "DELIVERY_REGISTRY_PASSWORD": "p:w"})
    assert handed is not None
    read_back = registry_auth(
        local_registry(registry_secret_block="run-registry-1-ab"), load_secret=lambda _: json.loads(handed)
    )
    assert read_back == {"username": "ci", "password": "p:w"}
    assert caller_registry_secret({"DELIVERY_REGISTRY_USER": "ci"}) is None
    assert caller_registry_secret({}) is None


def test_ecr_signs_with_the_runs_credentials_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ECR login of a run uses the credentials its block holds, not the worker's environment."""
    handed = RunCredentials("ASIARUNSOWNKEY", "run-secret", "run-token")
    monkeypatch.setattr(credentials_module, "_read_prefect_secret", lambda name: handed.to_secret())
    config = aws_config()
    config = config.model_copy(
        update={"aws": config.aws.model_copy(update={"credentials_block": "run-aws-1-ab"})}
    )

    client = _ecr_client(config, "eu-west-1")

    frozen = client._request_signer._credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.token) == ("ASIARUNSOWNKEY", "run-token")
    assert client.meta.region_name == "eu-west-1" and client.meta.endpoint_url == NOWHERE

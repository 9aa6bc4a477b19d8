"""Credentials for pushing the image: a Docker SDK `auth_config` for the configured registry.

Sources, first that applies: an ECR registry host gets a fresh token from
`ecr.get_authorization_token` (with the run's AWS credentials, `flows.targets.aws.clients`);
otherwise the Prefect Secret block named in `aws.registry_secret_block` ("user:password" or
{"username", "password"}), which `deliverypipeline run` fills from the caller's
DELIVERY_REGISTRY_USER / DELIVERY_REGISTRY_PASSWORD for that run alone (`caller_registry_secret`);
otherwise those variables in the environment of the process running the push (a push by hand,
`python -m flows.image --push`: the control plane's processes never inherit them); otherwise None
(an open registry such as the local one). Secrets are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flows.config import PipelineConfig
from flows.targets.aws.errors import AwsRegistryAuthError, translate
from flows.targets.aws.facts import ecr_registry

USER_VARIABLE = "DELIVERY_REGISTRY_USER"
PASSWORD_VARIABLE = "DELIVERY_REGISTRY_PASSWORD"

SecretLoader = Callable[[str], Any]


def load_prefect_secret(name: str) -> Any:
    """The value of a Prefect `Secret` block (needs a reachable Prefect API)."""
    from flows.controlplane.secrets import read_secret

    return read_secret(name)


def caller_registry_secret(environ: Mapping[str, str]) -> str | None:
    """What a run's registry Secret block holds for a caller whose environment has both
    DELIVERY_REGISTRY_USER and DELIVERY_REGISTRY_PASSWORD (JSON {"username", "password"}, so a
    colon in either is kept); None otherwise."""
    user, password = environ.get(USER_VARIABLE), environ.get(PASSWORD_VARIABLE)
    return json.dumps({"username": user, "password": password}) if user and password else None


def registry_auth(
    config: PipelineConfig,
    *,
    environ: Mapping[str, str] | None = None,
    load_secret: SecretLoader = load_prefect_secret,
    ecr_client: Any | None = None,
) -> dict[str, str] | None:
    """A Docker SDK `auth_config` ({"username", "password"[, "serveraddress"]}) or None."""
    ecr = ecr_registry(config.registry)
    if ecr is not None:
        host, region = ecr
        return ecr_auth(host, ecr_client or _ecr_client(config, region))
    if config.aws.registry_secret_block:
        return secret_auth(config.aws.registry_secret_block, load_secret)
    env = os.environ if environ is None else environ
    user, password = env.get(USER_VARIABLE), env.get(PASSWORD_VARIABLE)
    if user and password:
        return {"username": user, "password": password}
    if user or password:
        raise AwsRegistryAuthError(
            "environment",
            "",
            f"only one of {USER_VARIABLE} and {PASSWORD_VARIABLE} is set",
            "set both, or neither for a registry without authentication",
        )
    return None


def _ecr_client(config: PipelineConfig, region: str) -> Any:
    from flows.targets.aws.clients import client_options  # boto3: only for ECR
    from flows.targets.aws.credentials import run_session

    session, _ = run_session(config)
    return session.client("ecr", **client_options(config, region))


def ecr_auth(host: str, ecr_client: Any) -> dict[str, str]:
    """A fresh ECR token (valid 12 h) as an `auth_config` for `host`."""
    account = host.split(".", 1)[0]
    try:
        response = ecr_client.get_authorization_token(registryIds=[account])
    except (ClientError, BotoCoreError) as exc:
        raise translate(
            exc, AwsRegistryAuthError, "GetAuthorizationToken", "the role needs ecr:GetAuthorizationToken"
        ) from exc
    data = response.get("authorizationData") or []
    if not data or not data[0].get("authorizationToken"):
        raise AwsRegistryAuthError(
            "GetAuthorizationToken", "", "ECR returned no token", f"check that the registry {host} exists"
        )
    try:
        user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AwsRegistryAuthError(
            "GetAuthorizationToken", "", "ECR returned an undecodable token", "re-run"
        ) from exc
    if not password:
        raise AwsRegistryAuthError("GetAuthorizationToken", "", "ECR's token has no password part", "re-run")
    return {"username": user, "password": password, "serveraddress": f"https://{host}"}


def secret_auth(block: str, load_secret: SecretLoader) -> dict[str, str]:
    """Credentials from a Secret block holding "user:password" or {"username": .., "password": ..}."""
    try:
        value = load_secret(block)
    except Exception as exc:  # Prefect raises ValueError, httpx errors, ... for a missing block/API
        raise AwsRegistryAuthError(
            "Secret.load",
            "",
            f"the Secret block {block!r} could not be loaded ({type(exc).__name__})",
            f"create it (`Secret(value='user:password').save('{block}')`) or fix aws.registry_secret_block",
        ) from exc
    if isinstance(value, Mapping):
        user, password = str(value.get("username", "")), str(value.get("password", ""))
    else:
        user, _, password = str(value).partition(":")
    if not user or not password:
        raise AwsRegistryAuthError(
            "Secret.load",
            "",
            f"the Secret block {block!r} holds no user and password",
            'store "user:password" or {"username": ..., "password": ...} in it',
        )
    return {"username": user, "password": password}

"""The boto3 clients of the Elastic Beanstalk target, and the session whose credentials they sign with.

The target, its preflight and the ECR login all talk to AWS through clients built here: for the
configured region (and test endpoint), with adaptive retries, signed with the run's credentials
(`flows.targets.aws.credentials.run_session`: the Secret block the run names, else the standard
chain of the process that runs it). `AwsClients` remembers where those credentials came from,
so a refusal can say whose credentials were refused. `call` and `check_ok` turn every call's
failure into the `AwsTargetError` of its operation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from flows.config import PipelineConfig
from flows.targets.aws.credentials import run_session
from flows.targets.aws.errors import AwsResponseError, AwsTargetError, translate

if TYPE_CHECKING:
    from mypy_boto3_elasticbeanstalk import ElasticBeanstalkClient
    from mypy_boto3_s3 import S3Client

# Adaptive retries absorb EB's throttling (its describe calls are rate-limited per account).
RETRIES = Config(retries={"max_attempts": 5, "mode": "adaptive"})
T = TypeVar("T")
GIVEN_SESSION = "the boto3 session given (the standard chain of the command's shell)"


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients the target uses, and where their credentials come from (for messages)."""

    eb: ElasticBeanstalkClient
    s3: S3Client
    credentials_from: str = GIVEN_SESSION


def client_options(config: PipelineConfig, region: str | None = None) -> dict[str, Any]:
    """Keyword arguments of `session.client(...)`: region (the configured one by default), retries,
    and the test endpoint when one is configured."""
    options: dict[str, Any] = {"region_name": region or config.aws.region, "config": RETRIES}
    if config.aws.endpoint_url:
        options["endpoint_url"] = config.aws.endpoint_url
    return options


def make_clients(config: PipelineConfig, session: boto3.session.Session | None = None) -> AwsClients:
    """Clients for the configured region (and test endpoint); without `session`, the run's own."""
    where = GIVEN_SESSION
    if session is None:
        session, where = run_session(config)
    options = client_options(config)
    return AwsClients(
        eb=session.client("elasticbeanstalk", **options),
        s3=session.client("s3", **options),
        credentials_from=where,
    )


def call(kind: type[AwsTargetError], operation: str, fn: Callable[[], T], hint: str | None = None) -> T:
    """Run one boto3 call; any AWS/botocore failure becomes the `kind` error of `operation`."""
    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, kind, operation, hint) from exc


def check_ok(response: Any, operation: str) -> None:
    """A response without an error must also carry HTTP 200 (boto3 raises on the rest)."""
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)
    if status != 200:
        raise AwsResponseError(
            operation, str(status), "unexpected HTTP status", "re-run; report if it persists"
        )

"""Before anything is built: can this configuration release to Elastic Beanstalk at all?

`preflight` reads (never changes) what a release will need: working credentials, the
application, both configured environments (and their prod/preprod CNAMEs) and the bundle bucket.
Each problem is one line naming what is missing and what to do. The judgements are pure
functions of what was read, so they are tested without AWS; `preflight` only gathers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoRegionError

from flows.config import PipelineConfig
from flows.errors import TargetError
from flows.targets.addresses import holds_address
from flows.targets.aws.clients import AwsClients
from flows.targets.aws.errors import MISSING_CREDENTIALS, hint_for
from flows.targets.aws.facts import environment_from

README = "flows/targets/aws/README.md"
# Codes that mean the credentials themselves are unusable: nothing else can be checked.
CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "AuthFailure",
    }
)
_GONE = frozenset({"Terminated", "Terminating"})


class Blocked(TargetError):
    """A failure that stops every check (no credentials, no endpoint); its one line says why."""

    def __init__(self, line: str) -> None:
        """`line`: the one problem to report."""
        super().__init__(line)
        self.line = line


# The ways a run gets AWS credentials, said when it has none.
WAYS = (
    "run `deliverypipeline run --target aws` from a shell that has them the standard way (AWS_PROFILE, "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, `aws sso login`): it hands them to the run in a short-lived "
    "Secret block; or name a Secret block holding them in aws.credentials_block (webhook runs); or give "
    f"the worker's host its own (an instance role, or ~/.aws of the worker's user) ({README}, section 1)"
)


def blocking_problem(error: Exception, where: str = "boto3's standard chain") -> str | None:
    """The one line for a failure that makes every other check pointless, else None.

    `where`: whose credentials were used (e.g. the worker's process, its host and pid).
    """
    if isinstance(error, MISSING_CREDENTIALS):
        return f"no AWS credentials found in {where}: {WAYS}"
    if isinstance(error, NoRegionError):
        return "no AWS region: set aws.region in the configuration"
    if isinstance(error, EndpointConnectionError):
        return f"AWS is not reachable ({error}): check the network, aws.region and aws.endpoint_url"
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in CREDENTIAL_CODES:
            message = error.response.get("Error", {}).get("Message", "")
            advice = hint_for(code, message, default="check the credentials boto3 picks up")
            return f"the AWS credentials from {where} were refused ({code}: {message}): {advice}"
    return None


def refused(action: str, error: Exception, what: str) -> str:
    """One line for a call that failed for another reason (e.g. a missing IAM permission)."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "")), str(details.get("Message", ""))
        return f"cannot check {what}: {action} failed ({code}: {message}); {hint_for(code, message)}"
    return f"cannot check {what}: {action} failed ({error}); re-run, and check the network if it persists"


def application_problem(application: str, region: str, known: Sequence[str]) -> str | None:
    """A line when `application` is not among the region's applications `known`."""
    if application in known:
        return None
    has = ", ".join(sorted(known)) or "no applications"
    return (
        f"no application named {application} in region {region}; the region has: {has}; fix `application` "
        f"or aws.region in the configuration, or create it ({README}, section 2)"
    )


def environment_problems(config: PipelineConfig, descriptions: Iterable[Mapping[str, Any]]) -> list[str]:
    """Lines for configured environments the application lacks, and for misplaced addresses.

    `descriptions` are the application's EnvironmentDescriptions; terminated (or terminating)
    ones do not count. The address check runs only when both environments exist with CNAMEs.
    """
    application = config.application
    live = {
        str(d["EnvironmentName"]): d
        for d in descriptions
        if d.get("ApplicationName") in (None, application) and d.get("Status") not in _GONE
    }
    first, second = config.environments
    if first == second:
        return [f"`environments` names {first} twice: name the application's two environments"]
    problems = []
    has = ", ".join(sorted(live)) or "no environments"
    for name in config.environments:
        if name not in live:
            problems.append(
                f"no environment named {name} in application {application}; the application has: {has}; "
                f"fix `environments` in the configuration"
            )
    if problems:
        return problems
    return address_problems(config, live)


def address_problems(config: PipelineConfig, live: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Lines when the prod or preprod CNAME prefix is held by neither (or both) environments."""
    envs = [environment_from(live[name]) for name in config.environments]
    if not all(env.address for env in envs):
        return []  # still launching (no CNAME yet): the release's own checks will tell
    seen = ", ".join(f"{env.name}={env.address}" for env in envs)
    problems = []
    for role, address in (("prod", config.prod_address), ("preprod", config.preprod_address)):
        holders = [env.name for env in envs if holds_address(env, address)]
        if not holders:
            problems.append(
                f"neither environment is reached at the {role} address {address} ({seen}); fix "
                f"{role}_address in the configuration (a CNAME prefix such as "
                f"{envs[0].address.split('.', 1)[0]})"
            )
        elif len(holders) > 1:
            problems.append(
                f"both environments hold the {role} address {address} ({seen}); fix {role}_address"
            )
    if not problems and config.prod_address.lower() == config.preprod_address.lower():
        problems.append("prod_address and preprod_address are the same: name the two CNAME prefixes")
    return problems


@dataclass(frozen=True)
class BucketAnswer:
    """What HeadBucket said: the HTTP status and the region S3 names for the bucket."""

    status: int
    region: str | None = None
    code: str = ""
    message: str = ""


def bucket_problem(bucket: str, region: str, answer: BucketAnswer) -> str | None:
    """A line when the bundle (and lock) bucket is absent, not ours, or in another region."""
    if answer.status == 200 and (answer.region in (None, region)):
        return None
    if answer.status == 404:
        return (
            f"no bucket named {bucket} (aws.bucket): create it in {region} "
            f"(`aws s3 mb s3://{bucket} --region {region}`) or fix aws.bucket"
        )
    if answer.region and answer.region != region:
        return (
            f"the bucket {bucket} is in {answer.region}, the application in {region}: Elastic Beanstalk "
            "reads bundles only from its own region; use a bucket in that region (aws.bucket)"
        )
    if answer.status == 403:
        return (
            f"the bucket {bucket} exists but these credentials may not use it (403): grant s3:ListBucket, "
            f"s3:GetObject, s3:PutObject and s3:DeleteObject on it ({README}) or use a bucket of this account"
        )
    said = f"{answer.code}: {answer.message}" if answer.code else f"HTTP {answer.status}"
    return f"cannot check the bucket {bucket}: HeadBucket failed ({said}); check aws.bucket"


# -- gathering (the only I/O) ---------------------------------------------------------------


def preflight(config: PipelineConfig, clients: AwsClients) -> list[str]:
    """Every problem that would stop a release on this configuration; empty when it is ready.

    Only reads: DescribeApplications, DescribeEnvironments, HeadBucket. Credentials that do not
    work give one line and stop the other checks.
    """
    try:
        return _checks(config, clients)
    except Blocked as blocked:
        return [blocked.line]


def _checks(config: PipelineConfig, clients: AwsClients) -> list[str]:
    problems: list[str] = []
    try:
        answer = clients.eb.describe_applications()
    except (ClientError, BotoCoreError) as exc:
        _block_on(exc, clients.credentials_from)
        problems.append(refused("DescribeApplications", exc, f"the application {config.application}"))
    else:
        known = [str(app.get("ApplicationName")) for app in answer.get("Applications", [])]
        missing = application_problem(config.application, config.aws.region, known)
        if missing is not None:
            problems.append(missing)
        else:
            problems.extend(_environments(config, clients))
    if config.aws.bucket:
        line = bucket_problem(config.aws.bucket, config.aws.region, _head_bucket(config.aws.bucket, clients))
        if line is not None:
            problems.append(line)
    return problems


def _environments(config: PipelineConfig, clients: AwsClients) -> list[str]:
    try:
        pages = clients.eb.get_paginator("describe_environments").paginate(
            ApplicationName=config.application, IncludeDeleted=False
        )
        descriptions = [env for page in pages for env in page.get("Environments", [])]
    except (ClientError, BotoCoreError) as exc:
        _block_on(exc, clients.credentials_from)
        return [refused("DescribeEnvironments", exc, f"the environments of {config.application}")]
    return environment_problems(config, descriptions)


def _head_bucket(bucket: str, clients: AwsClients) -> BucketAnswer:
    try:
        response = clients.s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        _block_on(exc, clients.credentials_from)
        meta: Mapping[str, Any] = exc.response.get("ResponseMetadata", {})
        details = exc.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = int(meta.get("HTTPStatusCode") or 0)
        if code in ("NoSuchBucket", "404"):
            status = 404
        return BucketAnswer(
            status,
            meta.get("HTTPHeaders", {}).get("x-amz-bucket-region"),
            code,
            str(details.get("Message", "")),
        )
    except BotoCoreError as exc:
        _block_on(exc, clients.credentials_from)
        return BucketAnswer(0, None, type(exc).__name__, str(exc))
    headers: Mapping[str, str] = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return BucketAnswer(200, response.get("BucketRegion") or headers.get("x-amz-bucket-region"))


def _block_on(error: Exception, where: str) -> None:
    line = blocking_problem(error, where)
    if line is not None:
        raise Blocked(line) from error

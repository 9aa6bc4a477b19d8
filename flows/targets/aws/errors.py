"""Errors of the Elastic Beanstalk target: what failed, AWS's code and message, and what to do.

Every boto3 call of the target goes through `translate`, so a `ClientError` (or a missing
credential, an unreachable endpoint) never escapes raw: it becomes the `AwsTargetError`
subclass of the operation that failed, carrying the AWS error code and a hint.
"""

from __future__ import annotations

from typing import TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from flows.errors import TargetError

# What to do about an AWS error code, whatever the operation.
HINTS: dict[str, str] = {
    "InsufficientPrivilegesException": "grant the IAM permissions listed in flows/targets/aws/README.md",
    "AccessDenied": "grant the IAM permissions listed in flows/targets/aws/README.md",
    "AccessDeniedException": "grant the IAM permissions listed in flows/targets/aws/README.md",
    "UnauthorizedOperation": "grant the IAM permissions listed in flows/targets/aws/README.md",
    "InvalidClientTokenId": "the AWS access key is unknown: check the credentials boto3 picks up",
    "SignatureDoesNotMatch": "the AWS secret key is wrong: check the credentials boto3 picks up",
    "ExpiredToken": "the AWS session token expired: refresh the credentials (e.g. `aws sso login`)",
    "ExpiredTokenException": "the AWS session token expired: refresh the credentials (e.g. `aws sso login`)",
    "Throttling": "AWS throttled the calls even after retries: wait a minute and re-run",
    "ThrottlingException": "AWS throttled the calls even after retries: wait a minute and re-run",
    "TooManyApplicationVersionsException": (
        "the application reached its version quota: delete old versions or set an application "
        "version lifecycle policy (`aws elasticbeanstalk update-application-resource-lifecycle`)"
    ),
    "TooManyApplicationsException": "the account reached its application quota",
    "S3LocationNotInServiceRegionException": (
        "the bundle bucket must be in the same region as the application: fix aws.bucket or aws.region"
    ),
    "NoSuchBucket": "create the bucket named in aws.bucket (in aws.region) or fix the name",
    "OperationInProgressFailure": (
        "another operation is running on the environment: wait for it (`deliverypipeline aws status`) "
        "and re-run"
    ),
}

E = TypeVar("E", bound="AwsTargetError")

# boto3 found no credentials, or only part of them: nothing can be asked of AWS.
MISSING_CREDENTIALS: tuple[type[BotoCoreError], ...] = (NoCredentialsError, PartialCredentialsError)

DEFAULT_HINT = "check the environment in the Elastic Beanstalk console or with `deliverypipeline aws status`"


class AwsTargetError(TargetError):
    """An AWS operation of the Elastic Beanstalk target failed.

    `code` and `aws_message` are what AWS said (empty when the failure was local, e.g. no
    credentials); `hint` says what to do. The message carries all of them.
    """

    def __init__(self, operation: str, code: str, aws_message: str, hint: str) -> None:
        self.operation = operation
        self.code = code
        self.aws_message = aws_message
        self.hint = hint
        said = f"{code}: {aws_message}" if code else aws_message
        super().__init__(f"{self.what} failed ({operation}): {said}; {hint}")

    @property
    def what(self) -> str:
        """What the failed operation was doing, from `WHAT`: the message starts with it."""
        return next(WHAT[kind] for kind in type(self).__mro__ if kind in WHAT)


class AwsDescribeError(AwsTargetError):
    """Reading the environments or application versions failed."""


class AwsBundleUploadError(AwsTargetError):
    """Uploading (or reading back) the version's Dockerrun.aws.json in S3 failed."""


class AwsVersionError(AwsTargetError):
    """Registering an application version failed (creation, processing, or its deadline)."""


class AwsVersionConflict(AwsVersionError):
    """The version label exists already with another bundle: labels are immutable in EB."""


class AwsDeployError(AwsTargetError):
    """`UpdateEnvironment` was refused: nothing was deployed."""


class AwsSwapError(AwsTargetError):
    """`SwapEnvironmentCNAMEs` was refused: the CNAMEs stayed where they were."""


class AwsEventsError(AwsTargetError):
    """Reading the environment's events failed."""


class AwsRegistryAuthError(AwsTargetError):
    """Getting credentials for the image registry failed."""


class AwsCredentialsError(AwsTargetError):
    """The run's AWS credentials could not be read (a missing or malformed Secret block) or made."""


class AwsResponseError(AwsTargetError):
    """AWS answered, but not with what the call should have produced."""


class AwsLockError(AwsTargetError):
    """The release lock (an S3 object) could not be taken, kept or read."""


class AwsLockHeld(AwsLockError):
    """Another pipeline run held the release lock past the wait: nothing was changed."""


class AwsLockLost(AwsLockError):
    """Another run replaced or removed this run's lock object while the block ran."""


class AwsHealthError(AwsTargetError):
    """Reading an environment's enhanced health (application metrics) failed."""


class AwsCanaryUnsupported(AwsTargetError):
    """Canary traffic steps are not available on the Elastic Beanstalk target."""


# What each kind of failure was doing; a kind not listed says what its nearest listed base says.
WHAT: dict[type[AwsTargetError], str] = {
    AwsTargetError: "an AWS operation",
    AwsDescribeError: "reading Elastic Beanstalk state",
    AwsBundleUploadError: "storing the version bundle in S3",
    AwsVersionError: "registering the application version",
    AwsVersionConflict: "reusing the existing application version",
    AwsDeployError: "deploying the version",
    AwsSwapError: "swapping the environment CNAMEs",
    AwsEventsError: "reading Elastic Beanstalk events",
    AwsRegistryAuthError: "getting registry credentials",
    AwsCredentialsError: "getting the run's AWS credentials",
    AwsResponseError: "checking AWS's answer",
    AwsLockError: "taking the release lock",
    AwsLockHeld: "waiting for the release lock",
    AwsLockLost: "keeping the release lock",
    AwsHealthError: "reading enhanced health",
    AwsCanaryUnsupported: "splitting traffic",
}


def hint_for(code: str, message: str, default: str = DEFAULT_HINT) -> str:
    """What to do about an AWS error code (and message, for EB's catch-all InvalidParameterValue)."""
    if code in HINTS:
        return HINTS[code]
    lowered = message.lower()
    if code == "InvalidParameterValue":
        if "invalid state" in lowered or "must be ready" in lowered or "in progress" in lowered:
            return HINTS["OperationInProgressFailure"]
        if "no application version" in lowered:
            return "register the version first (the pipeline's register step)"
        if "no application" in lowered or "no environment" in lowered or "not found" in lowered:
            return (
                "check the application and environment names in the configuration "
                "(`deliverypipeline aws status`)"
            )
    return default


def translate(error: Exception, kind: type[E], operation: str, hint: str | None = None) -> E:
    """The `kind` error for a boto3/botocore failure of `operation`; AWS's code and message kept.

    `hint` replaces the generic advice when the caller knows better (e.g. after a swap
    failure: prod is unchanged). Never includes credentials: botocore messages hold none.
    """
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "") or "")
        message = str(details.get("Message", "") or "")
        specific = hint_for(code, message, default="")
        advice = "; ".join(part for part in (hint, specific) if part) or DEFAULT_HINT
        return kind(operation, code, message, advice)
    if isinstance(error, MISSING_CREDENTIALS):
        return kind(
            operation,
            "NoCredentials",
            str(error),
            "provide AWS credentials the standard way (AWS_PROFILE, environment, instance role)",
        )
    if isinstance(error, NoRegionError):
        return kind(operation, "NoRegion", str(error), "set aws.region in the configuration or --region")
    if isinstance(error, EndpointConnectionError):
        return kind(
            operation, "EndpointConnectionError", str(error), "check the network and aws.endpoint_url"
        )
    if isinstance(error, BotoCoreError):
        return kind(operation, type(error).__name__, str(error), hint or DEFAULT_HINT)
    raise error


# The failures `translate` knows; callers catch exactly these around a boto3 call.
AWS_FAILURES: tuple[type[Exception], ...] = (ClientError, BotoCoreError)

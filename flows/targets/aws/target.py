"""The AWS Elastic Beanstalk target: two EB environments whose CNAMEs are prod and preprod.

Carries out the release's decisions with boto3: registers a version from its
`Dockerrun.aws.json` (S3 + `CreateApplicationVersion`), deploys it with `UpdateEnvironment`,
exchanges the CNAMEs with `SwapEnvironmentCNAMEs`. Every call's failure becomes an
`AwsTargetError` naming the AWS code; every answer is checked before it is believed.
Clients are injected (moto or `Stubber` in tests), or built from boto3's standard chain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from flows.clock import Clock, SystemClock
from flows.config import PipelineConfig
from flows.targets.aws import facts
from flows.targets.aws.errors import (
    AwsBundleUploadError,
    AwsDeployError,
    AwsDescribeError,
    AwsEventsError,
    AwsResponseError,
    AwsSwapError,
    AwsTargetError,
    AwsVersionConflict,
    AwsVersionError,
    translate,
)
from flows.targets.base import Environment, TargetEvent

if TYPE_CHECKING:
    from mypy_boto3_elasticbeanstalk import ElasticBeanstalkClient
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

# Adaptive retries absorb EB's throttling (its describe calls are rate-limited per account).
RETRIES = Config(retries={"max_attempts": 5, "mode": "adaptive"})


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients the target uses."""

    eb: ElasticBeanstalkClient
    s3: S3Client


def make_clients(config: PipelineConfig, session: boto3.session.Session | None = None) -> AwsClients:
    """Clients for the configured region (and test endpoint), credentials from boto3's chain."""
    session = session or boto3.session.Session()
    options: dict[str, Any] = {"region_name": config.aws.region, "config": RETRIES}
    if config.aws.endpoint_url:
        options["endpoint_url"] = config.aws.endpoint_url
    return AwsClients(eb=session.client("elasticbeanstalk", **options), s3=session.client("s3", **options))


def _call(kind: type[AwsTargetError], operation: str, fn: Callable[[], T], hint: str | None = None) -> T:
    """Run one boto3 call; any AWS/botocore failure becomes the `kind` error of `operation`."""
    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, kind, operation, hint) from exc


_logger = logging.getLogger(__name__)


def _run_log(line: str) -> None:
    """Log into the current Prefect run if there is one (its UI shows it), else to `logging`."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().info(line)
    except MissingContextError:
        _logger.info(line)


def _check_ok(response: Any, operation: str) -> None:
    """A response without an error must also carry HTTP 200 (boto3 raises on the rest)."""
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)
    if status != 200:
        raise AwsResponseError(
            operation, str(status), "unexpected HTTP status", "re-run; report if it persists"
        )


class ElasticBeanstalkTarget:
    """The `Target` protocol on one EB application with two environments."""

    name = "aws"

    def __init__(
        self,
        config: PipelineConfig,
        clients: AwsClients | boto3.session.Session | None = None,
        *,
        clock: Clock | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.clients = clients if isinstance(clients, AwsClients) else make_clients(config, clients)
        self.clock: Clock = clock or SystemClock()
        self.log: Callable[[str], None] = log or _run_log
        self._bucket: str | None = config.aws.bucket or None

    # -- facts ---------------------------------------------------------------------------

    def environments(self) -> list[Environment]:
        """Both configured environments as EB describes them now; absent ones are `Missing`."""
        names = list(self.config.environments)
        pages = self.clients.eb.get_paginator("describe_environments").paginate(
            ApplicationName=self.config.application, EnvironmentNames=names, IncludeDeleted=False
        )

        def read_all() -> list[Any]:
            return [env for page in pages for env in page.get("Environments", [])]

        descriptions = [
            d
            for d in _call(AwsDescribeError, "DescribeEnvironments", read_all)
            if d.get("ApplicationName") in (None, self.config.application)  # moto ignores the filter
        ]
        return facts.environments_from(descriptions, names)

    def url(self, address: str) -> str:
        """`http://<CNAME>` of the environment holding `address` (prefix fallback if none does).

        A full CNAME is its own answer; a prefix is looked up, since older environments'
        CNAMEs have no region part (`<prefix>.elasticbeanstalk.com`).
        """
        if "." in address:
            return f"http://{address}"
        return facts.url_for(self.environments(), address, self.config.aws.region)

    def events(self, environment: str, since: datetime) -> list[TargetEvent]:
        """The environment's EB events after `since`, oldest first (all pages)."""
        paginator = self.clients.eb.get_paginator("describe_events")
        pages = paginator.paginate(
            ApplicationName=self.config.application,
            EnvironmentName=environment,
            StartTime=facts.as_utc(since),
        )

        def read_all() -> list[Any]:
            return [event for page in pages for event in page.get("Events", [])]

        return facts.events_after(_call(AwsEventsError, "DescribeEvents", read_all), since)

    # -- actions -------------------------------------------------------------------------

    def register_version(self, version: str, bundle: dict[str, Any]) -> None:
        """Make `version` deployable from its rendered bundle; an existing identical version is reused.

        Uploads the bundle to `s3://<bucket>/<bundle_prefix><application>/<version>/Dockerrun.aws.json`,
        creates the application version (Process=True), and waits until EB has processed it.
        An existing version is never overwritten: if its bundle differs, `AwsVersionConflict`.
        """
        key = facts.bundle_key(self.config, version)
        existing = self._describe_version(version)
        reused = existing is not None
        if existing is None:
            bucket = self.bucket()
            body = facts.render_bundle(bundle)
            response = _call(
                AwsBundleUploadError,
                "PutObject",
                lambda: self.clients.s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType="application/json"
                ),
            )
            _check_ok(response, "PutObject")
            if not response.get("ETag"):
                raise AwsResponseError("PutObject", "", "S3 answered without an ETag", "re-run the release")
            self.log(f"uploaded the bundle of {version} to s3://{bucket}/{key}")
            existing = self._create_version(version, bucket, key)
        if existing is not None:
            self._check_existing(version, existing, bundle, key)
        self._wait_processed(version, accept_unprocessed=reused)

    def deploy(self, environment: str, version: str) -> None:
        """Start deploying a registered version to `environment` (returns while it updates)."""
        response = _call(
            AwsDeployError,
            "UpdateEnvironment",
            lambda: self.clients.eb.update_environment(
                ApplicationName=self.config.application, EnvironmentName=environment, VersionLabel=version
            ),
            hint=f"{environment} keeps the version it ran",
        )
        _check_ok(response, "UpdateEnvironment")
        if response.get("EnvironmentName") != environment:
            raise AwsResponseError(
                "UpdateEnvironment",
                "",
                f"EB answered for {response.get('EnvironmentName')!r}, not {environment!r}",
                "check the environment names in the configuration",
            )
        self.log(f"deploying {version} to {environment}: {response.get('Status', '?')}")

    def swap(self, first: str, second: str) -> None:
        """Exchange the CNAMEs of two environments (EB does it in one step)."""
        response = _call(
            AwsSwapError,
            "SwapEnvironmentCNAMEs",
            lambda: self.clients.eb.swap_environment_cnames(
                SourceEnvironmentName=first, DestinationEnvironmentName=second
            ),
            hint=f"the CNAMEs were not swapped: prod is unchanged ({first} and {second} keep theirs)",
        )
        _check_ok(response, "SwapEnvironmentCNAMEs")
        self.log(f"swapped the CNAMEs of {first} and {second}")

    # -- helpers -------------------------------------------------------------------------

    def bucket(self) -> str:
        """The bundle bucket: `aws.bucket`, or EB's own storage bucket (created by EB on demand)."""
        if self._bucket is None:
            response = _call(
                AwsBundleUploadError,
                "CreateStorageLocation",
                self.clients.eb.create_storage_location,
                hint="or set aws.bucket to a bucket in the application's region",
            )
            _check_ok(response, "CreateStorageLocation")
            bucket = response.get("S3Bucket")
            if not bucket:
                raise AwsResponseError(
                    "CreateStorageLocation", "", "EB named no bucket", "set aws.bucket in the configuration"
                )
            self._bucket = bucket
        return self._bucket

    def _describe_version(self, version: str) -> dict[str, Any] | None:
        """EB's description of one application version, None if it does not exist."""
        response = _call(
            AwsDescribeError,
            "DescribeApplicationVersions",
            lambda: self.clients.eb.describe_application_versions(
                ApplicationName=self.config.application, VersionLabels=[version]
            ),
        )
        _check_ok(response, "DescribeApplicationVersions")
        for description in response.get("ApplicationVersions", []):
            if description.get("VersionLabel") == version:
                return dict(description)
        return None

    def _create_version(self, version: str, bucket: str, key: str) -> dict[str, Any] | None:
        """Create the application version; None if created, the existing one if a racer made it first."""
        try:
            response = self.clients.eb.create_application_version(
                ApplicationName=self.config.application,
                VersionLabel=version,
                Description=f"{self.config.application} {version}"[:200],
                SourceBundle={"S3Bucket": bucket, "S3Key": key},
                Process=True,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "InvalidParameterValue" and "already exists" in error.get("Message", ""):
                self.log(f"version {version} was created meanwhile; checking it is this bundle")
                return self._describe_version(version)
            raise translate(exc, AwsVersionError, "CreateApplicationVersion") from exc
        except BotoCoreError as exc:
            raise translate(exc, AwsVersionError, "CreateApplicationVersion") from exc
        _check_ok(response, "CreateApplicationVersion")
        created = response.get("ApplicationVersion", {})
        if created.get("VersionLabel") != version:
            raise AwsResponseError(
                "CreateApplicationVersion",
                "",
                f"EB answered with version {created.get('VersionLabel')!r}, not {version!r}",
                "check the application versions in the console",
            )
        self.log(f"created application version {version} ({created.get('Status', '?')})")
        return None

    def _check_existing(
        self, version: str, existing: dict[str, Any], bundle: dict[str, Any], key: str
    ) -> None:
        """Accept an existing version only if it was made from this same bundle."""
        source = existing.get("SourceBundle") or {}
        where = f"s3://{source.get('S3Bucket', '?')}/{source.get('S3Key', '?')}"
        delete = (
            "EB version labels are immutable: delete it (`aws elasticbeanstalk delete-application-version "
            f"--application-name {self.config.application} --version-label {version}`) "
            "or release a new commit"
        )
        if source.get("S3Key") != key:
            raise AwsVersionConflict(
                "DescribeApplicationVersions",
                "",
                f"version {version} already exists with the bundle {where}, not this build's key {key}",
                delete,
            )
        stored = _call(
            AwsBundleUploadError,
            "GetObject",
            lambda: self.clients.s3.get_object(Bucket=source["S3Bucket"], Key=key)["Body"].read(),
            hint=f"the bundle of the existing version {version} ({where}) cannot be read",
        )
        if not facts.same_bundle(stored, bundle):
            raise AwsVersionConflict(
                "GetObject",
                "",
                f"version {version} already exists and its bundle {where} differs from this build's",
                delete,
            )
        self.log(f"version {version} already exists with the same bundle ({where}): reusing it")

    def _wait_processed(self, version: str, accept_unprocessed: bool = False) -> None:
        """Poll the version until EB has processed it; Failed or the deadline raise.

        A reused version created without processing (`Unprocessed` for good) is deployable
        as is, so it is accepted; one this run created with `Process=True` must get processed.
        """
        deadline = self.clock.now() + self.config.aws.version_processing
        while True:
            description = self._describe_version(version)
            status = description.get("Status") if description else None
            if status == "Processed" or (status == "Unprocessed" and accept_unprocessed):
                return
            if description is None or status == "Failed":
                said = "disappeared" if description is None else "failed processing"
                raise AwsVersionError(
                    "DescribeApplicationVersions",
                    status or "",
                    f"version {version} {said}",
                    "see the application version and its bundle in the EB console, "
                    "delete the version, fix the Dockerrun.aws.json and re-run",
                )
            if self.clock.now() >= deadline:
                raise AwsVersionError(
                    "DescribeApplicationVersions",
                    "Deadline",
                    f"version {version} still {status} after {self.config.aws.version_processing:g} s",
                    "raise aws.version_processing or check the version in the EB console",
                )
            self.clock.sleep(self.config.aws.poll_interval)

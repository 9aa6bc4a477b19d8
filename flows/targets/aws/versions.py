"""Application versions of the EB target: a release's bundle registered once, reused when identical.

`register` uploads the rendered `Dockerrun.aws.json` to S3 and creates the application version
(`CreateApplicationVersion`, Process=True), then waits until EB has processed it. A version label
that exists already is reused only if it was made from this same bundle (labels are immutable in
EB); one a concurrent run created meanwhile is checked the same way. Every call's failure becomes
an `AwsTargetError` naming the AWS code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flows.clock import Clock, Deadline, poll_until
from flows.config import PipelineConfig
from flows.targets.aws import facts
from flows.targets.aws.clients import AwsClients, call, check_ok
from flows.targets.aws.errors import (
    AwsBundleUploadError,
    AwsDescribeError,
    AwsResponseError,
    AwsVersionConflict,
    AwsVersionError,
    translate,
)


class ApplicationVersions:
    """The application versions of one configured EB application."""

    def __init__(
        self, config: PipelineConfig, clients: AwsClients, clock: Clock, log: Callable[[str], None]
    ) -> None:
        """Versions of `config.application`, through `clients`; `clock` times the processing wait."""
        self.config = config
        self.clients = clients
        self.clock = clock
        self.log = log

    def register(self, version: str, bundle: dict[str, Any], bucket_of: Callable[[], str]) -> None:
        """Make `version` deployable from its rendered bundle; an existing identical version is reused.

        Uploads the bundle to `s3://<bucket>/<bundle_prefix><application>/<version>/Dockerrun.aws.json`,
        creates the application version (Process=True), and waits until EB has processed it.
        An existing version is never overwritten: if its bundle differs, `AwsVersionConflict`.
        `bucket_of` names the bundle bucket (asked only when a bundle is uploaded).
        """
        key = facts.bundle_key(self.config, version)
        existing = self.describe(version)
        reused = existing is not None
        if existing is None:
            bucket = bucket_of()
            body = facts.render_bundle(bundle)
            response = call(
                AwsBundleUploadError,
                "PutObject",
                lambda: self.clients.s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType="application/json"
                ),
            )
            check_ok(response, "PutObject")
            if not response.get("ETag"):
                raise AwsResponseError("PutObject", "", "S3 answered without an ETag", "re-run the release")
            self.log(f"uploaded the bundle of {version} to s3://{bucket}/{key}")
            existing = self._create_version(version, bucket, key)
        if existing is not None:
            self._check_existing(version, existing, bundle, key)
        self._wait_processed(version, accept_unprocessed=reused)

    def describe(self, version: str) -> dict[str, Any] | None:
        """EB's description of one application version, None if it does not exist."""
        response = call(
            AwsDescribeError,
            "DescribeApplicationVersions",
            lambda: self.clients.eb.describe_application_versions(
                ApplicationName=self.config.application, VersionLabels=[version]
            ),
        )
        check_ok(response, "DescribeApplicationVersions")
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
                return self.describe(version)
            raise translate(exc, AwsVersionError, "CreateApplicationVersion") from exc
        except BotoCoreError as exc:
            raise translate(exc, AwsVersionError, "CreateApplicationVersion") from exc
        check_ok(response, "CreateApplicationVersion")
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
        stored = call(
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
        """Poll the version every `aws.poll_interval` until EB has processed it; Failed or the deadline raise.

        A reused version created without processing (`Unprocessed` for good) is deployable
        as is, so it is accepted; one this run created with `Process=True` must get processed.
        """
        seen: dict[str, str | None] = {"status": None}

        def look(_: Deadline) -> bool | None:
            description = self.describe(version)
            status = description.get("Status") if description else None
            seen["status"] = status
            if status == "Processed" or (status == "Unprocessed" and accept_unprocessed):
                return True
            if description is None or status == "Failed":
                said = "disappeared" if description is None else "failed processing"
                raise AwsVersionError(
                    "DescribeApplicationVersions",
                    status or "",
                    f"version {version} {said}",
                    "see the application version and its bundle in the EB console, "
                    "delete the version, fix the Dockerrun.aws.json and re-run",
                )
            return None

        def timed_out(_: Deadline) -> AwsVersionError:
            return AwsVersionError(
                "DescribeApplicationVersions",
                "Deadline",
                f"version {version} still {seen['status']} after {self.config.aws.version_processing:g} s",
                "raise aws.version_processing or check the version in the EB console",
            )

        poll_until(
            look,
            self.config.aws.version_processing,
            self.config.aws.poll_interval,
            timed_out,
            clock=self.clock,
        )

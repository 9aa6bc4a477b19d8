"""Settings of the AWS Elastic Beanstalk target (the `aws` section of the pipeline's configuration)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from flows.targets.renewal import LeaseSettings


class AwsSettings(LeaseSettings):
    """The AWS Elastic Beanstalk target.

    A run's credentials come from the Prefect Secret block `credentials_block` names (a block of
    the caller's, made by `deliverypipeline run`, or one a webhook's configuration names), else
    from boto3's standard chain of the process running it (the worker host's own).
    """

    section: ClassVar[str] = "aws"
    region: str = "eu-west-1"
    bucket: str = ""
    bundle_prefix: str = "deliverypipeline/"
    endpoint_url: str | None = None  # for tests against a local endpoint; never a real default
    registry_secret_block: str | None = None  # a Prefect Secret block with "user:password"
    # A Prefect Secret block holding the run's AWS credentials (JSON: access_key_id,
    # secret_access_key, session_token); only its name is a parameter, never the secret.
    credentials_block: str | None = None
    # How long the short-lived credentials `deliverypipeline run` makes from long-term keys last
    # (STS GetSessionToken: 15 min to 36 h); the run's Secret blocks are swept after it.
    run_credentials_s: int = Field(default=4 * 3600, ge=900, le=129600)
    version_processing: float = 300  # seconds EB may take to validate a new application version
    poll_interval: float = 5  # seconds between looks at a version being processed
    # The release lock: an S3 object `<bundle_prefix>locks/<application>.json` in the bucket.
    lock_lease: float = Field(default=120, gt=0)  # seconds a holder's lease lasts unless renewed
    lock_renew: float = Field(default=30, gt=0)  # seconds between renewals while the holder runs
    lock_clock_skew: float = Field(default=10, ge=0)  # extra seconds past expiry before a takeover

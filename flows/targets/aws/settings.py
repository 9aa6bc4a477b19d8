"""Settings of the AWS Elastic Beanstalk target (the `aws` section of the pipeline's configuration)."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class AwsSettings(BaseModel):
    """The AWS Elastic Beanstalk target.

    A run's credentials come from the Prefect Secret block `credentials_block` names (a block of
    the caller's, made by `deliverypipeline run`, or one a webhook's configuration names), else
    from boto3's standard chain of the process running it (the worker host's own).
    """

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

    @model_validator(mode="after")
    def _renew_within_lease(self) -> AwsSettings:
        """A lease must be renewed before it runs out, or a live holder would lose it."""
        if self.lock_renew >= self.lock_lease:
            raise ValueError(
                f"aws.lock_renew ({self.lock_renew:g} s) must be shorter than aws.lock_lease "
                f"({self.lock_lease:g} s): a live holder renews its lease before it expires"
            )
        return self

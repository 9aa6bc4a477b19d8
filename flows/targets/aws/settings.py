"""Settings of the AWS Elastic Beanstalk target (the `aws` section of the pipeline's configuration)."""

from __future__ import annotations

from pydantic import BaseModel


class AwsSettings(BaseModel):
    """The AWS Elastic Beanstalk target; credentials come from boto3's standard chain."""

    region: str = "eu-west-1"
    bucket: str = ""
    bundle_prefix: str = "deliverypipeline/"
    endpoint_url: str | None = None  # for tests against a local endpoint; never a real default
    registry_secret_block: str | None = None  # a Prefect Secret block with "user:password"
    version_processing: float = 300  # seconds EB may take to validate a new application version
    poll_interval: float = 5  # seconds between looks at a version being processed

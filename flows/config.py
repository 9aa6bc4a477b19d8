"""The pipeline's configuration: one typed model, shown as a form in the Prefect UI.

Defaults describe the embedded local target; `aws` settings are needed only for `target="aws"`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class Deadlines(BaseModel):
    """How long each wait may last, in seconds; each failure message names the deadline."""

    unit_tests: float = 600
    build: float = 900
    smoke_test: float = 60
    push: float = 300
    preprod_free: float = 600  # preprod busy with another update
    ready: float = 600  # after deploy: Ready, accepted health, new version
    verify: float = 60  # HTTP checks through an address (DNS may lag on aws)
    swap: float = 600  # both environments Ready again after a swap
    poll_interval: float = 1.0  # between two looks at a target or an address (aws: ~10)
    health_grace: float = 0  # how long a Ready environment may show an unaccepted health (EB: ~60)


class LocalSettings(BaseModel):
    """The local Docker target: two containers behind HAProxy on 127.0.0.1."""

    state_dir: Path = Path("/var/lib/deliverypipeline/local")
    store_config: Path | None = None  # a webapp config (TOML) shared by both; None = SQLite
    proxy_admin_socket: Path | None = None  # default: <state_dir>/haproxy.sock
    health_path: str = "/health"  # probed inside the container for its Docker health
    drain_seconds: float = 1.0  # after a backend leaves a container, before it is stopped
    stop_grace: float = 10.0  # SIGTERM to SIGKILL when a container is retired


class AwsSettings(BaseModel):
    """The AWS Elastic Beanstalk target; credentials come from boto3's standard chain."""

    region: str = "eu-west-1"
    bucket: str = ""
    bundle_prefix: str = "deliverypipeline/"
    endpoint_url: str | None = None  # for tests against a local endpoint; never a real default
    registry_secret_block: str | None = None  # a Prefect Secret block with "user:password"
    version_processing: float = 300  # seconds EB may take to validate a new application version
    poll_interval: float = 5  # seconds between looks at a version being processed


class PipelineConfig(BaseModel):
    """Everything a release needs to know besides the repository and commit."""

    application: str = "deliverypipeline"
    environments: tuple[str, str] = ("node-1", "node-2")
    prod_address: str = "127.0.0.1:8080"  # aws: the prod CNAME prefix
    preprod_address: str = "127.0.0.1:8081"  # aws: the preprod CNAME prefix
    registry: str = "127.0.0.1:5000"
    image_repository: str = "deliverypipeline"
    base_image: str = "deliverypipeline/base:bookworm-py311"
    accepted_health: list[str] = Field(default_factory=lambda: ["Green"])
    deadlines: Deadlines = Field(default_factory=Deadlines)
    local: LocalSettings = Field(default_factory=LocalSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)

    @property
    def image(self) -> str:
        """The image name in the registry, without a tag."""
        return f"{self.registry}/{self.image_repository}" if self.registry else self.image_repository

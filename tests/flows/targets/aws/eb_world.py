"""A scripted Elastic Beanstalk for tests: botocore `Stubber` answers plus the HTTP side they imply.

`EbWorld` queues realistic EB responses in the order a release makes its calls, keeps the
two environments' state as EB would report it, and records the calls actually made. The
HTTP side (which environment answers behind each CNAME, which version it serves) changes
when a swap or an update is *made*, not when it is queued, so a fake health check sees
what a client would see at that moment. No request leaves the process: the clients point
at a closed port on 127.0.0.1 and the stubbers answer before anything is sent.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
from botocore.loaders import Loader, create_loader
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from flows.config import Deadlines, PipelineConfig
from flows.release.health import HealthReport
from flows.targets.aws.clients import AwsClients
from flows.targets.aws.settings import AwsSettings
from flows.targets.aws.target import ElasticBeanstalkTarget
from tests.flows.fakes import FakeClock

REGION = "eu-west-1"
ACCOUNT = "123456789012"
APPLICATION = "deliverypipeline"
NODE_1 = "deliverypipeline-node-1"
NODE_2 = "deliverypipeline-node-2"
PROD = "deliverypipeline-prod"
PREPROD = "deliverypipeline-preprod"
PROD_CNAME = f"{PROD}.{REGION}.elasticbeanstalk.com"
PREPROD_CNAME = f"{PREPROD}.{REGION}.elasticbeanstalk.com"
BUCKET = "deliverypipeline-bundles"
ARN = f"arn:aws:elasticbeanstalk:{REGION}:{ACCOUNT}"
# A closed port on loopback: if a stubber ever let a call through, it would fail here, never reach AWS.
NOWHERE = "http://127.0.0.1:9"


def aws_config(**changes: Any) -> PipelineConfig:
    """The seed's set-up: one application, two environments, prod/preprod CNAME prefixes."""
    settings: dict[str, Any] = {
        "application": APPLICATION,
        "environments": (NODE_1, NODE_2),
        "prod_address": PROD,
        "preprod_address": PREPROD,
        "registry": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
        "aws": AwsSettings(region=REGION, bucket=BUCKET, endpoint_url=NOWHERE, poll_interval=5),
        "deadlines": Deadlines(preprod_free=300, ready=600, verify=120, swap=300, poll_interval=10),
    }
    settings.update(changes)
    return PipelineConfig(**settings)


@functools.cache
def _models() -> Loader:
    # One loader for every session of the tests: once it has read a service's model, new sessions
    # and clients need not read it again (~0.06 s per session).
    return create_loader()


def new_session(**options: Any) -> boto3.session.Session:
    """A boto3 session of its own (credentials, region: `options` or the environment's) that
    shares the service models already loaded."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _models())
    return boto3.session.Session(botocore_session=core, **options)


@functools.cache
def _session() -> boto3.session.Session:
    # One session for all tests: its loaded service models make each new client cheap.
    return new_session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def stubbed_clients() -> AwsClients:
    """EB and S3 clients with fake credentials aimed at nowhere."""
    session = _session()
    return AwsClients(
        eb=session.client("elasticbeanstalk", endpoint_url=NOWHERE),
        s3=session.client("s3", endpoint_url=NOWHERE),
    )


@dataclass(frozen=True)
class EnvState:
    """One environment as EB describes it."""

    name: str
    cname: str
    version: str
    status: str = "Ready"
    health: str = "Green"
    env_id: str = "e-abcd1234"

    def description(self) -> dict[str, Any]:
        """An `EnvironmentDescription` as DescribeEnvironments returns it."""
        return {
            "EnvironmentName": self.name,
            "EnvironmentId": self.env_id,
            "ApplicationName": APPLICATION,
            "VersionLabel": self.version,
            "SolutionStackName": "64bit Amazon Linux 2023 v4.4.1 running Docker",
            "EndpointURL": f"awseb-{self.env_id}-1234567890.{REGION}.elb.amazonaws.com",
            "CNAME": self.cname,
            "DateCreated": datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
            "DateUpdated": datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
            "Status": self.status,
            "AbortableOperationInProgress": self.status == "Updating",
            "Health": self.health,
            "HealthStatus": {"Green": "Ok", "Yellow": "Warning", "Red": "Severe"}.get(self.health, "Pending"),
            "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
            "EnvironmentArn": f"{ARN}:environment/{APPLICATION}/{self.name}",
        }


class EbWorld:
    """Two stubbed EB environments (node-1 prod on v1, node-2 preprod on v0) and their HTTP side."""

    def __init__(self, config: PipelineConfig | None = None, s3_client: Any | None = None) -> None:
        """`s3_client`: a real client (e.g. on moto) to use instead of a stubbed S3."""
        self.config = config or aws_config()
        self.clients = stubbed_clients()
        if s3_client is not None:
            self.clients = AwsClients(eb=self.clients.eb, s3=s3_client)
        self.eb = Stubber(self.clients.eb)
        self.s3 = Stubber(self.clients.s3 if s3_client is None else stubbed_clients().s3)
        self.state = {
            NODE_1: EnvState(NODE_1, PROD_CNAME, "v1", env_id="e-node1abcd"),
            NODE_2: EnvState(NODE_2, PREPROD_CNAME, "v0", env_id="e-node2efgh"),
        }
        # The HTTP side, changed when calls are made: which env answers behind a CNAME, what it serves.
        self.dns = {PROD_CNAME: NODE_1, PREPROD_CNAME: NODE_2}
        # What clients resolve the CNAMEs to; with `dns_lag` it keeps the pre-swap answer.
        self.resolved = dict(self.dns)
        self.dns_lag = False
        self.serving = {NODE_1: "v1", NODE_2: "v0"}
        self.broken_versions: set[str] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failed_calls: list[tuple[str, str]] = []
        self._params: dict[str, Any] = {}
        # When the next queued event happens (each one 7 s after the last); a test may move it.
        self.event_clock = datetime.now(UTC)
        # When each environment's enhanced health last refreshed its metrics window (10 s apart).
        self.health_clock: dict[str, datetime] = {}
        self.clock = FakeClock()
        self.log: list[str] = []
        for client in (self.clients.eb, self.clients.s3):
            client.meta.events.register("before-parameter-build.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)
        self.eb.activate()
        self.s3.activate()

    def target(self) -> ElasticBeanstalkTarget:
        """The target under test, on the stubbed clients and the fake clock."""
        return ElasticBeanstalkTarget(self.config, self.clients, clock=self.clock, log=self.log.append)

    # -- what happened -----------------------------------------------------------------------

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._params = dict(params)

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if "Error" in parsed:
            self.failed_calls.append((model.name, parsed["Error"].get("Code", "")))
            return
        self.calls.append((model.name, self._params))
        if model.name == "SwapEnvironmentCNAMEs":
            first, second = self._params["SourceEnvironmentName"], self._params["DestinationEnvironmentName"]
            for cname, env in list(self.dns.items()):
                self.dns[cname] = second if env == first else first if env == second else env
            if not self.dns_lag:
                self.resolved = dict(self.dns)
        elif model.name == "UpdateEnvironment":
            self.serving[self._params["EnvironmentName"]] = self._params["VersionLabel"]

    def operations(self) -> list[str]:
        """The names of the successful calls, in order."""
        return [name for name, _ in self.calls]

    def behind(self, cname: str) -> str:
        """The environment that answers at a CNAME now."""
        return self.dns[cname]

    def check(self, url: str) -> HealthReport:
        """What `GET <url>/health` would answer now (the fake for `flows.release.health.fetch_health`)."""
        host = url.removeprefix("http://").rstrip("/")
        if host not in self.resolved:
            return HealthReport(url, None, None, error=f"unreachable (unknown host {host})")
        version = self.serving[self.resolved[host]]
        if version in self.broken_versions:
            return HealthReport(url, 502, None, error="HTTP 502")
        return HealthReport(url, 200, version)

    def done(self) -> None:
        """Every queued response was used."""
        self.eb.assert_no_pending_responses()
        self.s3.assert_no_pending_responses()

    # -- queued EB answers -------------------------------------------------------------------

    def describe(self, **changes: dict[str, Any]) -> None:
        """Queue one DescribeEnvironments answer, after applying `changes` per environment name key.

        Keys are "node_1"/"node_2"; values are EnvState field changes.
        """
        for key, fields in changes.items():
            name = {"node_1": NODE_1, "node_2": NODE_2}[key]
            self.state[name] = replace(self.state[name], **fields)
        self.eb.add_response(
            "describe_environments",
            {"Environments": [env.description() for env in self.state.values()]},
            {"ApplicationName": APPLICATION, "EnvironmentNames": [NODE_1, NODE_2], "IncludeDeleted": False},
        )

    def update(self, environment: str, version: str) -> None:
        """Queue UpdateEnvironment's answer: the environment starts Updating."""
        self.state[environment] = replace(self.state[environment], status="Updating", health="Grey")
        answer = self.state[environment].description()
        answer.pop("EnvironmentArn")
        self.eb.add_response(
            "update_environment",
            answer,
            {"ApplicationName": APPLICATION, "EnvironmentName": environment, "VersionLabel": version},
        )

    def events(self, environment: str, *events: tuple[str, str]) -> None:
        """Queue a DescribeEvents answer with (severity, message) events, newest first as EB lists them."""
        described = []
        for severity, message in events:
            self.event_clock += timedelta(seconds=7)
            described.append(
                {
                    "EventDate": self.event_clock,
                    "Message": message,
                    "ApplicationName": APPLICATION,
                    "EnvironmentName": environment,
                    "Severity": severity,
                }
            )
        self.eb.add_response(
            "describe_events",
            {"Events": list(reversed(described))},
            {"ApplicationName": APPLICATION, "EnvironmentName": environment, "StartTime": ANY},
        )

    def swap(self, first: str, second: str) -> None:
        """Queue SwapEnvironmentCNAMEs' (empty) answer; EB's state swaps CNAMEs."""
        a, b = self.state[first], self.state[second]
        self.state[first], self.state[second] = replace(a, cname=b.cname), replace(b, cname=a.cname)
        self.eb.add_response(
            "swap_environment_cnames",
            {},
            {"SourceEnvironmentName": first, "DestinationEnvironmentName": second},
        )

    def swap_refused(self, first: str, second: str, code: str, message: str) -> None:
        """Queue a refused swap."""
        self.eb.add_client_error(
            "swap_environment_cnames",
            service_error_code=code,
            service_message=message,
            http_status_code=400,
            expected_params={"SourceEnvironmentName": first, "DestinationEnvironmentName": second},
        )

    def version_answer(self, version: str, status: str | None, key: str | None = None) -> None:
        """Queue DescribeApplicationVersions for one label: absent (status None) or in `status`."""
        versions = []
        if status is not None:
            versions.append(
                {
                    "ApplicationVersionArn": (f"{ARN}:applicationversion/{APPLICATION}/{version}"),
                    "ApplicationName": APPLICATION,
                    "VersionLabel": version,
                    "SourceBundle": {"S3Bucket": BUCKET, "S3Key": key or self.bundle_key(version)},
                    "DateCreated": datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
                    "DateUpdated": datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
                    "Status": status,
                }
            )
        self.eb.add_response(
            "describe_application_versions",
            {"ApplicationVersions": versions},
            {"ApplicationName": APPLICATION, "VersionLabels": [version]},
        )

    def bundle_key(self, version: str) -> str:
        """Where the target stores a version's bundle."""
        return f"deliverypipeline/{APPLICATION}/{version}/Dockerrun.aws.json"

    def upload(self, version: str) -> None:
        """Queue S3 PutObject's answer for the version's bundle."""
        self.s3.add_response(
            "put_object",
            {"ETag": '"9b2cf535f27731c974343645a3985328"'},
            {
                "Bucket": BUCKET,
                "Key": self.bundle_key(version),
                "Body": ANY,
                "ContentType": "application/json",
            },
        )

    def create_version(self, version: str) -> None:
        """Queue CreateApplicationVersion's answer (Processing)."""
        self.eb.add_response(
            "create_application_version",
            {
                "ApplicationVersion": {
                    "ApplicationName": APPLICATION,
                    "VersionLabel": version,
                    "SourceBundle": {"S3Bucket": BUCKET, "S3Key": self.bundle_key(version)},
                    "Status": "Processing",
                }
            },
            {
                "ApplicationName": APPLICATION,
                "VersionLabel": version,
                "Description": ANY,
                "SourceBundle": {"S3Bucket": BUCKET, "S3Key": self.bundle_key(version)},
                "Process": True,
            },
        )

    def stored_bundle(self, version: str, body: bytes) -> None:
        """Queue S3 GetObject's answer: the bundle stored for an existing version."""
        self.s3.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentLength": len(body)},
            {"Bucket": BUCKET, "Key": self.bundle_key(version)},
        )

    def environment_health(
        self,
        environment: str,
        requests: int,
        percent_5xx: int = 0,
        p99_s: float = 0.05,
        *,
        new_window: bool = True,
    ) -> None:
        """Queue DescribeEnvironmentHealth (All): one enhanced-health metrics window of `environment`.

        `new_window` False repeats the latest window (`RefreshedAt` unchanged: nothing new to count).
        """
        refreshed = self.health_clock.get(environment, datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
        if new_window:
            refreshed += timedelta(seconds=10)
        self.health_clock[environment] = refreshed
        metrics: dict[str, Any] = {"Duration": 10, "RequestCount": requests}
        if requests:
            metrics["StatusCodes"] = {
                "Status2xx": 100 - percent_5xx,
                "Status3xx": 0,
                "Status4xx": 0,
                "Status5xx": percent_5xx,
            }
            metrics["Latency"] = {"P999": p99_s * 2, "P99": p99_s, "P95": p99_s / 2, "P50": p99_s / 5}
        self.eb.add_response(
            "describe_environment_health",
            {
                "EnvironmentName": environment,
                "HealthStatus": "Ok",
                "Status": "Ready",
                "Color": "Green",
                "Causes": [],
                "ApplicationMetrics": metrics,
                "InstancesHealth": {"Ok": 1},
                "RefreshedAt": refreshed,
            },
            {"EnvironmentName": environment, "AttributeNames": ["All"]},
        )

    # -- queued answers of the preflight -------------------------------------------------------

    def preflight_ok(self) -> None:
        """Queue a passing preflight: the application, both environments, the bucket in the region."""
        self.eb.add_response(
            "describe_applications", {"Applications": [{"ApplicationName": APPLICATION}]}, {}
        )
        self.eb.add_response(
            "describe_environments",
            {"Environments": [env.description() for env in self.state.values()]},
            {"ApplicationName": APPLICATION, "IncludeDeleted": False},
        )
        self.s3.add_response("head_bucket", {"BucketRegion": REGION}, {"Bucket": BUCKET})

    # -- queued S3 answers of the release lock -------------------------------------------------

    def lock_key(self) -> str:
        """Where the target keeps the application's release lock."""
        return f"deliverypipeline/locks/{self.config.application}.json"

    def lock_taken(self, bucket: str = BUCKET, etag: str = '"e-lock"') -> None:
        """Queue a free release lock being taken: GetObject finds none, the conditional PutObject wins."""
        where = {"Bucket": bucket, "Key": self.lock_key()}
        self.s3.add_client_error(
            "get_object", "NoSuchKey", "The specified key does not exist.", 404, expected_params=where
        )
        self.s3.add_response(
            "put_object",
            {"ETag": etag},
            {**where, "Body": ANY, "ContentType": "application/json", "IfNoneMatch": "*"},
        )

    def lock_released(self, bucket: str = BUCKET, etag: str = '"e-lock"') -> None:
        """Queue the release lock being removed, only if still ours (DeleteObject with IfMatch)."""
        self.s3.add_response("delete_object", {}, {"Bucket": bucket, "Key": self.lock_key(), "IfMatch": etag})

    def storage_location(self, bucket: str = BUCKET) -> None:
        """Queue CreateStorageLocation's answer: EB's own bucket (used when aws.bucket is unset)."""
        self.eb.add_response("create_storage_location", {"S3Bucket": bucket}, {})


def dockerrun(version: str) -> dict[str, Any]:
    """The rendered Dockerrun.aws.json (v1, single container) of a version."""
    return {
        "AWSEBDockerrunVersion": "1",
        "Image": {
            "Name": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/deliverypipeline:{version}",
            "Update": "true",
        },
        "Ports": [{"ContainerPort": "8080"}],
        "Volumes": [
            {"HostDirectory": "/app/application.conf", "ContainerDirectory": "/app/application.conf"}
        ],
        "Logging": "/var/log/deliverypipeline",
    }

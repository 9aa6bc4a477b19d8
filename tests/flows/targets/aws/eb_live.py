"""A stateful Elastic Beanstalk for the target contract: EB calls answered from state, S3 by moto.

`EbWorld` scripts answers in the order one release makes its calls; the contract's checks make
calls in orders of their own, so here every EB call is answered from the two environments'
state as EB would keep it (an update is `Updating` for two looks, then `Ready` with its
version; a swap exchanges the CNAMEs and needs both Ready; an unknown version or environment
is EB's `InvalidParameterValue`). The answers are given at botocore's `before-call` event, so
no EB request is sent; S3 (bundles, the release lock's conditional writes) runs on moto in this
process (`mock_aws`), where the bucket exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws

from flows.targets.aws.clients import AwsClients
from flows.targets.aws.settings import AwsSettings
from flows.targets.aws.target import ElasticBeanstalkTarget
from tests.flows.fakes import FakeClock
from tests.flows.targets.aws.eb_world import (
    APPLICATION,
    BUCKET,
    NODE_1,
    NODE_2,
    PREPROD_CNAME,
    PROD_CNAME,
    REGION,
    EnvState,
    aws_config,
    new_session,
)

UPDATE_LOOKS = 2  # DescribeEnvironments answers an update stays Updating for


class LiveEb:
    """Two EB environments (node-1 prod on v1, node-2 preprod on v0) that change as calls are made."""

    def __init__(self, eb: Any) -> None:
        """Answers every call of the EB client `eb` from now on."""
        self.envs = {
            NODE_1: EnvState(NODE_1, PROD_CNAME, "v1", env_id="e-node1abcd"),
            NODE_2: EnvState(NODE_2, PREPROD_CNAME, "v0", env_id="e-node2efgh"),
        }
        self.pending: dict[str, tuple[str, int]] = {}
        self.versions: dict[str, dict[str, Any]] = {
            v: {"S3Bucket": BUCKET, "S3Key": f"old/{v}", "Status": "Processed"} for v in ("v0", "v1")
        }
        self.events: list[dict[str, Any]] = []
        self.refreshed = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
        self._params: dict[str, Any] = {}
        eb.meta.events.register("before-parameter-build.elastic-beanstalk.*", self._keep)
        eb.meta.events.register("before-call.elastic-beanstalk.*", self._answer)

    def _keep(self, params: dict[str, Any], **_: Any) -> None:
        self._params = dict(params)

    def _answer(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        try:
            parsed = getattr(self, f"_{model.name}")(self._params)
        except InvalidParameter as refused:
            error = {"Code": "InvalidParameterValue", "Message": str(refused), "Type": "Sender"}
            return AWSResponse("", 400, HTTPHeaders(), None), {
                "Error": error,
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        return AWSResponse("", 200, HTTPHeaders(), None), {
            **parsed,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    def _event(self, environment: str, message: str) -> None:
        self.events.append(
            {
                "EventDate": datetime.now(UTC),
                "Message": message,
                "ApplicationName": APPLICATION,
                "EnvironmentName": environment,
                "Severity": "INFO",
            }
        )

    def _env(self, name: str) -> EnvState:
        if name not in self.envs:
            raise InvalidParameter(f"No Environment found for EnvironmentName = '{name}'.")
        return self.envs[name]

    # -- the calls ---------------------------------------------------------------------------

    def _DescribeEnvironments(self, params: dict[str, Any]) -> dict[str, Any]:
        for name, (version, looks) in list(self.pending.items()):
            if looks <= 0:
                self.envs[name] = replace(self.envs[name], status="Ready", health="Green", version=version)
                del self.pending[name]
                self._event(name, "Environment update completed successfully.")
            else:
                self.pending[name] = (version, looks - 1)
        return {"Environments": [env.description() for env in self.envs.values()]}

    def _UpdateEnvironment(self, params: dict[str, Any]) -> dict[str, Any]:
        env, version = self._env(params["EnvironmentName"]), params["VersionLabel"]
        if version not in self.versions:
            raise InvalidParameter(f"No Application Version named '{version}' found.")
        if env.status != "Ready":
            raise InvalidParameter(
                f"Environment named {env.name} is in an invalid state for this operation. Must be Ready."
            )
        self.envs[env.name] = replace(env, status="Updating", health="Grey")
        self.pending[env.name] = (version, UPDATE_LOOKS)
        self._event(env.name, "Environment update is starting.")
        answer = self.envs[env.name].description()
        answer.pop("EnvironmentArn")
        return answer

    def _SwapEnvironmentCNAMEs(self, params: dict[str, Any]) -> dict[str, Any]:
        first = self._env(params["SourceEnvironmentName"])
        second = self._env(params["DestinationEnvironmentName"])
        for env in (first, second):
            if env.status != "Ready":
                raise InvalidParameter(
                    f"Environment named {env.name} is in an invalid state for this operation. Must be Ready."
                )
        self.envs[first.name] = replace(first, cname=second.cname)
        self.envs[second.name] = replace(second, cname=first.cname)
        for env in (first, second):
            self._event(
                env.name, f"Completed swapping CNAMEs for environments '{first.name}' and '{second.name}'."
            )
        return {}

    def _DescribeEvents(self, params: dict[str, Any]) -> dict[str, Any]:
        mine = [
            e
            for e in self.events
            if e["EnvironmentName"] == params["EnvironmentName"] and e["EventDate"] >= params["StartTime"]
        ]
        return {"Events": list(reversed(mine))}  # newest first, as EB lists them

    def _CreateApplicationVersion(self, params: dict[str, Any]) -> dict[str, Any]:
        label = params["VersionLabel"]
        if label in self.versions:
            raise InvalidParameter(f"Application Version {label} already exists.")
        self.versions[label] = {**params["SourceBundle"], "Status": "Processing"}
        return {"ApplicationVersion": self._version(label)}

    def _version(self, label: str) -> dict[str, Any]:
        known = self.versions[label]
        return {
            "ApplicationName": APPLICATION,
            "VersionLabel": label,
            "SourceBundle": {"S3Bucket": known["S3Bucket"], "S3Key": known["S3Key"]},
            "Status": known["Status"],
        }

    def _DescribeApplicationVersions(self, params: dict[str, Any]) -> dict[str, Any]:
        found = []
        for label in params.get("VersionLabels", []):
            if label in self.versions:
                found.append(self._version(label))
                self.versions[label]["Status"] = "Processed"  # processed by the next look
        return {"ApplicationVersions": found}

    def _DescribeApplications(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Applications": [{"ApplicationName": APPLICATION}]}

    def _DescribeEnvironmentHealth(self, params: dict[str, Any]) -> dict[str, Any]:
        env = self._env(params["EnvironmentName"])
        self.refreshed += timedelta(seconds=10)
        metrics = {
            "Duration": 10,
            "RequestCount": 20,
            "StatusCodes": {"Status2xx": 100, "Status3xx": 0, "Status4xx": 0, "Status5xx": 0},
            "Latency": {"P999": 0.1, "P99": 0.05, "P95": 0.02, "P50": 0.01},
        }
        return {
            "EnvironmentName": env.name,
            "HealthStatus": "Ok",
            "Status": env.status,
            "Color": env.health,
            "Causes": [],
            "ApplicationMetrics": metrics,
            "InstancesHealth": {"Ok": 1},
            "RefreshedAt": self.refreshed,
        }


class InvalidParameter(Exception):
    """What EB answers with `InvalidParameterValue`."""


@contextmanager
def live_target() -> Iterator[tuple[ElasticBeanstalkTarget, LiveEb]]:
    """The aws target on a `LiveEb` and moto's S3 (bucket created), on a fake clock."""
    with mock_aws():
        session = new_session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        clients = AwsClients(eb=session.client("elasticbeanstalk"), s3=session.client("s3"))
        clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
        world = LiveEb(clients.eb)
        config = aws_config(aws=AwsSettings(region=REGION, bucket=BUCKET, poll_interval=5, lock_renew=1))
        log: list[str] = []
        yield ElasticBeanstalkTarget(config, clients, clock=FakeClock(), log=log.append), world

"""`ElasticBeanstalkTarget`, one method at a time, against stubbed EB and S3 answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flows.targets.aws.clients import make_clients
from flows.targets.aws.errors import (
    AwsDeployError,
    AwsDescribeError,
    AwsEventsError,
)
from flows.targets.base import MISSING, Target
from tests.flows.targets.aws.eb_world import (
    APPLICATION,
    BUCKET,
    NODE_1,
    NODE_2,
    NOWHERE,
    PREPROD_CNAME,
    PROD_CNAME,
    EbWorld,
    aws_config,
)


def test_it_is_a_target() -> None:
    assert isinstance(EbWorld().target(), Target)


def test_environments_report_cname_version_status_health() -> None:
    world = EbWorld()
    world.describe(node_2={"status": "Updating", "health": "Grey", "version": "v2"})

    node_1, node_2 = world.target().environments()

    assert (node_1.name, node_1.address, node_1.version, node_1.status, node_1.health) == (
        NODE_1,
        PROD_CNAME,
        "v1",
        "Ready",
        "Green",
    )
    assert (node_2.address, node_2.version, node_2.status, node_2.health) == (
        PREPROD_CNAME,
        "v2",
        "Updating",
        "Grey",
    )
    assert node_2.details["id"] == "e-node2efgh"
    world.done()


def test_a_missing_environment_is_reported_missing() -> None:
    world = EbWorld()
    world.eb.add_response(
        "describe_environments",
        {"Environments": [world.state[NODE_1].description()]},
        {"ApplicationName": APPLICATION, "EnvironmentNames": [NODE_1, NODE_2], "IncludeDeleted": False},
    )

    envs = world.target().environments()

    assert [(e.name, e.status) for e in envs] == [(NODE_1, "Ready"), (NODE_2, MISSING)]
    assert envs[1].address == "" and envs[1].version is None
    world.done()


def test_describe_failure_names_the_code_and_what_to_do() -> None:
    world = EbWorld()
    world.eb.add_client_error(
        "describe_environments",
        service_error_code="InsufficientPrivilegesException",
        service_message="User is not authorized to perform elasticbeanstalk:DescribeEnvironments",
        http_status_code=403,
    )

    with pytest.raises(AwsDescribeError) as failure:
        world.target().environments()

    assert failure.value.code == "InsufficientPrivilegesException"
    assert "IAM permissions" in str(failure.value) and "DescribeEnvironments" in str(failure.value)


def test_url_of_a_full_cname_needs_no_call_and_a_prefix_is_looked_up() -> None:
    world = EbWorld()
    target = world.target()
    assert target.url(PROD_CNAME) == f"http://{PROD_CNAME}"
    world.describe()
    assert target.url("deliverypipeline-preprod") == f"http://{PREPROD_CNAME}"
    world.describe()
    assert (
        target.url("deliverypipeline-other") == "http://deliverypipeline-other.eu-west-1.elasticbeanstalk.com"
    )
    assert world.operations() == ["DescribeEnvironments", "DescribeEnvironments"]
    world.done()


def test_without_a_bucket_eb_storage_location_is_used() -> None:
    world = EbWorld(
        aws_config().model_copy(update={"aws": aws_config().aws.model_copy(update={"bucket": ""})})
    )
    world.eb.add_response("create_storage_location", {"S3Bucket": BUCKET})
    target = world.target()
    assert target.bucket() == BUCKET
    assert target.bucket() == BUCKET  # asked once
    world.done()


def test_deploy_refused_keeps_the_running_version() -> None:
    world = EbWorld()
    world.eb.add_client_error(
        "update_environment",
        service_error_code="InvalidParameterValue",
        service_message="No Application Version named 'v9' found.",
    )

    with pytest.raises(AwsDeployError) as failure:
        world.target().deploy(NODE_2, "v9")

    assert failure.value.code == "InvalidParameterValue"
    assert "keeps the version it ran" in str(failure.value) and "register the version first" in str(
        failure.value
    )
    world.done()


def test_events_are_read_across_pages_oldest_first_and_after_since() -> None:
    world = EbWorld()
    since = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)

    def described(seconds: int, message: str) -> dict[str, object]:
        return {
            "EventDate": since + timedelta(seconds=seconds),
            "Message": message,
            "ApplicationName": APPLICATION,
            "EnvironmentName": NODE_2,
            "Severity": "INFO",
        }

    expected = {"ApplicationName": APPLICATION, "EnvironmentName": NODE_2, "StartTime": since}
    world.eb.add_response(
        "describe_events",
        {"Events": [described(30, "third"), described(20, "second")], "NextToken": "page-2"},
        expected,
    )
    world.eb.add_response(
        "describe_events",
        {"Events": [described(10, "first"), described(0, "at since")]},
        {**expected, "NextToken": "page-2"},
    )

    events = world.target().events(NODE_2, since)

    assert [e.message for e in events] == ["first", "second", "third"]
    assert all(e.environment == NODE_2 and e.time.tzinfo is not None for e in events)
    world.done()


def test_events_failure_is_an_events_error() -> None:
    world = EbWorld()
    world.eb.add_client_error(
        "describe_events", service_error_code="Throttling", service_message="Rate exceeded"
    )

    with pytest.raises(AwsEventsError, match="Rate exceeded") as failure:
        world.target().events(NODE_2, datetime.now(UTC))

    assert "wait a minute" in failure.value.hint


def test_clients_follow_the_configured_region_and_endpoint() -> None:
    clients = make_clients(aws_config())
    for client in (clients.eb, clients.s3):
        assert client.meta.endpoint_url == NOWHERE and client.meta.region_name == "eu-west-1"
    retries: dict[str, Any] = getattr(clients.eb.meta.config, "retries")  # noqa: B009 - untyped in the stubs
    assert retries["mode"] == "adaptive"

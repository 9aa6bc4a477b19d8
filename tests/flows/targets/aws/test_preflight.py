"""Preflight: what would stop a release, found before anything is built, one line per problem."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from typing import Any

import pytest

from flows.targets.aws import preflight
from flows.targets.aws.clients import make_clients
from flows.targets.aws.preflight import BucketAnswer
from flows.targets.aws.settings import AwsSettings
from flows.targets.aws.target import ElasticBeanstalkTarget
from tests.flows.targets.aws.eb_world import (
    APPLICATION,
    BUCKET,
    NODE_1,
    NODE_2,
    PROD_CNAME,
    REGION,
    EbWorld,
    aws_config,
)

STACK = "64bit Amazon Linux 2023 v4.4.1 running Docker"


def applications(world: EbWorld, *names: str) -> None:
    world.eb.add_response(
        "describe_applications", {"Applications": [{"ApplicationName": name} for name in names]}, {}
    )


def environments(world: EbWorld, *descriptions: dict[str, Any]) -> None:
    world.eb.add_response(
        "describe_environments",
        {"Environments": list(descriptions)},
        {"ApplicationName": APPLICATION, "IncludeDeleted": False},
    )


def bucket_here(world: EbWorld, region: str = REGION) -> None:
    world.s3.add_response("head_bucket", {"BucketRegion": region}, {"Bucket": BUCKET})


def described(world: EbWorld, name: str, **changes: Any) -> dict[str, Any]:
    return {**world.state[name].description(), **changes} if name in world.state else changes


def test_a_ready_configuration_has_no_problems_and_changes_nothing() -> None:
    world = EbWorld()
    applications(world, "other-app", APPLICATION)
    environments(world, described(world, NODE_1), described(world, NODE_2))
    bucket_here(world)

    assert world.target().preflight() == []
    assert world.operations() == ["DescribeApplications", "DescribeEnvironments", "HeadBucket"]
    world.done()


def test_a_typo_in_an_environment_name_lists_what_the_application_has() -> None:
    world = EbWorld(aws_config(environments=("deliverypipeline-nod-1", NODE_2)))
    applications(world, APPLICATION)
    environments(world, described(world, NODE_1), described(world, NODE_2))
    bucket_here(world)

    assert world.target().preflight() == [
        f"no environment named deliverypipeline-nod-1 in application {APPLICATION}; the application has: "
        f"{NODE_1}, {NODE_2}; fix `environments` in the configuration"
    ]
    world.done()


def test_a_terminated_environment_does_not_count() -> None:
    world = EbWorld()
    applications(world, APPLICATION)
    environments(world, described(world, NODE_1), described(world, NODE_2, Status="Terminated"))
    bucket_here(world)

    (problem,) = world.target().preflight()
    assert problem.startswith(f"no environment named {NODE_2}") and f"has: {NODE_1};" in problem
    world.done()


def test_a_missing_application_names_the_region_and_its_applications() -> None:
    world = EbWorld()
    applications(world, "shop", "blog")
    bucket_here(world)

    (problem,) = world.target().preflight()
    assert problem.startswith(
        f"no application named {APPLICATION} in region {REGION}; the region has: blog, shop; "
        "fix `application`"
    )
    assert "DescribeEnvironments" not in world.operations()
    world.done()


def test_a_missing_bucket_says_how_to_create_it() -> None:
    world = EbWorld()
    applications(world, APPLICATION)
    environments(world, described(world, NODE_1), described(world, NODE_2))
    world.s3.add_client_error("head_bucket", "404", "Not Found", 404, expected_params={"Bucket": BUCKET})

    assert world.target().preflight() == [
        f"no bucket named {BUCKET} (aws.bucket): create it in {REGION} "
        f"(`aws s3 mb s3://{BUCKET} --region {REGION}`) or fix aws.bucket"
    ]
    world.done()


def test_a_bucket_in_another_region_is_named() -> None:
    world = EbWorld()
    applications(world, APPLICATION)
    environments(world, described(world, NODE_1), described(world, NODE_2))
    bucket_here(world, region="us-east-2")

    (problem,) = world.target().preflight()
    assert f"the bucket {BUCKET} is in us-east-2, the application in {REGION}" in problem
    world.done()


def test_no_credentials_names_whose_environment_was_searched_and_the_ways(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    config = aws_config()  # no aws.credentials_block: the run's process's own chain, which finds none

    problems = ElasticBeanstalkTarget(config, make_clients(config)).preflight()

    assert len(problems) == 1
    line = problems[0]
    assert line.startswith("no AWS credentials found in the environment of the run's process (pid ")
    assert (
        f"pid {os.getpid()}, started by the worker, pid {os.getppid()}, on host {socket.gethostname()}"
        in line
    )
    assert "deliverypipeline run --target aws` from a shell that has them" in line
    assert "AWS_PROFILE" in line and "aws.credentials_block" in line and "instance role" in line


def test_refused_credentials_say_whose_they_were() -> None:
    world = EbWorld()
    world.eb.add_client_error(
        "describe_applications",
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    )
    world.clients = replace(
        world.clients, credentials_from="the Secret block 'run-aws-1' (aws.credentials_block)"
    )

    (problem,) = world.target().preflight()
    assert problem.startswith(
        "the AWS credentials from the Secret block 'run-aws-1' (aws.credentials_block) were refused "
        "(InvalidClientTokenId"
    )
    world.done()


def test_a_missing_permission_is_named_and_the_other_checks_still_run() -> None:
    world = EbWorld()
    world.eb.add_client_error(
        "describe_applications",
        "InsufficientPrivilegesException",
        "User is not authorized to perform elasticbeanstalk:DescribeApplications",
        403,
    )
    world.s3.add_client_error("head_bucket", "404", "Not Found", 404, expected_params={"Bucket": BUCKET})

    first, second = world.target().preflight()
    assert "DescribeApplications failed (InsufficientPrivilegesException" in first and "IAM" in first
    assert second.startswith(f"no bucket named {BUCKET}")
    world.done()


def test_addresses_held_by_neither_environment_are_named() -> None:
    world = EbWorld(aws_config(prod_address="deliverypipeline-live"))
    applications(world, APPLICATION)
    environments(world, described(world, NODE_1), described(world, NODE_2))
    bucket_here(world)

    (problem,) = world.target().preflight()
    assert problem.startswith("neither environment is reached at the prod address deliverypipeline-live")
    assert f"{NODE_1}={PROD_CNAME}" in problem and "fix prod_address" in problem
    world.done()


def test_the_same_environment_twice_is_a_problem() -> None:
    config = aws_config(environments=(NODE_1, NODE_1))
    problems = preflight.environment_problems(config, [EbWorld().state[NODE_1].description()])
    assert problems == [f"`environments` names {NODE_1} twice: name the application's two environments"]


def test_without_cnames_yet_the_addresses_are_not_judged() -> None:
    world = EbWorld()
    descriptions = [described(world, name, CNAME="") for name in (NODE_1, NODE_2)]
    assert preflight.environment_problems(world.config, descriptions) == []


def test_bucket_answers() -> None:
    assert preflight.bucket_problem(BUCKET, REGION, BucketAnswer(200, REGION)) is None
    assert preflight.bucket_problem(BUCKET, REGION, BucketAnswer(200, None)) is None
    denied = preflight.bucket_problem(BUCKET, REGION, BucketAnswer(403))
    assert denied is not None and "s3:PutObject" in denied and "403" in denied
    moved = preflight.bucket_problem(BUCKET, REGION, BucketAnswer(301, "ap-south-1"))
    assert moved is not None and "is in ap-south-1" in moved


def test_without_a_bucket_nothing_is_created() -> None:
    world = EbWorld(
        aws_config().model_copy(update={"aws": aws_config().aws.model_copy(update={"bucket": ""})})
    )
    applications(world, APPLICATION)
    environments(world, described(world, NODE_1), described(world, NODE_2))

    assert world.target().preflight() == []
    assert "CreateStorageLocation" not in world.operations()  # EB creates its bucket on first use
    world.done()


@pytest.mark.server  # moto, in-process on 127.0.0.1
@pytest.mark.slow
def test_moto_ready_then_a_typo_and_a_missing_bucket(moto_endpoint: str) -> None:
    config = aws_config(aws=AwsSettings(region=REGION, bucket=BUCKET, endpoint_url=moto_endpoint))
    clients = make_clients(config)
    clients.eb.create_application(ApplicationName=APPLICATION)
    for name in (NODE_1, NODE_2):
        clients.eb.create_environment(
            ApplicationName=APPLICATION, EnvironmentName=name, SolutionStackName=STACK
        )
    clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]

    assert ElasticBeanstalkTarget(config, clients).preflight() == []  # moto gives no CNAMEs: not judged

    typo = config.model_copy(
        update={
            "environments": (NODE_1, "deliverypipeline-node2"),
            "aws": config.aws.model_copy(update={"bucket": "no-such-bucket"}),
        }
    )
    assert ElasticBeanstalkTarget(typo, clients).preflight() == [
        f"no environment named deliverypipeline-node2 in application {APPLICATION}; the application has: "
        f"{NODE_1}, {NODE_2}; fix `environments` in the configuration",
        f"no bucket named no-such-bucket (aws.bucket): create it in {REGION} "
        f"(`aws s3 mb s3://no-such-bucket --region {REGION}`) or fix aws.bucket",
    ]

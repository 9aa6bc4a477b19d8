"""The EB target against a local moto server: what moto implements (environments, S3, ECR tokens).

moto 5 cannot create application versions, update, swap or list events (see the Stubber
scenarios for those), and describes every environment as Ready/Grey without a CNAME; where
a test needs a CNAME it sets one on moto's in-process backend, as EB would have assigned it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows.cli import aws as cli
from flows.config import PipelineConfig
from flows.image.registry_auth import registry_auth
from flows.targets.aws.clients import make_clients
from flows.targets.aws.facts import render_bundle
from flows.targets.aws.settings import AwsSettings
from flows.targets.aws.target import ElasticBeanstalkTarget
from flows.targets.base import MISSING
from tests.flows.targets.aws.eb_world import (
    ACCOUNT,
    APPLICATION,
    BUCKET,
    NODE_1,
    NODE_2,
    PREPROD_CNAME,
    PROD_CNAME,
    REGION,
    EbWorld,
    aws_config,
    dockerrun,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]  # moto, in-process on 127.0.0.1

STACK = "64bit Amazon Linux 2023 v4.4.1 running Docker"


def moto_config(endpoint: str, **changes: Any) -> PipelineConfig:
    return aws_config(aws=AwsSettings(region=REGION, bucket=BUCKET, endpoint_url=endpoint), **changes)


def create_environments(endpoint: str, *names: str, application: str = APPLICATION) -> Any:
    eb = boto3.session.Session().client("elasticbeanstalk", region_name=REGION, endpoint_url=endpoint)
    eb.create_application(ApplicationName=application)
    for name in names:
        eb.create_environment(ApplicationName=application, EnvironmentName=name, SolutionStackName=STACK)
    return eb


def assign(name: str, cname: str, version: str, health: str = "Green") -> None:
    """What EB would have set on the environment (moto leaves these blank)."""
    from moto.elasticbeanstalk.models import eb_backends

    env: Any = eb_backends[ACCOUNT][REGION].applications[APPLICATION].environments[name]
    env.cname, env.version_label, env.health = cname, version, health


def test_environments_from_moto(moto_endpoint: str) -> None:
    create_environments(moto_endpoint, NODE_1)
    create_environments(moto_endpoint, "deliverypipeline-node-2", application="another-application")
    target = ElasticBeanstalkTarget(moto_config(moto_endpoint))

    node_1, node_2 = target.environments()

    assert (node_1.name, node_1.status, node_1.version) == (NODE_1, "Ready", "1")  # moto's fixed answer
    assert (node_2.name, node_2.status) == (NODE_2, MISSING)  # same name, other application: not ours


def test_environments_and_urls_with_cnames(moto_endpoint: str) -> None:
    create_environments(moto_endpoint, NODE_1, NODE_2)
    assign(NODE_1, PREPROD_CNAME, "v1")
    assign(NODE_2, PROD_CNAME, "v2")
    target = ElasticBeanstalkTarget(moto_config(moto_endpoint))

    envs = {env.name: env for env in target.environments()}

    assert (envs[NODE_2].address, envs[NODE_2].version, envs[NODE_2].health) == (PROD_CNAME, "v2", "Green")
    assert target.url("deliverypipeline-prod") == f"http://{PROD_CNAME}"
    assert target.url("deliverypipeline-preprod") == f"http://{PREPROD_CNAME}"


def s3_on(endpoint: str) -> Any:
    s3 = make_clients(moto_config(endpoint)).s3
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
    return s3


def test_bundle_is_uploaded_to_s3_then_the_version_created(moto_endpoint: str) -> None:
    s3 = s3_on(moto_endpoint)
    world = EbWorld(moto_config(moto_endpoint), s3_client=s3)
    world.version_answer("v2", None)
    world.create_version("v2")
    world.version_answer("v2", "Processed")

    world.target().register_version("v2", dockerrun("v2"))

    stored = s3.get_object(Bucket=BUCKET, Key=world.bundle_key("v2"))
    assert stored["Body"].read() == render_bundle(dockerrun("v2"))
    assert stored["ContentType"] == "application/json"
    assert world.operations()[:3] == ["DescribeApplicationVersions", "PutObject", "CreateApplicationVersion"]
    world.done()


def test_rerun_reuses_the_version_whose_bundle_is_in_s3(moto_endpoint: str) -> None:
    s3 = s3_on(moto_endpoint)
    s3.put_object(
        Bucket=BUCKET,
        Key="deliverypipeline/deliverypipeline/v2/Dockerrun.aws.json",
        Body=render_bundle(dockerrun("v2")),
    )
    world = EbWorld(moto_config(moto_endpoint), s3_client=s3)
    world.version_answer("v2", "Processed")
    world.version_answer("v2", "Processed")

    world.target().register_version("v2", dockerrun("v2"))

    assert world.operations() == ["DescribeApplicationVersions", "GetObject", "DescribeApplicationVersions"]
    world.done()


def test_missing_bucket_says_to_create_it(moto_endpoint: str) -> None:
    from flows.targets.aws.errors import AwsBundleUploadError

    world = EbWorld(moto_config(moto_endpoint), s3_client=make_clients(moto_config(moto_endpoint)).s3)
    world.version_answer("v2", None)
    with pytest.raises(AwsBundleUploadError, match="NoSuchBucket") as failure:
        world.target().register_version("v2", dockerrun("v2"))
    assert "create the bucket" in failure.value.hint
    world.done()


def test_status_command_prints_both_environments(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_environments(moto_endpoint, NODE_1, NODE_2)
    assign(NODE_1, PROD_CNAME, "v1")
    assign(NODE_2, PREPROD_CNAME, "v2", health="Yellow")
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["aws", "status", "--application", APPLICATION, "--environments", NODE_1, NODE_2,
         "--prod-address", "deliverypipeline-prod", "--preprod-address", "deliverypipeline-preprod",
         "--region", REGION, "--endpoint-url", moto_endpoint]
    )  # fmt: skip

    assert args.func(args) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"application {APPLICATION} ({REGION})"
    assert lines[1].split() == ["ROLE", "NAME", "CNAME", "VERSION", "STATUS", "HEALTH"]
    assert lines[2].split() == ["prod", NODE_1, PROD_CNAME, "v1", "Ready", "Green"]
    assert lines[3].split() == ["preprod", NODE_2, PREPROD_CNAME, "v2", "Ready", "Yellow"]


def test_ecr_token_from_moto(moto_endpoint: str) -> None:
    config = moto_config(moto_endpoint, registry=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com")
    auth = registry_auth(config, environ={})
    assert auth == {
        "username": "AWS",
        "password": f"{ACCOUNT}-auth-token",
        "serveraddress": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
    }


@pytest.mark.docker  # a new process: the installed console script
def test_installed_console_script_prints_status(moto_endpoint: str) -> None:
    """`deliverypipeline aws status` as a user runs it: the installed script, a new process."""
    create_environments(moto_endpoint, NODE_1, NODE_2)
    assign(NODE_1, PROD_CNAME, "v1")
    assign(NODE_2, PREPROD_CNAME, "v2", health="Yellow")
    script = Path(sys.executable).parent / "deliverypipeline"

    done = subprocess.run(
        [str(script), "aws", "status", "--application", APPLICATION, "--environments", NODE_1, NODE_2,
         "--prod-address", "deliverypipeline-prod", "--preprod-address", "deliverypipeline-preprod",
         "--region", REGION, "--endpoint-url", moto_endpoint],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[2].split() == ["prod", NODE_1, PROD_CNAME, "v1", "Ready", "Green"]
    assert lines[3].split() == ["preprod", NODE_2, PREPROD_CNAME, "v2", "Ready", "Yellow"]
    assert "testing" not in done.stdout + done.stderr  # the (fake) credentials are never printed


@pytest.mark.docker  # a new process: the installed console script
def test_installed_console_script_names_an_unreachable_endpoint() -> None:
    script = Path(sys.executable).parent / "deliverypipeline"
    done = subprocess.run(
        [str(script), "aws", "status", "--environments", NODE_1, NODE_2, "--endpoint-url", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("deliverypipeline: ")
    assert "EndpointConnectionError" in done.stderr and "check the network" in done.stderr
    assert "Traceback" not in done.stderr

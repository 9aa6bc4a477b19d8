"""`deliverypipeline aws`: configuration loading, and the manual swap under the S3 release lock (stubbed)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import boto3
import pytest

from flows.cli import aws as cli
from flows.cli.main import CliError, main
from flows.cli.options import config_from_args
from flows.config import Deadlines, PipelineConfig
from flows.errors import ReleaseError
from flows.targets.aws import target as target_module
from tests.flows.targets.aws.eb_world import (
    APPLICATION,
    BUCKET,
    NODE_1,
    NODE_2,
    PREPROD,
    PREPROD_CNAME,
    PROD,
    PROD_CNAME,
    REGION,
    EbWorld,
    aws_config,
)


def cli_config(args: argparse.Namespace) -> PipelineConfig:
    """What `aws ...` acts with: the command line's settings on the aws target's defaults."""
    return config_from_args(args, "aws")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    return parser.parse_args(["aws", *argv])


TOML = """
application = "deliverypipeline"
environments = ["deliverypipeline-node-1", "deliverypipeline-node-2"]
prod_address = "deliverypipeline-prod"
preprod_address = "deliverypipeline-preprod"
accepted_health = ["Green", "Yellow"]
[aws]
region = "eu-west-1"
bucket = "deliverypipeline-bundles"
"""


def test_toml_config_with_options_on_top(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(TOML)

    config = cli_config(
        parse("status", "--config", str(path), "--region", "us-east-1", "--application", "other")
    )

    assert config.environments == (NODE_1, NODE_2) and config.prod_address == "deliverypipeline-prod"
    assert config.accepted_health == ["Green", "Yellow"]
    assert (config.application, config.aws.region, config.aws.bucket) == (
        "other",
        "us-east-1",
        "deliverypipeline-bundles",
    )


def test_json_config(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.json"
    path.write_text(
        json.dumps({"environments": ["a-node", "b-node"], "aws": {"endpoint_url": "http://127.0.0.1:9"}})
    )
    config = cli_config(parse("swap", "--config", str(path)))
    assert config.environments == ("a-node", "b-node") and config.aws.endpoint_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "application = ", "not valid TOML"),
        ("bad.json", "[1, 2]", "must hold a table"),
        ("bad.json", '{"environments": ["only-one"]}', "invalid configuration"),
    ],
)
def test_bad_config_is_a_cli_error(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CliError, match=message):
        cli_config(parse("status", "--config", str(path)))


def test_missing_config_file_is_a_cli_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot read"):
        cli_config(parse("status", "--config", str(tmp_path / "absent.toml")))


def test_manual_swap_prints_before_and_after_and_waits_for_ready() -> None:
    world = EbWorld()
    world.describe()  # before
    world.lock_taken()
    world.describe()  # the roles
    world.describe()  # both Ready: swappable
    world.swap(NODE_2, NODE_1)  # preprod's environment to prod, as a release swaps
    world.describe(node_1={"status": "Updating"}, node_2={"status": "Updating"})
    world.describe(node_1={"status": "Ready"}, node_2={"status": "Ready"})
    world.lock_released()
    world.describe()  # after
    out = io.StringIO()

    assert cli.swap_by_hand(world.target(), out, clock=world.clock) == 0

    assert world.behind(PROD_CNAME) == NODE_2 and world.behind(PREPROD_CNAME) == NODE_1
    text = out.getvalue()
    before, after = text.split("after:")
    assert f"prod     {NODE_1}" in before and f"prod     {NODE_2}" in after
    assert "holding the aws target's lock: manual swap (run cli" in before
    assert world.clock.time == world.config.deadlines.poll_s  # waited once for the swap to settle
    # under the S3 release lock: taken before the first look at the roles, removed before "after"
    assert world.operations() == [
        "DescribeEnvironments",
        "PutObject",
        "DescribeEnvironments",
        "DescribeEnvironments",
        "SwapEnvironmentCNAMEs",
        "DescribeEnvironments",
        "DescribeEnvironments",
        "DeleteObject",
        "DescribeEnvironments",
    ]
    world.done()


def test_manual_swap_waits_for_a_busy_environment_then_swaps() -> None:
    world = EbWorld()
    world.describe(node_2={"status": "Updating"})  # before
    world.lock_taken()
    world.describe()  # the roles
    world.describe()  # still Updating: EB would refuse the swap
    world.describe(node_2={"status": "Ready"})
    world.swap(NODE_2, NODE_1)
    world.describe()
    world.lock_released()
    world.describe()
    out = io.StringIO()

    assert cli.swap_by_hand(world.target(), out, clock=world.clock) == 0

    assert world.behind(PROD_CNAME) == NODE_2
    assert "waiting for both environments to be swappable (Ready)" in out.getvalue()
    assert world.clock.time == world.config.deadlines.poll_s
    assert world.failed_calls == [("GetObject", "NoSuchKey")]  # the lock was free; EB refused nothing
    world.done()


def test_manual_swap_of_an_environment_that_stays_busy_fails_naming_its_state() -> None:
    world = EbWorld(aws_config(deadlines=Deadlines(swap=30, poll_interval=10)))
    world.describe(node_2={"status": "Updating"})  # before
    world.lock_taken()
    world.describe()  # the roles
    for _ in range(4):  # looks at 0, 10, 20 and 30 s
        world.describe()
    world.lock_released()

    with pytest.raises(ReleaseError, match="waited 30s before the swap") as failure:
        cli.swap_by_hand(world.target(), io.StringIO(), clock=world.clock)

    assert f"preprod is {NODE_2} at {PREPROD_CNAME}: version v0, status Updating" in str(failure.value)
    assert "SwapEnvironmentCNAMEs" not in world.operations()
    assert world.operations()[-1] == "DeleteObject"  # the lock is released all the same
    assert world.clock.time == 30
    assert world.behind(PROD_CNAME) == NODE_1
    world.done()


def test_manual_swap_refused_by_eb_leaves_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    world = EbWorld()
    world.describe()  # before
    world.lock_taken()
    world.describe()  # the roles
    world.describe()  # both Ready
    world.swap_refused(NODE_2, NODE_1, "InsufficientPrivilegesException", "not authorized")
    world.lock_released()
    monkeypatch.setattr(cli, "ElasticBeanstalkTarget", lambda config, session: world.target())

    with pytest.raises(CliError, match="prod is unchanged"):
        cli.run_swap(parse("swap", "--environments", NODE_1, NODE_2))

    assert world.behind(PROD_CNAME) == NODE_1
    assert world.failed_calls[-1] == ("SwapEnvironmentCNAMEs", "InsufficientPrivilegesException")
    assert world.operations()[-1] == "DeleteObject"  # the lock is released after the refusal
    world.done()


def test_manual_swap_no_longer_takes_no_wait() -> None:
    with pytest.raises(SystemExit):
        parse("swap", "--no-wait")


def through_main(world: EbWorld, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """`deliverypipeline aws ...` through the console entry point, EB answered by `world`."""
    monkeypatch.setattr(target_module, "make_clients", lambda config, session=None: world.clients)
    return main(
        ["aws", *argv, "--application", APPLICATION, "--environments", NODE_1, NODE_2,
         "--prod-address", PROD, "--preprod-address", PREPROD, "--region", REGION]
    )  # fmt: skip


def test_status_through_the_entry_point_prints_both_environments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = EbWorld()
    world.describe(node_2={"status": "Updating", "health": "Grey", "version": "v2"})

    assert through_main(world, monkeypatch, "status") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"application {APPLICATION} ({REGION})"
    assert lines[1].split() == ["ROLE", "NAME", "CNAME", "VERSION", "STATUS", "HEALTH"]
    assert lines[2].split() == ["prod", NODE_1, PROD_CNAME, "v1", "Ready", "Green"]
    assert lines[3].split() == ["preprod", NODE_2, PREPROD_CNAME, "v2", "Updating", "Grey"]
    world.done()


def test_swap_through_the_entry_point_moves_prod_to_the_other_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = EbWorld()
    world.describe()  # before
    world.storage_location()  # no aws.bucket given: the lock lives in EB's own bucket
    world.lock_taken()
    world.describe()  # the roles
    world.describe()  # both Ready
    world.swap(NODE_2, NODE_1)
    world.describe()  # both Ready again at the first look (the real clock never sleeps here)
    world.lock_released()
    world.describe()  # after

    assert through_main(world, monkeypatch, "swap") == 0

    assert world.behind(PROD_CNAME) == NODE_2 and world.behind(PREPROD_CNAME) == NODE_1
    after = capsys.readouterr().out.split("after:")[1]
    assert f"prod     {NODE_2}" in after and f"preprod  {NODE_1}" in after
    assert "DeleteObject" in world.operations()
    world.done()


def test_refused_swap_through_the_entry_point_exits_2_with_the_aws_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = EbWorld()
    world.describe()  # before
    world.storage_location()
    world.lock_taken()
    world.describe()  # the roles
    world.describe()  # both Ready
    world.swap_refused(NODE_2, NODE_1, "InsufficientPrivilegesException", "not authorized to swap")
    world.lock_released()

    assert through_main(world, monkeypatch, "swap") == 2

    error = capsys.readouterr().err
    assert error.startswith("deliverypipeline: ")
    assert "InsufficientPrivilegesException" in error and "not authorized to swap" in error
    assert "prod is unchanged" in error and "Traceback" not in error
    assert len(error.splitlines()) == 1
    assert world.behind(PROD_CNAME) == NODE_1
    world.done()


def test_a_busy_swap_through_the_entry_point_exits_2_naming_the_state(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(f'[aws]\nbucket = "{BUCKET}"\n[deadlines]\nswap = 0\n')
    world = EbWorld()
    world.describe(node_1={"status": "Updating"})  # before
    world.lock_taken()
    world.describe()  # the roles
    world.describe()  # the one look a zero swap deadline allows
    world.lock_released()

    assert through_main(world, monkeypatch, "swap", "--config", str(config)) == 2

    error = capsys.readouterr().err
    assert error.startswith("deliverypipeline: waited 0s before the swap for both environments")
    assert f"prod is {NODE_1} at {PROD_CNAME}: version v1, status Updating" in error
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "SwapEnvironmentCNAMEs" not in world.operations() and world.behind(PROD_CNAME) == NODE_1
    world.done()


def test_commands_by_hand_sign_with_this_shells_credentials_never_a_runs_block(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text('[aws]\ncredentials_block = "run-aws-1800000000-0a1b2c3d"\n')
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHISSHELL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shell-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    world = EbWorld()
    world.describe()
    sessions: list[object] = []

    def clients(config: PipelineConfig, session: object = None) -> object:
        sessions.append(session)
        return world.clients

    monkeypatch.setattr(target_module, "make_clients", clients)
    assert main(["aws", "status", "--config", str(config), "--environments", NODE_1, NODE_2]) == 0

    (session,) = sessions
    assert isinstance(session, boto3.session.Session)
    found = session.get_credentials()
    assert found is not None and found.get_frozen_credentials().access_key == "AKIAFROMTHISSHELL"
    world.done()

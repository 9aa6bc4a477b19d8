"""`deliverypipeline aws`: configuration loading and the manual swap (EB stubbed)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from flows.cli import aws as cli
from flows.cli.main import CliError, main
from flows.targets.aws import target as target_module
from tests.flows.targets.aws.eb_world import (
    APPLICATION,
    NODE_1,
    NODE_2,
    PREPROD,
    PREPROD_CNAME,
    PROD,
    PROD_CNAME,
    REGION,
    EbWorld,
)


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

    config = cli.load_config(
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
    config = cli.load_config(parse("swap", "--config", str(path)))
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
        cli.load_config(parse("status", "--config", str(path)))


def test_missing_config_file_is_a_cli_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot read"):
        cli.load_config(parse("status", "--config", str(tmp_path / "absent.toml")))


def test_manual_swap_prints_before_and_after_and_waits_for_ready() -> None:
    world = EbWorld()
    world.describe()
    world.swap(NODE_1, NODE_2)
    world.describe(node_1={"status": "Updating"}, node_2={"status": "Updating"})
    world.describe(node_1={"status": "Ready"}, node_2={"status": "Ready"})
    out = io.StringIO()

    assert cli.swap_by_hand(world.target(), out, clock=world.clock) == 0

    assert world.behind(PROD_CNAME) == NODE_2 and world.behind(PREPROD_CNAME) == NODE_1
    text = out.getvalue()
    before, after = text.split("after:")
    assert f"prod     {NODE_1}" in before and f"prod     {NODE_2}" in after
    assert world.clock.time == world.config.deadlines.poll_interval
    world.done()


def test_manual_swap_refuses_when_an_environment_is_busy() -> None:
    world = EbWorld()
    world.describe(node_2={"status": "Updating"})
    with pytest.raises(CliError, match="not swapping"):
        cli.swap_by_hand(world.target(), io.StringIO(), clock=world.clock)
    assert world.behind(PROD_CNAME) == NODE_1
    world.done()


def test_manual_swap_refused_by_eb_leaves_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    world = EbWorld()
    world.describe()
    world.swap_refused(NODE_1, NODE_2, "InsufficientPrivilegesException", "not authorized")
    monkeypatch.setattr(cli, "ElasticBeanstalkTarget", lambda config: world.target())

    with pytest.raises(CliError, match="prod is unchanged"):
        cli.run_swap(parse("swap", "--environments", NODE_1, NODE_2, "--no-wait"))

    assert world.behind(PROD_CNAME) == NODE_1
    world.done()


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
    world.describe()
    world.swap(NODE_1, NODE_2)
    world.describe()  # both Ready again at the first look

    assert through_main(world, monkeypatch, "swap") == 0

    assert world.behind(PROD_CNAME) == NODE_2 and world.behind(PREPROD_CNAME) == NODE_1
    after = capsys.readouterr().out.split("after:")[1]
    assert f"prod     {NODE_2}" in after and f"preprod  {NODE_1}" in after
    world.done()


def test_refused_swap_through_the_entry_point_exits_2_with_the_aws_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = EbWorld()
    world.describe()
    world.swap_refused(NODE_1, NODE_2, "InsufficientPrivilegesException", "not authorized to swap")

    assert through_main(world, monkeypatch, "swap") == 2

    error = capsys.readouterr().err
    assert error.startswith("deliverypipeline: ")
    assert "InsufficientPrivilegesException" in error and "not authorized to swap" in error
    assert "prod is unchanged" in error and "Traceback" not in error
    assert world.behind(PROD_CNAME) == NODE_1
    world.done()

"""`deliverypipeline run`: its options, how they become the configuration and the run's parameters."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from flows.cli import run as run_cli
from flows.cli.options import config_from_args
from flows.config import load_config


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["run", *argv])


def test_defaults_release_head_of_this_directory_to_local() -> None:
    args = parse()
    assert (args.repo, args.ref, args.target, args.require_approval, args.notify_url) == (
        ".",
        "HEAD",
        "local",
        None,  # the deployment's default decides: aws asks for approval, local does not
        None,
    )
    assert args.func is run_cli.run
    assert config_from_args(args) == load_config(None)


def test_options_override_the_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "pipeline.json"
    config_file.write_text(json.dumps({"application": "shop", "deadlines": {"ready": 30}}))
    args = parse(
        "--config", str(config_file), "--prod-address", "127.0.0.1:9080", "--state-dir", str(tmp_path / "s")
    )
    config = config_from_args(args)
    assert config.application == "shop" and config.deadlines.ready == 30
    assert config.prod_address == "127.0.0.1:9080"
    assert config.local.state_dir == (tmp_path / "s").absolute()


def test_toml_config_and_unknown_target(tmp_path: Path) -> None:
    config_file = tmp_path / "pipeline.toml"
    config_file.write_text('registry = "registry.example:5000"\n[aws]\nregion = "us-east-1"\n')
    config = load_config(config_file)
    assert config.registry == "registry.example:5000" and config.aws.region == "us-east-1"
    with pytest.raises(SystemExit):
        parse("--target", "moon")


def test_aws_settings_and_environments_go_through_the_config_loader() -> None:
    args = parse(
        "--target",
        "aws",
        "--region",
        "eu-west-1",
        "--endpoint-url",
        "http://127.0.0.1:5001",
        "--environments",
        "blue",
        "green",
    )
    config = config_from_args(args)
    assert config.aws.region == "eu-west-1" and config.aws.endpoint_url == "http://127.0.0.1:5001"
    assert config.environments == ("blue", "green")


def test_parameters_name_the_resolved_commit_and_only_the_settings_given(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    args = parse("--repo", str(root), "--registry", "127.0.0.1:5999")
    parameters = run_cli.run_parameters(args, config_from_args(args))
    assert parameters["repo"] == str(root) and len(parameters["ref"]) == 40  # HEAD, resolved now
    assert parameters["config"] == {"registry": "127.0.0.1:5999"}
    assert parameters["target"] == "local" and "require_approval" not in parameters
    aws = run_cli.run_parameters(parse("--repo", str(root), "--target", "aws"), load_config(None))
    assert "require_approval" not in aws  # the aws deployment's approval stays on
    forced = run_cli.run_parameters(parse("--repo", str(root), "--no-require-approval"), load_config(None))
    assert forced["require_approval"] is False
    plain = run_cli.run_parameters(
        parse("--repo", "https://example.com/a.git", "--ref", "main"), load_config(None)
    )
    assert plain["ref"] == "main" and "config" not in plain and "notify_url" not in plain

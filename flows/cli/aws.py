"""`deliverypipeline aws status | swap`: look at the two EB environments, swap their CNAMEs by hand.

`swap` is the manual rollback Elastic Beanstalk users rely on: after a bad release, swapping
back puts the previous environment behind the prod CNAME again. Settings come from a
`--config` file (JSON or TOML with PipelineConfig fields) overridden by the options; credentials
from this shell (boto3's standard chain), never from a run's Secret block.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import boto3

from flows.cli.main import CliError
from flows.cli.options import config_from_args
from flows.clock import SYSTEM_CLOCK, Clock
from flows.config import PipelineConfig
from flows.release.manual import manual_swap
from flows.targets.addresses import holds_address
from flows.targets.aws.errors import AwsTargetError
from flows.targets.aws.target import ElasticBeanstalkTarget
from flows.targets.base import Environment

CONFIG_HELP = """\
--config FILE: a JSON (.json) or TOML (.toml) file of pipeline settings, for example (TOML):
  application = "deliverypipeline"
  environments = ["deliverypipeline-node-1", "deliverypipeline-node-2"]
  prod_address = "deliverypipeline-prod"        # the prod CNAME prefix
  preprod_address = "deliverypipeline-preprod"  # the preprod CNAME prefix
  [aws]
  region = "eu-west-1"
Options given on the command line override the file. AWS credentials come from this shell,
through boto3's standard chain (AWS_PROFILE, environment variables, `aws sso login`, instance
role); aws.credentials_block is for runs on the control plane only.
"""


def add_parser(subparsers: Any) -> None:
    """Register `aws` with its `status` and `swap` subcommands."""
    parser = subparsers.add_parser(
        "aws",
        help="the AWS Elastic Beanstalk target: status, manual CNAME swap",
        description="Look at or swap the two Elastic Beanstalk environments of the application.",
        epilog=CONFIG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="aws_command", required=True)
    status = actions.add_parser(
        "status", help="show both environments: role, name, CNAME, version, status, health"
    )
    _add_options(status)
    status.set_defaults(func=run_status)
    swap = actions.add_parser(
        "swap",
        help="swap the CNAMEs of the two environments by hand (manual rollback); prints before and after",
    )
    _add_options(swap)
    swap.set_defaults(func=run_swap)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="JSON or TOML file of PipelineConfig fields")
    parser.add_argument("--application", help="the Elastic Beanstalk application name")
    parser.add_argument("--environments", nargs=2, metavar=("A", "B"), help="the two environment names")
    parser.add_argument("--prod-address", help="the prod CNAME prefix")
    parser.add_argument("--preprod-address", help="the preprod CNAME prefix")
    parser.add_argument("--region", help="the AWS region")
    parser.add_argument("--endpoint-url", help="an AWS endpoint to use instead of the real one (tests)")


def role_of(environment: Environment, config: PipelineConfig) -> str:
    """`prod`, `preprod` or `-`, by the CNAME the environment holds."""
    if holds_address(environment, config.prod_address):
        return "prod"
    if holds_address(environment, config.preprod_address):
        return "preprod"
    return "-"


def format_table(environments: Sequence[Environment], config: PipelineConfig) -> str:
    """Both environments as an aligned table."""
    rows = [("ROLE", "NAME", "CNAME", "VERSION", "STATUS", "HEALTH")]
    rows += [
        (role_of(e, config), e.name, e.address or "-", e.version or "-", e.status, e.health)
        for e in environments
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def show_status(target: ElasticBeanstalkTarget, out: TextIO) -> int:
    """Print both environments; 0 even when one is missing (the table says so)."""
    config = target.config
    environments = target.environments()
    print(f"application {config.application} ({config.aws.region})", file=out)
    print(format_table(environments, config), file=out)
    return 0


def swap_by_hand(target: ElasticBeanstalkTarget, out: TextIO, clock: Clock = SYSTEM_CLOCK) -> int:
    """Swap the two environments' CNAMEs under the target's lock, printing before and after.

    The release's own swap: waits (bounded) until both are Ready, swaps, waits until both settle.
    """
    config = target.config
    print("before:", file=out)
    print(format_table(target.environments(), config), file=out)
    manual_swap(target, config, log=lambda line: print(line, file=out), clock=clock)
    print("after:", file=out)
    print(format_table(target.environments(), config), file=out)
    return 0


def run_status(args: argparse.Namespace) -> int:
    """`aws status`."""
    return _run(args, lambda target: show_status(target, sys.stdout))


def run_swap(args: argparse.Namespace) -> int:
    """`aws swap`."""
    return _run(args, lambda target: swap_by_hand(target, sys.stdout))


def _run(args: argparse.Namespace, action: Callable[[ElasticBeanstalkTarget], int]) -> int:
    config = config_from_args(args, "aws")
    try:  # this shell's own credentials: the command runs here, not on the control plane
        return int(
            action(ElasticBeanstalkTarget(config, boto3.session.Session(region_name=config.aws.region)))
        )
    except AwsTargetError as exc:
        raise CliError(str(exc)) from exc

"""`deliverypipeline aws status | swap`: look at the two EB environments, swap their CNAMEs by hand.

`swap` is the manual rollback Elastic Beanstalk users rely on: after a bad release, swapping
back puts the previous environment behind the prod CNAME again. Settings come from a
`--config` file (JSON or TOML with PipelineConfig fields) overridden by the options.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from flows.cli.main import CliError
from flows.clock import Clock, SystemClock
from flows.config import PipelineConfig
from flows.release.decisions import holds_address
from flows.targets.aws.errors import AwsTargetError
from flows.targets.aws.target import ElasticBeanstalkTarget
from flows.targets.base import READY, Environment

CONFIG_HELP = """\
--config FILE: a JSON (.json) or TOML (.toml) file of pipeline settings, for example (TOML):
  application = "deliverypipeline"
  environments = ["deliverypipeline-node-1", "deliverypipeline-node-2"]
  prod_address = "deliverypipeline-prod"        # the prod CNAME prefix
  preprod_address = "deliverypipeline-preprod"  # the preprod CNAME prefix
  [aws]
  region = "eu-west-1"
Options given on the command line override the file. AWS credentials come from boto3's
standard chain (AWS_PROFILE, environment variables, instance role).
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
    swap.add_argument(
        "--no-wait", action="store_true", help="return after EB accepts the swap, without waiting for Ready"
    )
    swap.set_defaults(func=run_swap)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="JSON or TOML file of PipelineConfig fields")
    parser.add_argument("--application", help="the Elastic Beanstalk application name")
    parser.add_argument("--environments", nargs=2, metavar=("A", "B"), help="the two environment names")
    parser.add_argument("--prod-address", help="the prod CNAME prefix")
    parser.add_argument("--preprod-address", help="the preprod CNAME prefix")
    parser.add_argument("--region", help="the AWS region")
    parser.add_argument("--endpoint-url", help="an AWS endpoint to use instead of the real one (tests)")


def load_config(args: argparse.Namespace) -> PipelineConfig:
    """The configuration from `--config` (if any) with the command-line options on top."""
    data: dict[str, Any] = {}
    if args.config is not None:
        data = read_config_file(args.config)
    for option, field in (
        ("application", "application"),
        ("environments", "environments"),
        ("prod_address", "prod_address"),
        ("preprod_address", "preprod_address"),
    ):
        value = getattr(args, option, None)
        if value is not None:
            data[field] = value
    aws = dict(data.get("aws") or {})
    if getattr(args, "region", None):
        aws["region"] = args.region
    if getattr(args, "endpoint_url", None):
        aws["endpoint_url"] = args.endpoint_url
    data["aws"] = aws
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise CliError(f"invalid configuration: {exc}") from exc


def read_config_file(path: Path) -> dict[str, Any]:
    """PipelineConfig fields from a .toml file, or a JSON file (any other name)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read the configuration {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise CliError(f"{path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a table/object of PipelineConfig fields")
    return data


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


def swap_by_hand(
    target: ElasticBeanstalkTarget, out: TextIO, wait: bool = True, clock: Clock | None = None
) -> int:
    """Swap the two environments' CNAMEs, printing before and after; waits for both Ready unless told not."""
    config = target.config
    clock = clock or SystemClock()
    before = target.environments()
    print("before:", file=out)
    print(format_table(before, config), file=out)
    missing = [e.name for e in before if e.status != READY]
    if missing:
        raise CliError(
            f"not swapping: {', '.join(missing)} not Ready (EB swaps only Ready environments); "
            "wait and look again with `deliverypipeline aws status`"
        )
    first, second = config.environments
    target.swap(first, second)
    print(f"swapped the CNAMEs of {first} and {second}", file=out)
    after = target.environments()
    deadline = clock.now() + config.deadlines.swap
    while wait and any(e.status != READY for e in after):
        if clock.now() >= deadline:
            print(format_table(after, config), file=out)
            raise CliError(f"the environments were not both Ready {config.deadlines.swap:g} s after the swap")
        clock.sleep(config.deadlines.poll_s)
        after = target.environments()
    print("after:", file=out)
    print(format_table(after, config), file=out)
    return 0


def run_status(args: argparse.Namespace) -> int:
    """`aws status`."""
    return _run(args, lambda target: show_status(target, sys.stdout))


def run_swap(args: argparse.Namespace) -> int:
    """`aws swap`."""
    return _run(args, lambda target: swap_by_hand(target, sys.stdout, wait=not args.no_wait))


def _run(args: argparse.Namespace, action: Callable[[ElasticBeanstalkTarget], int]) -> int:
    config = load_config(args)
    try:
        return int(action(ElasticBeanstalkTarget(config)))
    except AwsTargetError as exc:
        raise CliError(str(exc)) from exc

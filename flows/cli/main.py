"""The `deliverypipeline` command: one entry point whose subcommands live beside what they drive.

Each subcommand module exposes `add_parser(subparsers)`, which registers its parser and sets
`func` (taking the parsed arguments, returning an exit code) as the parser's default.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from flows.errors import ConfigError, DeliveryError

# Only the subcommand asked for is imported (all of them for help or a mistyped name): a
# command pays only for what it drives (`local status` not for boto3 or Starlette), and a broken
# optional part names itself instead of breaking every subcommand.
SUBCOMMAND_MODULES = {
    "run": "flows.cli.run",  # run: the pipeline, on the control plane
    "server": "flows.cli.server",  # server start | status | stop: the control plane
    "local": "flows.cli.local",  # local status | down
    "aws": "flows.cli.aws",  # aws status | swap
    "swarm": "flows.cli.swarm",  # swarm up | down | status
    "webhook": "flows.cli.webhook",  # webhook
    "metrics": "flows.cli.metrics",  # metrics: delivery performance (DORA's four keys)
}


CliError = ConfigError  # a user-facing failure: printed as one line, exit code 2


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with subcommand `only`, or every subcommand (None)."""
    parser = argparse.ArgumentParser(
        prog="deliverypipeline", description="Zero-downtime blue/green delivery."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command, name in SUBCOMMAND_MODULES.items():
        if only is None or command == only:
            importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; user errors print a message and exit 2 instead of a traceback."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    chosen = arguments[0] if arguments and arguments[0] in SUBCOMMAND_MODULES else None
    args = build_parser(chosen).parse_args(arguments)
    try:
        return int(args.func(args))
    except DeliveryError as exc:  # bad input or a failed operation: one line, no traceback
        print(f"deliverypipeline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

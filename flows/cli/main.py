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

# Imported lazily so that `deliverypipeline webhook` does not pay for boto3, and a broken
# optional part names itself instead of breaking every subcommand.
SUBCOMMAND_MODULES = (
    "flows.cli.run",  # run: the pipeline, on the control plane
    "flows.cli.server",  # server start | status | stop: the control plane
    "flows.cli.local",  # local status | down
    "flows.cli.aws",  # aws status | swap
    "flows.cli.webhook",  # webhook
)


CliError = ConfigError  # a user-facing failure: printed as one line, exit code 2


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="deliverypipeline", description="Zero-downtime blue/green delivery."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(name)
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; user errors print a message and exit 2 instead of a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except DeliveryError as exc:  # bad input or a failed operation: one line, no traceback
        print(f"deliverypipeline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

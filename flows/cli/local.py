"""`deliverypipeline local status | swap | down`: look at, swap or tear down the local Docker target.

`status` prints each environment's address, version, container, status and health, whether
the proxy runs, and this target's orphan containers if any; `swap` exchanges the prod and
preprod addresses by hand (the manual rollback: the previous version still runs on preprod);
`down` removes the containers and the proxy process the target started, keeping the shared
store's data unless `--purge`; it holds the target's release lock, so it never tears down
under a running release (it waits up to `--lock-wait` seconds, then names the holder).
Settings come from `--config` (a PipelineConfig as JSON or TOML) with the options below
overriding it; defaults match PipelineConfig.
"""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.arguments import address_options
from flows.cli.options import config_from_args
from flows.cli.tables import table_lines
from flows.errors import TargetError


def _target(args: argparse.Namespace) -> Any:
    from flows.targets.local.target import LocalTarget

    return LocalTarget(config_from_args(args, "local"))


def run_status(args: argparse.Namespace) -> int:
    """Print both environments and the proxy."""
    from flows.cli.main import CliError

    try:
        target = _target(args)
        environments = target.environments()
        pid = target.proxy.pid()
        orphans = target.orphans()
    except TargetError as exc:
        raise CliError(str(exc)) from exc
    proxy = f"running (pid {pid}, admin socket {target.layout.socket_path})" if pid else "not running"
    print(f"proxy: haproxy {proxy}")
    header = ("ENVIRONMENT", "ADDRESS", "VERSION", "CONTAINER", "STATUS", "HEALTH")
    rows = [
        (
            env.name,
            env.address,
            env.version or "-",
            str(env.details.get("container", "-")),
            env.status,
            env.health,
        )
        for env in environments
    ]
    print("\n".join(table_lines(header, rows)))
    if orphans:
        print(
            f"orphans: {len(orphans)} container(s) no environment points at "
            "(removed by the next deploy, or by `deliverypipeline local down`):"
        )
        for facts in orphans:
            print(
                f"  {facts.name}  environment {facts.environment or '-'}  version {facts.version or '-'}"
                f"  {facts.state}"
            )
    return 0


def run_swap(args: argparse.Namespace) -> int:
    """Exchange the prod and preprod addresses under the target's lock; print prod before and after."""
    from flows.release.decisions import describe
    from flows.release.manual import manual_swap

    config = config_from_args(args, "local")
    before, after = manual_swap(_target(args), config, log=print)
    print(f"before: prod was {describe(before.prod)}")
    print(f"after:  prod is {describe(after.prod)}")
    return 0


def run_down(args: argparse.Namespace) -> int:
    """Remove the containers and the proxy (the data too with --purge), holding the release lock."""
    import os
    import socket
    from datetime import UTC, datetime

    from flows.cli.main import CliError
    from flows.targets.base import LockHolder

    holder = LockHolder(
        operation="down" + (" --purge" if args.purge else ""),
        run="cli",
        pid=os.getpid(),
        host=socket.gethostname(),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    try:
        target = _target(args)
        with target.lock(holder, args.lock_wait, print):
            removed = target.down(purge=args.purge)
    except TargetError as exc:
        raise CliError(str(exc)) from exc
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove")
    return 0


def add_parser(subparsers: Any) -> None:
    """Register `local status`, `local swap` and `local down`."""
    parser = subparsers.add_parser("local", help="the local Docker target: status | swap | down")
    commands = parser.add_subparsers(dest="local_command", required=True)
    status = commands.add_parser("status", help="show both environments and the proxy")
    swap = commands.add_parser("swap", help="exchange the prod and preprod addresses (manual rollback)")
    down = commands.add_parser("down", help="remove the containers and the proxy (keeps data)")
    down.add_argument("--purge", action="store_true", help="also delete the shared data and state files")
    down.add_argument(
        "--lock-wait",
        type=float,
        default=60.0,
        help="seconds to wait for a running release's lock before giving up (default 60)",
    )
    for sub in (status, swap, down):
        sub.add_argument("--config", help="a PipelineConfig file (.json, else TOML)")
        sub.add_argument("--state-dir", help="the target's state directory (default: local.state_dir)")
        address_options(sub)
    status.set_defaults(func=run_status)
    swap.set_defaults(func=run_swap)
    down.set_defaults(func=run_down)
